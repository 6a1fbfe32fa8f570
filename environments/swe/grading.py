"""Grading: only the agent's source diff, audited, applied in a fresh sandbox, judged by a signed verdict stream.

Why each step (NOTES-SWE section 10, issue 11): the agent's container may hold edited tests, a planted
conftest.py, a rewritten git history, hostile shell functions or a fake report, so nothing from it is used but
its library source files, read through the engine API (never its shell). We (1) take a sandbox no agent touched
from the grader's own pool and rebuild the buggy tree, (2) keep only diff sections that change library source
files (never tests, conftest.py, pytest/tox/setup config, .pth or sitecustomize), (3) audit the changed files'
AST against the buggy and the reference versions (audit.py), (4) run the suite as a separate uid whose verdict
travels signed over the engine's exec stream (testrun.py) and (5) require an explicit pass for every
FAIL_TO_PASS and PASS_TO_PASS test. Every failure is the agent's (reward 0, feedback says why) or the
infrastructure's (`infra_error`); no exception leaves the grader.
"""

from __future__ import annotations

import functools
import io
import logging
import posixpath
import tarfile
import threading
import time
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from pydantic import BaseModel, Field

from envgym.environments.swe import bytecode
from envgym.environments.swe.audit import audit_change
from envgym.environments.swe.mutations import unified_diff
from envgym.environments.swe.patches import is_plain_path, read_patch
from envgym.environments.swe.recipes import is_allowed_source
from envgym.environments.swe.repo_state import apply_patch, buggy_tree, install_buggy_tree
from envgym.environments.swe.sandboxing import SWESandboxes, resolve_image
from envgym.environments.swe.schema import InstanceReport, SWETask, TestStatus
from envgym.environments.swe.testrun import PreparedSuite, SuiteRun, interpreter_of
from envgym.environments.swe.trees import PatchError, apply_unified
from envgym.sandboxes import Sandbox, SandboxInfraError

log = logging.getLogger(__name__)
MAX_SNAPSHOT_BYTES = 64 * 1024 * 1024
MAX_FILE_BYTES = 2 * 1024 * 1024
SHOWN_FAILURES = 8
SUITE_TIMEOUT_S = 600.0


class TreeTooLarge(ValueError):
    """The agent's source tree exceeds what the grader reads (the agent's doing: reward 0)."""


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
    rejected: str | None = Field(default=None, description="why the patch was refused (audit, size, syntax)")
    verdict_problem: str | None = Field(default=None, description="why the test run gave no valid verdict")
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
        if self.verdict_problem:
            return f"No valid test verdict: {self.verdict_problem}. Reward 0."
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
    """The readable sections of a git-style diff as (path, section text); see patches.py for what is readable."""
    return [(section.path, section.text) for section in read_patch(patch).sections]


def filter_patch(patch: str, task: SWETask) -> tuple[str, list[str]]:
    """Keep only readable sections that change allowed library source; return (kept patch, dropped names).

    Only the sections kept here ever reach `git apply`: an unreadable one (a copy or rename, binary data, a
    symlink, a second file inside a section, counts that do not match) is dropped like a test file."""
    read = read_patch(patch)
    kept, dropped = [], list(read.unreadable)
    for section in read.sections:
        if is_allowed_source(section.path, task.source_paths, task.test_paths):
            kept.append(section.text)
        else:
            dropped.append(section.path)
    return "".join(kept), sorted(set(dropped))


