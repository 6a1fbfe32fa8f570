"""Put the buggy tree in front of the agent as a single root commit with no trace of how it got there.

Why: history is the classic leak (SWE-bench #465, SWE-smith's "Bug Patch" HEAD): remotes, tags, reflog, stash,
packed refs or a pristine file left in /tmp would hand over the fix. The buggy tree is built on the host and
uploaded into an empty workspace (synthesized tasks), or taken from the instance's image (external tasks); then
a brand-new repository gets one commit with fixed author, date and message, so the same task always yields the
same commit id and the same initial observation.
"""

from __future__ import annotations

import functools
import hashlib
import os
import secrets
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

from envgym.environments.swe.recipes import RECIPES
from envgym.environments.swe.schema import SWETask
from envgym.environments.swe.trees import (
    Tree,
    apply_unified,
    is_relative_inside,
    pristine_tree,
    tree_tar,
    upload_archive,
    upload_tree,
)
from envgym.sandboxes import Sandbox, SandboxInfraError

COMMIT_ENV = (
    "GIT_AUTHOR_NAME=envgym GIT_AUTHOR_EMAIL=envgym@localhost GIT_COMMITTER_NAME=envgym "
    "GIT_COMMITTER_EMAIL=envgym@localhost GIT_AUTHOR_DATE='2025-01-01T00:00:00+0000' "
    "GIT_COMMITTER_DATE='2025-01-01T00:00:00+0000'"
)


def apply_patch(sandbox: Sandbox, workdir: str, patch: str) -> tuple[bool, str]:
    """`git apply` a patch in `workdir` (works without a repository); returns (ok, output)."""
    if not patch.strip():
        return True, ""
    path = f"/tmp/.envgym-{secrets.token_hex(8)}.diff"
    sandbox.write_file(path, patch.encode())
    result = sandbox.exec(
        f"(cd {shlex.quote(workdir)} && git apply --whitespace=nowarn {path}; rc=$?; rm -f {path}; exit $rc)",
        timeout=60,
    )
    return result.exit_code == 0, result.output


def buggy_tree(task: SWETask) -> Tree:
    """Pinned sdist + the task's bug patch, built in memory (synthesized tasks only)."""
    name, _, version = task.project.partition("==")
    recipe = RECIPES.get(name)
    if recipe is None or recipe.version != version:
        raise SandboxInfraError(f"task {task.instance_id} needs project {task.project!r}, which has no recipe")
    return apply_unified(pristine_tree(recipe), task.bug_patch)


@functools.lru_cache(maxsize=256)
def _repo_archive(task_json: str) -> tuple[bytes, str] | None:
    """The buggy tree plus its one-commit .git, built with the host's git (None if git is missing); cached in
    memory and on disk (keyed by the bug patch and the sdist hash), so a reset only uploads."""
    task = SWETask.model_validate_json(task_json)
    from envgym.environments.swe.images import cache_dir

    key = hashlib.sha256(f"{task.project}\n{task.environment_setup_commit}\n{task.bug_patch}".encode()).hexdigest()[:24]
    cached = cache_dir() / "repos" / f"{key}.tar"
    if cached.exists() and cached.with_suffix(".commit").exists():
        return cached.read_bytes(), cached.with_suffix(".commit").read_text().strip()
    built = _build_repo_archive(task)
    if built is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(built[0])
        cached.with_suffix(".commit").write_text(built[1])
        tmp.replace(cached)
    return built


def _build_repo_archive(task: SWETask) -> tuple[bytes, str] | None:
    if shutil.which("git") is None:
        return None
    with tempfile.TemporaryDirectory(prefix="envgym-repo-") as tmp:
        root = Path(tmp)
        for name, data in buggy_tree(task).items():
            if not is_relative_inside(name):  # a task file's name must never leave the temporary tree
                raise ValueError(f"task {task.instance_id}: file name {name[:200]!r} leaves the project tree")
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(data)
            (root / name).chmod(0o644)
        script = COMMIT_SCRIPT.format(workdir=shlex.quote(tmp))
        proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=_git_env())
        if proc.returncode != 0:
            return None
        commit = proc.stdout.strip().splitlines()[-1]
        tree: Tree = {}
        for path in sorted(root.rglob("*")):
            if path.is_file():
                tree[path.relative_to(root).as_posix()] = path.read_bytes()
    return tree_tar(tree), commit


def _git_env() -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TMPDIR")}
    return {**keep, "HOME": "/nonexistent", "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null"}


def install_task_repo(sandbox: Sandbox, task: SWETask) -> str | None:
    """Fast path: upload the prebuilt buggy tree + .git in one archive; returns the commit id (None: not
    available, use `install_buggy_tree` + `commit_root`)."""
    if task.source != "synthesized":
        return None
    archive = _repo_archive(task.model_dump_json())
    if archive is None:
        return None
    data, commit = archive
    upload_archive(sandbox, task.workdir, data)
    return commit


def install_buggy_tree(sandbox: Sandbox, task: SWETask) -> None:
    """Make `task.workdir` hold exactly the buggy tree."""
    if task.source == "synthesized":
        upload_tree(sandbox, task.workdir, buggy_tree(task))
        return
    ok, output = apply_patch(sandbox, task.workdir, task.bug_patch)
    if not ok:
        raise SandboxInfraError(f"the bug patch of {task.instance_id} does not apply to {task.image}: {output[-500:]}")


COMMIT_SCRIPT = (
    """
set -e
cd {workdir}
rm -rf .git
find . -name __pycache__ -prune -exec rm -rf {{}} +
git init -q -b main
git config user.name agent && git config user.email agent@localhost && git config commit.gpgsign false
git add -A
"""
    + COMMIT_ENV
    + """ git commit -q -m "Initial commit"
rm -rf .git/logs .git/hooks .git/COMMIT_EDITMSG .git/description .git/info/exclude .git/ORIG_HEAD
git rev-parse HEAD
"""
)


def commit_root(sandbox: Sandbox, workdir: str) -> str:
    """Replace any repository in `workdir` by one root commit of the current tree; returns the commit id."""
    # a subshell: `set -e` and `cd` must not leak into the sandbox's persistent shell
    result = sandbox.exec(f"({COMMIT_SCRIPT.format(workdir=shlex.quote(workdir))})", timeout=60)
    if result.exit_code != 0:
        raise SandboxInfraError(f"could not create the task repository: {result.output[-1000:]}")
    return result.output.strip().splitlines()[-1]


def prepare_task_repo(sandbox: Sandbox, task: SWETask) -> str:
    """Buggy tree + single root commit. Returns the commit id (the task's base_commit)."""
    commit = install_task_repo(sandbox, task)
    if commit is not None:
        return commit
    install_buggy_tree(sandbox, task)
    return commit_root(sandbox, task.workdir)
