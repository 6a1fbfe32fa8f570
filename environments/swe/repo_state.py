"""Put the buggy tree in front of the agent as a single root commit with no trace of how it got there.

Why: history is the classic leak (SWE-bench #465, SWE-smith's "Bug Patch" HEAD): remotes, tags, reflog, stash,
packed refs or the pristine file left in /tmp would hand over the fix. We apply the bug patch with no repository
present, then create a brand-new repository holding one commit with fixed author, date and message, so the same
task always yields the same commit id and the same initial observation.
"""

from __future__ import annotations

import secrets
import shlex

from envgym.sandboxes import Sandbox, SandboxInfraError

COMMIT_ENV = (
    "GIT_AUTHOR_NAME=envgym GIT_AUTHOR_EMAIL=envgym@localhost GIT_COMMITTER_NAME=envgym "
    "GIT_COMMITTER_EMAIL=envgym@localhost GIT_AUTHOR_DATE='2025-01-01T00:00:00+0000' "
    "GIT_COMMITTER_DATE='2025-01-01T00:00:00+0000'"
)


def apply_patch(sandbox: Sandbox, workdir: str, patch: str, what: str = "patch") -> tuple[bool, str]:
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


def prepare_task_repo(sandbox: Sandbox, workdir: str, bug_patch: str) -> str:
    """Pristine tree -> buggy tree -> single root commit. Returns the commit id (the task's base_commit)."""
    ok, output = apply_patch(sandbox, workdir, bug_patch, "bug patch")
    if not ok:
        raise SandboxInfraError(f"the task's bug patch does not apply to the image's tree: {output[-1000:]}")
    return commit_root(sandbox, workdir)