# ----- snapshots (engine API only) --------------------------------------------------------------------------
def read_sources(sandbox: Sandbox, task: SWETask) -> dict[str, str]:
    """Regular, allowed, UTF-8 source files under the task's source paths, read through the engine API.

    Symlinks, fifos, devices, big and binary files are skipped; an absent source path is an empty one. Raises
    TreeTooLarge past MAX_SNAPSHOT_BYTES and SandboxInfraError if the sandbox cannot be read at all."""
    read_tree = getattr(sandbox, "read_tree", None)
    if not callable(read_tree):
        raise SandboxInfraError("grading reads source trees through the engine API: it needs a Docker sandbox")
    files: dict[str, str] = {}
    budget = MAX_SNAPSHOT_BYTES
    for root in sorted({posixpath.normpath(p.strip("/")) for p in task.source_paths} or {"."}):
        target = posixpath.normpath(posixpath.join(task.workdir, root))
        try:
            data = read_tree(target, max_bytes=budget)
        except FileNotFoundError:
            continue
        except OverflowError as exc:
            raise TreeTooLarge(f"the source tree holds more than {MAX_SNAPSHOT_BYTES // 2**20} MB") from exc
        budget -= len(data)
        parent = "" if root == "." else posixpath.dirname(root)
        for name, text in _regular_files(data):
            rel = name.partition("/")[2] if root == "." else posixpath.join(parent, name)
            if rel and is_allowed_source(rel, task.source_paths, task.test_paths):
                files[rel] = text
    return files


def _regular_files(data: bytes) -> Iterable[tuple[str, str]]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        for member in _members(tar):
            if not member.isreg() or member.size > MAX_FILE_BYTES:
                continue
            handle = tar.extractfile(member)
            if handle is None:
                continue
            try:
                yield member.name.removeprefix("./"), handle.read().decode("utf-8")
            except (UnicodeDecodeError, tarfile.TarError, EOFError):
                continue


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
def buggy_sources(task: SWETask) -> dict[str, str]:
    """A synthesized task's library sources before any fix, built on the host (what install_buggy_tree uploads)."""
    return dict(_buggy_sources(task.model_dump_json()))


@functools.lru_cache(maxsize=64)
def _buggy_sources(task_json: str) -> tuple[tuple[str, str], ...]:
    task = SWETask.model_validate_json(task_json)
    kept = []
    for name, data in buggy_tree(task).items():
        if len(data) <= MAX_FILE_BYTES and is_allowed_source(name, task.source_paths, task.test_paths):
            try:
                kept.append((name, data.decode("utf-8")))
            except UnicodeDecodeError:
                continue
    return tuple(kept)


def reference_sources(task: SWETask, before: dict[str, str]) -> dict[str, str]:
    """The buggy sources with the task's reference fix applied: the audit allows what the reference adds."""
    kept, _ = filter_patch(task.patch, task)
    try:
        fixed = apply_unified({k: v.encode() for k, v in before.items()}, kept)
        return {k: v.decode("utf-8") for k, v in fixed.items()}
    except (PatchError, UnicodeDecodeError, IndexError):
        return dict(before)


def _agent_stage(
    result: GradeResult, task: SWETask, before: dict[str, str], patch: str | None, agent: dict[str, str] | None
) -> str | None:
    """Work only on agent-derived data: any failure here is the agent's (reward 0), never infra."""
    try:
        patch = diff_trees(before, agent) if agent is not None else patch or ""
        kept, dropped = filter_patch(patch, task)
        result.patch, result.dropped_files = kept, dropped
        return kept
    except Exception as exc:  # e.g. a pathological file difflib cannot handle
        result.rejected = f"your changes could not be read ({type(exc).__name__})"
        return None


@dataclass
class Staged:
    """A grading sandbox made ready for one task before anything of the agent's exists there: buggy tree,
    test patch where it touches only tests, the verdict plugin, and pytest already imported (PreparedSuite)."""

    task: SWETask
    sandbox: Sandbox
    before: dict[str, str]
    suite: PreparedSuite
    test_patch_applied: bool
    disposable: bool = False  # removed right after grading (the Grader's sandboxes always are)


def stage(sandbox: Sandbox, task: SWETask) -> Staged:
    """Prepare `sandbox` (fresh from the task's image, never touched by an agent) to grade `task`."""
    install_buggy_tree(sandbox, task)
    before = buggy_sources(task) if task.source == "synthesized" else read_sources(sandbox, task)
    early = _touches_only_tests(task.test_patch, task)
    if early:
        _apply_test_patch(sandbox, task)
    return Staged(task, sandbox, before, PreparedSuite(sandbox, task.test_command, task.workdir), early)


