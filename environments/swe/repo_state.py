"""Put the buggy tree in front of the agent as a single root commit with no trace of how it got there.

Why: history is the classic leak (SWE-bench #465, SWE-smith's "Bug Patch" HEAD): remotes, tags, reflog, stash,
packed refs or a pristine file left in /tmp would hand over the fix. The buggy tree is built on the host and
uploaded into an empty workspace (synthesized tasks), or taken from the instance's image (external tasks); then
a brand-new repository gets one commit with fixed author, date and message, so the same task always yields the
same commit id and the same initial observation.
"""

from __future__ import annotations

import secrets
import shlex

from envgym.environments.swe.recipes import RECIPES
from envgym.environments.swe.schema import SWETask
from envgym.environments.swe.trees import Tree, apply_unified, pristine_tree, upload_tree
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
        f"cd {shlex.quote(workdir)} && git apply --whitespace=nowarn {path}; rc=$?; rm -f {path}; exit $rc",
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


def install_buggy_tree(sandbox: Sandbox, task: SWETask) -> None:
    """Make `task.workdir` hold exactly the buggy tree."""
    if task.source == "synthesized":
        upload_tree(sandbox, task.workdir, buggy_tree(task))
        return
    ok, output = apply_patch(sandbox, task.workdir, task.bug_patch)
    if not ok:
        raise SandboxInfraError(f"the bug patch of {task.instance_id} does not apply to {task.image}: {output[-500:]}")


def commit_root(sandbox: Sandbox, workdir: str) -> str:
    """Replace any repository in `workdir` by one root commit of the current tree; returns the commit id."""
    script = f"""
set -e
cd {shlex.quote(workdir)}
rm -rf .git
find . -name __pycache__ -prune -exec rm -rf {{}} +
git init -q -b main
git config user.name agent && git config user.email agent@localhost && git config commit.gpgsign false
git add -A
{COMMIT_ENV} git commit -q -m "Initial commit"
rm -rf .git/logs .git/hooks .git/COMMIT_EDITMSG .git/description .git/info/exclude
git rev-parse HEAD
"""
    result = sandbox.exec(script, timeout=60)
    if result.exit_code != 0:
        raise SandboxInfraError(f"could not create the task repository: {result.output[-1000:]}")
    return result.output.strip().splitlines()[-1]


def prepare_task_repo(sandbox: Sandbox, task: SWETask) -> str:
    """Buggy tree + single root commit. Returns the commit id (the task's base_commit)."""
    install_buggy_tree(sandbox, task)
    return commit_root(sandbox, task.workdir)
