"""The base class of tool-use families whose tools run commands in a sandbox.

Why: `python` and file tools run agent-written code, which must never run on the host unconfined: the
default sandbox is `auto` (a local bubblewrap jail, else Docker, else a clear refusal), and any backend
in `envgym.sandboxes.BACKENDS` can be named. Sandbox failures surface as the contract's `InfraError` (so
trainers drop the episode) while timeouts and floods stay ordinary feedback.
"""

from __future__ import annotations

import contextlib
from typing import Any

from envgym.core import InfraError
from envgym.environments.tools.base import ToolTaskEnv
from envgym.sandboxes import ExecResult, Sandbox, SandboxError, open_sandbox, sandbox_kinds
from envgym.trajectory import CommandRecord

MAX_RECORDED_COMMAND_CHARS = 4000


class SandboxedTaskEnv(ToolTaskEnv):
    """A family whose tools run commands in a sandbox, opened on first use and reset between tasks."""

    def __init__(
        self,
        difficulty: float | None = None,
        max_turns: int | None = None,
        params: dict[str, Any] | None = None,
        render_mode: str | None = None,
        sandbox: str = "auto",
        sandbox_options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(difficulty=difficulty, max_turns=max_turns, params=params, render_mode=render_mode)
        if sandbox not in sandbox_kinds():
            raise ValueError(f"unknown sandbox kind {sandbox!r}; choose one of: {', '.join(sandbox_kinds())}")
        self.sandbox_kind = sandbox
        self.sandbox_options = dict(sandbox_options or {})
        self.sandbox = None

    @property
    def box(self) -> Sandbox | None:
        """The open sandbox (None until the first reset, or after a failure dropped it)."""
        box: Sandbox | None = self.sandbox
        return box

    def prepare_sandbox(self, files: dict[str, bytes]) -> None:
        """A pristine workspace holding exactly `files` (paths relative to the workspace)."""
        try:
            if self.box is None:
                self.sandbox = open_sandbox(self.sandbox_kind, **self.sandbox_options)
            else:
                self.box.reset()
            assert self.box is not None
            self.box.write_files(files)
        except (SandboxError, OSError) as exc:
            self._drop_box()
            raise InfraError(f"preparing the {self.sandbox_kind} sandbox failed: {exc}") from exc

    def run_command(self, command: str, timeout: float) -> tuple[ExecResult, dict[str, Any]]:
        """Run one command; returns the result and its trajectory record. Sandbox failure -> InfraError."""
        if self.box is None:
            raise InfraError("the sandbox is not running (reset() the env first)")
        try:
            result = self.box.exec(command, timeout=timeout)
        except SandboxError as exc:
            self._drop_box()
            raise InfraError(f"the sandbox failed while running a command: {exc}") from exc
        record = CommandRecord.from_exec(command, result, max_command_chars=MAX_RECORDED_COMMAND_CHARS)
        return result, record.model_dump()

    def sandbox_info(self) -> dict[str, Any]:
        if self.box is None:
            return {"backend": self.sandbox_kind, "limits": None}
        info = self.box.info()
        return {"backend": info.backend, "limits": info.limits.model_dump()}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict]:
        observation, info = super().reset(seed=seed, options=options)
        info["sandbox"] = self.sandbox_info()
        return observation, info

    def _drop_box(self) -> None:
        box, self.sandbox = self.box, None
        if box is not None:
            with contextlib.suppress(Exception):  # closing a broken sandbox must not hide the original failure
                box.close()

    def close(self) -> None:
        self._drop_box()
        super().close()