def _touches_only_tests(patch: str, task: SWETask) -> bool:
    """Whether every path of a (test) patch is test infrastructure, so it can go in before the agent's change."""
    read = read_patch(patch)
    names = [section.path for section in read.sections]
    return (
        bool(names)
        and not read.unreadable
        and not any(is_allowed_source(n, task.source_paths, task.test_paths) for n in names)
    )


def _apply_test_patch(sandbox: Sandbox, task: SWETask) -> None:
    ok, output = apply_patch(sandbox, task.workdir, task.test_patch)
    if not ok:
        raise SandboxInfraError(f"the test patch of {task.instance_id} does not apply: {output[-500:]}")


# CPython 3.11 keeps ast.parse's recursion depth per interpreter, not per thread: two threads parsing at once
# (two gradings in `envgym swe check`) raised "SystemError: AST constructor recursion depth mismatch".
_AUDIT_LOCK = threading.Lock()


def _write_change(sandbox: Sandbox, task: SWETask, before: dict[str, str], kept: str, agent: dict[str, str]) -> bool:
    """Write the agent's changed files in one engine call instead of `git apply` in the sandbox's shell, when
    that is provably the same tree: only files the buggy tree has (read the same way) are modified, under plain
    relative paths, and `kept` applied in memory gives exactly the agent's files. False: not provable (new or
    deleted files included: `git apply` has its own opinion about files the snapshot skipped), use `git apply`."""
    if not kept.strip():
        return True
    old = {name: text.encode("utf-8") for name, text in before.items()}
    try:
        new = apply_unified(old, kept)
    except (PatchError, UnicodeDecodeError, IndexError, ValueError):
        return False
    changed = sorted(name for name in set(old) | set(new) if old.get(name) != new.get(name))
    for name in changed:
        if name not in new or name not in old or not is_plain_path(name):
            return False
        mine = agent.get(name)
        if mine is None or mine.encode("utf-8") != new[name]:
            return False
    _upload_files(sandbox, task.workdir, {name: new[name] for name in changed})
    return True


def _upload_files(sandbox: Sandbox, workdir: str, files: dict[str, bytes], uid: int = 1000) -> None:
    """Files (and their parent directories) into `workdir` owned by the agent's uid, in one engine call. Safe
    as root here only because a grading sandbox holds nothing an agent made: no planted symlinks to follow."""
    import docker.errors

    container = getattr(sandbox, "container", None)
    if container is None:
        sandbox.write_files({posixpath.join(workdir, name): data for name, data in files.items()})
        return
    buf = io.BytesIO()
    now = int(time.time())
    with tarfile.open(fileobj=buf, mode="w") as tar:
        parents = sorted({"/".join(n.split("/")[:i]) for n in files for i in range(1, n.count("/") + 1)})
        for name in parents:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.uid, info.gid, info.mtime = tarfile.DIRTYPE, 0o755, uid, uid, now
            tar.addfile(info)
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.uid, info.gid, info.mtime = len(data), 0o644, uid, uid, now
            tar.addfile(info, io.BytesIO(data))
    try:
        container.put_archive(workdir, buf.getvalue())
    except docker.errors.APIError as exc:
        raise SandboxInfraError(f"could not write the change into the grading sandbox: {exc}") from exc


def grade_in(
    sandbox: Sandbox, task: SWETask, patch: str | None = None, agent: dict[str, str] | None = None
) -> GradeResult:
    """Grade `patch` (or the agent's source files `agent`) in `sandbox`, fresh from the task's image."""
    return grade_staged(stage(sandbox, task), patch=patch, agent=agent)


