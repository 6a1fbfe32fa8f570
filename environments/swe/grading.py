"""Grading: only the agent's source diff, applied in a fresh sandbox, judged by JUnit XML. Nothing else is trusted.

Why each step (NOTES-SWE section 10): the agent's container may hold edited tests, a planted conftest.py, a
rewritten git history or a fake report, so none of it is used. We (1) start a fresh sandbox from the pristine
image and rebuild the buggy tree, (2) keep only diff sections that change library source files (never tests,
conftest.py, pytest/tox/setup config, .pth or sitecustomize), (3) reject patches that add references to the test
machinery (pytest, junit, sys.modules, atexit, os._exit, ...), (4) run the suite with JUnit XML written to a
random path outside the repo and (5) require an explicit pass for every FAIL_TO_PASS and PASS_TO_PASS test.
Sandbox failures become `infra_error`, never a reward of 0.
"""

from __future__ import annotations

import io
import re
import shlex
import tarfile
import time
from collections.abc import Iterable

from pydantic import BaseModel, Field

from envgym.environments.swe.mutations import unified_diff
from envgym.environments.swe.recipes import is_allowed_source
from envgym.environments.swe.repo_state import apply_patch, install_buggy_tree
from envgym.environments.swe.schema import InstanceReport, SWETask, TestStatus
from envgym.environments.swe.testrun import SuiteRun, run_suite
from envgym.sandboxes import Sandbox, SandboxInfraError

MAX_SNAPSHOT_BYTES = 64 * 1024 * 1024
MAX_FILE_BYTES = 2 * 1024 * 1024
SHOWN_FAILURES = 8

# Tokens a bug fix never needs to add but a grader exploit does (hooking pytest, the report, the process).
TAMPER_PATTERNS: dict[str, str] = {
    "pytest": r"\b_?pytest\b",
    "junit": r"junit",
    "conftest": r"conftest",
    "unittest": r"\bunittest\b",
    "sys.modules": r"\bsys\s*\.\s*modules\b",
    "frame inspection": r"_getframe|\bcurrentframe\b|\binspect\s*\.\s*stack\b|\bf_back\b|\bf_globals\b",
    "tracing hooks": r"\bsettrace\b|\bsetprofile\b|\baudithook\b",
    "exit hooks": r"\batexit\b|\bos\s*\.\s*_exit\b|\bos\s*\.\s*kill\b|\bsignal\s*\.",
    "builtins": r"\b__builtins__\b|\bbuiltins\b",
    "argv": r"\bsys\s*\.\s*argv\b",
    "gc walking": r"\bgc\s*\.\s*get_(objects|referrers|referents)\b",
    "dynamic import": r"\b__import__\b|\bimportlib\b",
    "dynamic code": r"\bexec\s*\(|\beval\s*\(|\bcompile\s*\(",
    "processes": r"\bsubprocess\b|\bos\s*\.\s*(system|popen|exec\w*|spawn\w*|fork)\b",
}


class GradeResult(BaseModel):
    """The outcome of grading one patch for one task."""

    instance_id: str
    resolved: bool = False
    reward: float = 0.0
    f2p_passed: int = 0
    f2p_total: int = 0
    p2p_passed: int = 0
    p2p_total: int = 0
    failing: list[tuple[str, str]] = Field(default_factory=list, description="(test id, assertion message)")
    tests_status: dict[str, TestStatus] = Field(default_factory=dict)
    patch: str = Field(default="", description="the source diff actually graded")
    patch_applied: bool = True
    dropped_files: list[str] = Field(default_factory=list, description="changed files ignored (tests, config, ...)")
    rejected: str | None = Field(default=None, description="why the patch was refused (test-machinery tampering)")
    infra_error: str | None = None
    duration_s: float = 0.0

    @property
    def components(self) -> dict[str, float]:
        return {
            "fail_to_pass": self.f2p_passed / max(self.f2p_total, 1),
            "pass_to_pass": self.p2p_passed / max(self.p2p_total, 1),
            "resolved": float(self.resolved),
        }

    def report(self) -> InstanceReport:
        return InstanceReport(
            patch_is_None=False,
            patch_exists=bool(self.patch.strip()),
            patch_successfully_applied=self.patch_applied,
            resolved=self.resolved,
            infra_failure=self.infra_error is not None,
            infra_failure_reason=self.infra_error or "",
            tests_status=self.tests_status,
        )

    def summary(self) -> str:
        if self.infra_error:
            return f"Grading failed for infrastructure reasons (not your fault): {self.infra_error}"
        if self.rejected:
            return f"Patch rejected: {self.rejected}. Reward 0."
        if not self.patch_applied:
            return "Your changes could not be applied to a fresh copy of the repository. Reward 0."
        verdict = "RESOLVED" if self.resolved else "NOT RESOLVED"
        return (
            f"{verdict}: {self.f2p_passed}/{self.f2p_total} failing tests fixed, "
            f"{self.p2p_passed}/{self.p2p_total} other tests still pass. Reward {self.reward:g}."
        )

    def details(self) -> str | None:
        lines = []
        if self.dropped_files:
            lines.append(
                "Ignored changes to tests/config (restored from the original): " + ", ".join(self.dropped_files)
            )
        for test_id, message in self.failing[:SHOWN_FAILURES]:
            first = message.strip().splitlines()[0] if message.strip() else "failed"
            lines.append(f"FAILED {test_id} - {first[:300]}")
        if len(self.failing) > SHOWN_FAILURES:
            lines.append(f"... and {len(self.failing) - SHOWN_FAILURES} more failing tests")
        return "\n".join(lines) or None


