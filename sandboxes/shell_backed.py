"""The Sandbox protocol methods both backends share: commands through the framer, files through a helper.

Why a base class: Docker and the local jail differ in how they start and kill things, not in what
`exec`, the file methods, `reset` or the context manager do with their `PersistentShell` and `AgentFiles`.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any

from envgym.sandboxes.agent_files import AgentFiles
from envgym.sandboxes.base import ExecResult, SandboxInfraError, SandboxLimits
from envgym.sandboxes.shell import PersistentShell


class ShellBackedSandbox:
    """Subclasses set `limits`, `workspace`, `shell`, `files` and `_closed`, and may override `_after_reset`."""

    limits: SandboxLimits
    workspace: str
    shell: PersistentShell
    files: AgentFiles
    _closed: bool

    def _check_open(self) -> None:
        if self._closed:
            raise SandboxInfraError(f"this {type(self).__name__} is closed; create a new one")

    def exec(self, command: str, timeout: float | None = None) -> ExecResult:
        self._check_open()
        return self.shell.run(command, self.limits.default_timeout_s if timeout is None else timeout)

    def read_file(self, path: str, max_bytes: int | None = None) -> bytes:
        return self.files.read(path, self.workspace, max_bytes)

    def write_file(self, path: str, data: bytes) -> None:
        self.files.write({path: data}, self.workspace)

    def write_files(self, files: Mapping[str, bytes]) -> None:
        self.files.write(files, self.workspace)

    def reset(self) -> None:
        self._check_open()
        result = self.shell.reset()
        if result.exit_code != 0:
            raise SandboxInfraError(f"restoring the workspace failed: {result.output[-2000:]}")
        self._after_reset()

    def _after_reset(self) -> None:
        """What a backend does once the framer has killed everything and emptied or synced the workspace."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Any:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