def grade_staged(staged: Staged, patch: str | None = None, agent: dict[str, str] | None = None) -> GradeResult:
    """Grade `patch` (or the agent's source files `agent`) in a staged sandbox; runs the suite once."""
    started = time.perf_counter()
    task, sandbox, before = staged.task, staged.sandbox, staged.before
    result = GradeResult(
        instance_id=task.instance_id, f2p_total=len(task.FAIL_TO_PASS), p2p_total=len(task.PASS_TO_PASS)
    )
    kept = _agent_stage(result, task, before, patch, agent)
    if kept is None:
        return _finish(result, started)
    if agent is None or not _write_change(sandbox, task, before, kept, agent):
        ok, _ = apply_patch(sandbox, task.workdir, kept)
        if not ok:
            result.patch_applied = False
            return _finish(result, started)
    try:  # the agent's own files are what its diff produces; a submitted patch is read back as applied
        after = dict(agent) if agent is not None else read_sources(sandbox, task)
    except TreeTooLarge as exc:
        result.rejected = str(exc)
        return _finish(result, started)
    with _AUDIT_LOCK:
        result.rejected = audit_change(before, after, reference_sources(task, before))
    if result.rejected:
        return _finish(result, started)
    if task.test_patch.strip() and not staged.test_patch_applied:
        _apply_test_patch(sandbox, task)
    run = staged.suite.run(timeout=SUITE_TIMEOUT_S, disposable=staged.disposable)
    if not run.report_found:
        result.verdict_problem = run.problem or "no verdict"
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
    result.resolved = run.report_found and not status["FAIL_TO_PASS"].failure and not status["PASS_TO_PASS"].failure
    result.reward = 1.0 if result.resolved else 0.0


def _finish(result: GradeResult, started: float) -> GradeResult:
    result.duration_s = round(time.perf_counter() - started, 3)
    return result


