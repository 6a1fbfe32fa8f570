"""Which isolation boundary this leaderboard server re-grades agent code in, and which envs need one.

Why at upload time: re-grading a ToolUse-Compute/Files or SWE episode re-runs a stranger's commands. A server
must only do that inside a sandbox that really isolates (Docker, or the bubblewrap `local` backend), so it finds
out once, at start, which backend it can open; a bundle with such envs is refused on upload (never queued)
when there is none, instead of failing or, worse, running the payload on the server.
"""

from __future__ import annotations

import inspect
from typing import Literal

from pydantic import BaseModel

from envgym.leaderboard.bundle import is_patch_env

BoundaryChoice = Literal["auto", "local", "docker", "none"]
AUTO_ORDER = ("local", "docker")  # the tool envs' own default first


class Boundary(BaseModel):
    """The outcome of the probe: the backend used for re-grading (None: no boundary) and why not, per kind."""

    kind: str | None
    docker: bool
    problems: dict[str, str]

    def refusal(self, env_id: str) -> str | None:
        """Why this server cannot re-grade `env_id` (None when it can)."""
        if not runs_agent_code(env_id):
            return None
        if is_patch_env(env_id):
            if self.docker:
                return None
            why = self.problems.get("docker", "the Docker backend is off on this server")
            return f"{env_id} is graded in Docker sandboxes and this server has none ({why})"
        if self.kind is not None:
            return None
        whys = "; ".join(f"{k}: {v}" for k, v in self.problems.items()) or "sandboxes are off on this server"
        return (
            f"{env_id} re-runs the agent's commands and this server has no isolation boundary to run them in "
            f"({whys}); it never runs submitted code unconfined"
        )


def runs_agent_code(env_id: str) -> bool:
    """Whether re-grading `env_id` executes agent-written commands (it takes a sandbox, or grades patches)."""
    from envgym.registry import entry

    if is_patch_env(env_id):
        return True
    try:
        env_class = entry(env_id).load_class()
    except KeyError:
        return False  # not gradable at all; the split/version check refuses it
    return "sandbox" in inspect.signature(env_class).parameters


def _opens(kind: str) -> str:
    """ "" when a sandbox of `kind` starts and runs a command here, else the reason it does not."""
    from envgym.sandboxes import open_sandbox

    try:
        box = open_sandbox(kind)
    except Exception as exc:  # any failure to build the jail means "no boundary of this kind"
        return " ".join(str(exc).split())[:300] or type(exc).__name__
    try:
        result = box.exec("true", timeout=30)
        return "" if result.exit_code == 0 else f"a probe command exited {result.exit_code}"
    except Exception as exc:
        return " ".join(str(exc).split())[:300] or type(exc).__name__
    finally:
        box.close()


def probe(choice: BoundaryChoice) -> Boundary:
    """Open (and close) one sandbox per candidate backend to learn which boundary this host really has."""
    if choice == "none":
        off = "disabled with --sandbox none"
        return Boundary(kind=None, docker=False, problems={"local": off, "docker": off})
    candidates = AUTO_ORDER if choice == "auto" else (choice,)
    problems: dict[str, str] = {}
    for kind in dict.fromkeys((*candidates, "docker")):  # Docker is always probed: SWE grading needs it
        if why := _opens(kind):
            problems[kind] = why
    kind = next((k for k in candidates if k not in problems), None)
    return Boundary(kind=kind, docker="docker" not in problems, problems=problems)