# ----- patches -----------------------------------------------------------------------------------------------
def split_diff(patch: str) -> list[tuple[str, str]]:
    """A git-style diff split into (path, section); path is the post-image path (pre-image for deletions)."""
    sections: list[tuple[str, str]] = []
    chunks = re.split(r"(?m)^(?=diff --git )", patch)
    for chunk in chunks:
        if not chunk.strip():
            continue
        old = re.search(r"(?m)^--- (?:a/)?(\S+)", chunk)
        new = re.search(r"(?m)^\+\+\+ (?:b/)?(\S+)", chunk)
        header = re.match(r"diff --git a/(\S+) b/(\S+)", chunk)
        paths = [m.group(1) for m in (old, new) if m and m.group(1) != "/dev/null"]
        if header:
            paths += [header.group(1), header.group(2)]
        if not paths:
            continue
        sections.append(("\x00".join(dict.fromkeys(paths)), chunk))
    return sections


def filter_patch(patch: str, task: SWETask) -> tuple[str, list[str]]:
    """Keep only sections whose every path is allowed library source; return (kept patch, dropped paths)."""
    kept, dropped = [], []
    for paths, section in split_diff(patch):
        names = paths.split("\x00")
        binary = "GIT binary patch" in section or "Binary files" in section
        symlink = re.search(r"(?m)^(new|deleted) file mode 120000|^(old|new) mode 120000", section)
        if binary or symlink or not all(is_allowed_source(n, task.source_paths, task.test_paths) for n in names):
            dropped += names
            continue
        kept.append(section if section.endswith("\n") else section + "\n")
    return "".join(kept), sorted(set(dropped))


def tamper_check(patch: str) -> str | None:
    """Refuse patches that add references to the test machinery (counted per file: added vs removed lines)."""
    for paths, section in split_diff(patch):
        added = "\n".join(
            line[1:] for line in section.splitlines() if line.startswith("+") and not line.startswith("+++")
        )
        removed = "\n".join(
            line[1:] for line in section.splitlines() if line.startswith("-") and not line.startswith("---")
        )
        for what, pattern in TAMPER_PATTERNS.items():
            if len(re.findall(pattern, added)) > len(re.findall(pattern, removed)):
                return f"it adds {what} references to {paths.split(chr(0))[0]}; a library fix never needs them"
    return None


# ----- snapshots ---------------------------------------------------------------------------------------------
def snapshot_sources(sandbox: Sandbox, task: SWETask) -> dict[str, str]:
    """Regular, allowed source files of the sandbox's tree (symlinks, big and binary files are skipped)."""
    roots = [p for p in task.source_paths] or ["."]
    archive = f"/tmp/.envgym-snap-{time.time_ns()}.tar"
    quoted = " ".join(shlex.quote(r) for r in roots)
    result = sandbox.exec(
        f"(cd {shlex.quote(task.workdir)} && /bin/tar --ignore-failed-read -cf {archive} "
        f"--exclude=.git --exclude=__pycache__ {quoted} 2>/dev/null; echo ok)",
        timeout=120,
    )
    if "ok" not in result.output:
        raise SandboxInfraError(f"could not snapshot the source tree: {result.output[-500:]}")
    try:
        data = sandbox.read_file(archive)
    finally:
        sandbox.exec(f"rm -f {archive}", timeout=30)
    if len(data) > MAX_SNAPSHOT_BYTES:
        data = data[:MAX_SNAPSHOT_BYTES]
    files: dict[str, str] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        for member in _members(tar):
            name = member.name.removeprefix("./")
            if not member.isreg() or member.size > MAX_FILE_BYTES:
                continue
            if not is_allowed_source(name, task.source_paths, task.test_paths):
                continue
            handle = tar.extractfile(member)
            if handle is None:
                continue
            try:
                files[name] = handle.read().decode("utf-8")
            except UnicodeDecodeError:
                continue
    return files


