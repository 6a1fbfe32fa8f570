"""The one place tool-use families get a sandbox from, and the base class of families that run commands.

Why: `python` and file tools must run where a runaway command cannot hurt the host or the env, on the
local backend by default and in Docker when asked (`sandbox="docker"`); sandbox failures must surface as the
contract's `InfraError` (so trainers drop the episode) while timeouts and floods stay ordinary feedback.
"""

from __future__ import annotations

import contextlib
from typing import Any

from envgym.core import InfraError
from envgym.environments.tools.base import ToolTaskEnv
from envgym.sandboxes import ExecResult, Sandbox, SandboxError


def make_sandbox(kind: str = "local", options: dict[str, Any] | None = None) -> Sandbox:
    """A fresh sandbox of the given backend (`local` or `docker`); options go to its constructor (Docker's
    `image` defaults to envgym's base image, built offline on first use)."""
    opts = dict(options or {})
    try:
        if kind == "local":
            from envgym.sandboxes.local import LocalSandbox

            return LocalSandbox(**opts)
        if kind == "docker":
            from envgym.sandboxes.docker import DockerSandbox

            if "image" not in opts:  # the offline-built base image has python3, grep and coreutils
                from envgym.sandboxes.images.base_image import ensure_base_image

                opts["image"] = ensure_base_image()
            return DockerSandbox(**opts)
    except SandboxError as exc:
        raise InfraError(f"could not start a {kind} sandbox: {exc}") from exc
    except ImportError as exc:
        raise InfraError(f"the {kind} sandbox backend is not available: {exc}") from exc
    raise ValueError(f"unknown sandbox kind {kind!r}; choose 'local' or 'docker'")


class SandboxedTaskEnv(ToolTaskEnv):
    """A family whose tools run commands in a sandbox, created on first use and reset between tasks."""

    def __init__(
        self,
        difficulty: float | None = None,
        max_turns: int | None = None,
        params: dict[str, Any] | None = None,
        render_mode: str | None = None,
        sandbox: str = "local",
        sandbox_options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(difficulty=difficulty, max_turns=max_turns, params=params, render_mode=render_mode)
        if sandbox not in ("local", "docker"):
            raise ValueError(f"unknown sandbox kind {sandbox!r}; choose 'local' or 'docker'")
        self.sandbox_kind = sandbox
        self.sandbox_options = dict(sandbox_options or {})
        self.box: Sandbox | None = None

    def prepare_sandbox(self, files: dict[str, bytes]) -> None:
        """A pristine workspace holding exactly `files` (paths relative to the workspace)."""
        try:
            if self.box is None:
                self.box = make_sandbox(self.sandbox_kind, self.sandbox_options)
            else:
                self.box.reset()
            for path, data in files.items():
                self.box.write_file(path, data)
        except SandboxError as exc:
            self._drop_box()
            raise InfraError(f"preparing the sandbox failed: {exc}") from exc
        except OSError as exc:
            self._drop_box()
            raise InfraError(f"preparing the sandbox failed: {exc}") from exc

    def run_command(self, command: str, timeout: float) -> tuple[ExecResult, dict[str, Any]]:
        """Run one command; returns the result and its trajectory record. Sandbox failure -> InfraError."""
        if self.box is None:
            raise InfraError("the sandbox is not running (reset() the env first)")
        try:
            result = self.box.exec(command, timeout=timeout)
        except SandboxError as exc:
            self._drop_box()
            raise InfraError(f"the sandbox failed while running a command: {exc}") from exc
        record = {
            "command": command if len(command) <= 4000 else command[:4000] + "...",
            "exit_code": result.exit_code,
            "output": result.output,
            "truncated": result.truncated,
            "timed_out": result.timed_out,
            "duration_s": result.duration_s,
        }
        return result, record

    def sandbox_info(self) -> dict[str, Any]:
        limits = getattr(self.box, "limits", None)
        return {"backend": self.sandbox_kind, "limits": limits.model_dump() if limits is not None else None}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict]:
        observation, info = super().reset(seed=seed, options=options)
        info["sandbox"] = self.sandbox_info()
        return observation, info

    def _drop_box(self) -> None:
        box, self.box = self.box, None
        if box is not None:
            with contextlib.suppress(Exception):  # closing a broken sandbox must not hide the original failure
                box.close()

    def close(self) -> None:
        self._drop_box()
        super().close()