class Grader:
    """Grades patches and agents' trees in sandboxes from its own warm pool (never shared with agents).

    Owned by whoever made it (the env, the CLI, the leaderboard): `close()` stops its containers. Grading
    sandboxes are used once, then removed, never recycled. `prepare(task)` stages one for the next grading of
    `task` in the background (the env calls it at reset, while the agent works), so a submit starts at the
    agent's change. Each sandbox gets the image's compiled bytecode before anything runs in it (bytecode.py)."""

    def __init__(self, pool_size: int = 1, warm: bool = True, compiled: bool = True) -> None:
        self.sandboxes = SWESandboxes("grade", size=pool_size, warm=warm)
        # a one-off grader (warm=False) uses bytecode already on disk but does not start a build it would stop
        self.bytecode = bytecode.BytecodeCache(build=warm) if compiled else None
        self._stager = ThreadPoolExecutor(max_workers=2, thread_name_prefix="envgym-swe-stage")
        self._lock = threading.Lock()
        self._next: tuple[str, Future[Staged]] | None = None
        self._closed = False

    def prepare(self, task: SWETask) -> None:
        """Stage a grading sandbox for `task` in the background; an earlier staged one for another task is removed."""
        with self._lock:
            if self._closed or (self._next is not None and self._next[0] == task.instance_id):
                return
            old, self._next = self._next, (task.instance_id, self._stager.submit(self._stage, task))
        if old is not None:
            old[1].add_done_callback(self._drop)

    def wait_prepared(self, timeout: float = 300.0) -> None:
        """Block until the staged sandbox (if any) is ready, and the bytecode for its image is built; for
        benchmarks that time a submit made after the agent has worked a while."""
        with self._lock:
            pending = self._next
        if pending is None:
            return
        try:
            task = pending[1].result(timeout=timeout).task
        except Exception:
            return
        interpreter = interpreter_of(task.test_command)
        if self.bytecode is not None and interpreter is not None:
            self.bytecode.wait(resolve_image(task), interpreter, timeout)

    def grade_patch(self, task: SWETask, patch: str) -> GradeResult:
        """Grade a patch (a SWE-bench prediction); infra failures land in `infra_error`."""
        return self._grade(task, patch=patch)

    def grade_tree(self, agent_sandbox: Sandbox, task: SWETask) -> GradeResult:
        """Grade the agent's working tree: only its library source files are read (engine API), diffed, audited."""
        started = time.perf_counter()
        try:
            agent = read_sources(agent_sandbox, task)
        except TreeTooLarge as exc:
            return _finish(GradeResult(instance_id=task.instance_id, rejected=str(exc)), started)
        except SandboxInfraError as exc:
            return _finish(GradeResult(instance_id=task.instance_id, infra_error=str(exc)), started)
        except Exception as exc:  # anything else reading the agent's tree: the archive was the agent's doing
            why = f"your source tree could not be read ({type(exc).__name__})"
            return _finish(GradeResult(instance_id=task.instance_id, rejected=why), started)
        return self._grade(task, agent=agent, started=started)

    def buggy_sources(self, task: SWETask) -> dict[str, str]:
        """The task's library sources before any fix (built on the host, or rebuilt in a grading sandbox)."""
        if task.source == "synthesized":
            return buggy_sources(task)
        with self.sandboxes.checkout(task)[0] as sandbox:
            install_buggy_tree(sandbox, task)
            return read_sources(sandbox, task)

    def _stage(self, task: SWETask) -> Staged:
        sandbox = self.sandboxes.checkout(task)[0]
        try:
            interpreter = interpreter_of(task.test_command)
            if self.bytecode is not None and interpreter is not None:
                compiled = self.bytecode.get(resolve_image(task), interpreter)
                if compiled:
                    bytecode.install(sandbox, compiled)
            staged = stage(sandbox, task)
        except BaseException:
            self.sandboxes.discard(sandbox)
            raise
        staged.disposable = True
        return staged

    def _drop(self, future: Future[Staged]) -> None:
        """Remove a staged sandbox that will not be used."""
        if future.cancelled() or future.exception() is not None:
            return
        staged = future.result()
        staged.suite.abandon()
        self.sandboxes.discard(staged.sandbox)

    def _take(self, task: SWETask) -> Staged:
        """The sandbox staged for `task`, or one staged now."""
        with self._lock:
            pending, self._next = self._next, None
        if pending is not None:
            if pending[0] == task.instance_id:
                try:
                    return pending[1].result()
                except Exception as exc:  # staging failed in the background: try once more, here
                    log.info("staging %s failed (%s); staging again", task.instance_id, exc)
            else:
                pending[1].add_done_callback(self._drop)
        return self._stage(task)

    def _grade(
        self,
        task: SWETask,
        patch: str | None = None,
        agent: dict[str, str] | None = None,
        started: float | None = None,
    ) -> GradeResult:
        started = time.perf_counter() if started is None else started
        try:
            staged = self._take(task)
            try:
                result = grade_staged(staged, patch=patch, agent=agent)
            finally:
                staged.suite.abandon()
                self.sandboxes.discard(staged.sandbox)
            return _finish(result, started)
        except SandboxInfraError as exc:
            return _finish(GradeResult(instance_id=task.instance_id, infra_error=str(exc)), started)
        except Exception as exc:  # a grader bug: the host's fault, reported loudly, never raised into step
            log.exception("grading %s failed", task.instance_id)
            error = f"grader error {type(exc).__name__}: {exc}"
            return _finish(GradeResult(instance_id=task.instance_id, infra_error=error), started)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pending, self._next = self._next, None
        if pending is not None:
            pending[1].add_done_callback(self._drop)
        self._stager.shutdown(wait=True)
        if self.bytecode is not None:
            self.bytecode.close()
        self.sandboxes.close()

    def __enter__(self) -> Grader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def grade_patch(task: SWETask, patch: str) -> GradeResult:
    """One-off grading in a fresh sandbox (the CLI and the leaderboard hold a `Grader` for many)."""
    with Grader(warm=False) as grader:
        return grader.grade_patch(task, patch)