def _members(tar: tarfile.TarFile) -> Iterable[tarfile.TarInfo]:
    try:
        yield from tar
    except (tarfile.TarError, EOFError):
        return


def diff_trees(before: dict[str, str], after: dict[str, str]) -> str:
    """The patch taking `before` to `after` (new, changed and deleted source files)."""
    out = []
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if old == new:
            continue
        if old is None:
            body = unified_diff(name, "", new or "").replace(f"--- a/{name}", "--- /dev/null", 1)
            out.append(
                body.replace(
                    f"diff --git a/{name} b/{name}\n", f"diff --git a/{name} b/{name}\nnew file mode 100644\n", 1
                )
            )
        elif new is None:
            body = unified_diff(name, old, "").replace(f"+++ b/{name}", "+++ /dev/null", 1)
            out.append(
                body.replace(
                    f"diff --git a/{name} b/{name}\n", f"diff --git a/{name} b/{name}\ndeleted file mode 100644\n", 1
                )
            )
        else:
            out.append(unified_diff(name, old, new))
    return "".join(out)


# ----- the grader ----------------------------------------------------------------------------------------------
def grade_in(
    sandbox: Sandbox, task: SWETask, patch: str, started: float | None = None, tree_ready: bool = False
) -> GradeResult:
    """Grade `patch` in `sandbox`, which must be fresh from the task's image (nothing an agent touched)."""
    started = time.perf_counter() if started is None else started
    result = GradeResult(
        instance_id=task.instance_id, f2p_total=len(task.FAIL_TO_PASS), p2p_total=len(task.PASS_TO_PASS)
    )
    if not tree_ready:
        install_buggy_tree(sandbox, task)
    kept, dropped = filter_patch(patch, task)
    result.patch, result.dropped_files = kept, dropped
    result.rejected = tamper_check(kept)
    if result.rejected:
        return _finish(result, started)
    ok, _ = apply_patch(sandbox, task.workdir, kept)
    if not ok:
        result.patch_applied = False
        return _finish(result, started)
    if task.test_patch.strip():
        ok, output = apply_patch(sandbox, task.workdir, task.test_patch)
        if not ok:
            raise SandboxInfraError(f"the test patch of {task.instance_id} does not apply: {output[-500:]}")
    run = run_suite(sandbox, task.test_command, task.workdir, timeout=600)
    _score(result, task, run)
    return _finish(result, started)


def _score(result: GradeResult, task: SWETask, run: SuiteRun) -> None:
    status: dict[str, TestStatus] = {"FAIL_TO_PASS": TestStatus(), "PASS_TO_PASS": TestStatus()}
    for kind, ids in (("FAIL_TO_PASS", task.FAIL_TO_PASS), ("PASS_TO_PASS", task.PASS_TO_PASS)):
        for test_id in ids:
            outcome = run.outcome(test_id)
            if outcome.status == "passed":
                status[kind].success.append(test_id)
            else:
                status[kind].failure.append(test_id)
                result.failing.append((test_id, outcome.message or outcome.status))
    result.tests_status = status
    result.f2p_passed = len(status["FAIL_TO_PASS"].success)
    result.p2p_passed = len(status["PASS_TO_PASS"].success)
    result.resolved = not status["FAIL_TO_PASS"].failure and not status["PASS_TO_PASS"].failure
    result.reward = 1.0 if result.resolved else 0.0


def _finish(result: GradeResult, started: float) -> GradeResult:
    result.duration_s = round(time.perf_counter() - started, 3)
    return result


def grade_patch(task: SWETask, patch: str, sandbox_factory: object | None = None) -> GradeResult:
    """Grade a patch (SWE-bench prediction) in a fresh sandbox; infra failures land in `infra_error`."""
    from envgym.environments.swe.sandboxing import fresh_sandbox

    started = time.perf_counter()
    try:
        with fresh_sandbox(task) as sandbox:
            return grade_in(sandbox, task, patch, started)
    except SandboxInfraError as exc:
        return _finish(GradeResult(instance_id=task.instance_id, infra_error=str(exc)), started)


def grade_tree(agent: Sandbox, task: SWETask) -> GradeResult:
    """Grade the agent's working tree: only its library source files are read, diffed and re-applied."""
    from envgym.environments.swe.sandboxing import fresh_sandbox

    started = time.perf_counter()
    try:
        after = snapshot_sources(agent, task)
        with fresh_sandbox(task) as sandbox:
            install_buggy_tree(sandbox, task)
            before = snapshot_sources(sandbox, task)
            patch = diff_trees(before, after)
            return grade_in(sandbox, task, patch, started, tree_ready=True)
    except SandboxInfraError as exc:
        return _finish(GradeResult(instance_id=task.instance_id, infra_error=str(exc)), started)
