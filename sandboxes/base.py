"""The sandbox contract every backend implements, its result and limit records, and its one error type.

Why here: environments code against `Sandbox` and `ExecResult` only, so Docker and local backends are
interchangeable, and `SandboxLimits` is what trajectories record so results stay comparable.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field


class SandboxError(Exception):
    """Base class of sandbox errors."""


class SandboxInfraError(SandboxError):
    """The sandbox or its host failed (not the agent): daemon down, image missing, container died/OOM.

    Envs turn this into `info["infra_error"]` so trainers drop the episode instead of learning a fake zero.
    """


class SandboxUnavailable(SandboxInfraError):
    """No isolation boundary of the requested kind can be built on this host (no bwrap, no Docker engine).

    Raised instead of running agent code on the host unconfined; the message names the alternative.
    """


class ExecResult(BaseModel):
    """What one command did. `output` is stdout+stderr interleaved, capped head+tail inside the sandbox."""

    model_config = ConfigDict(frozen=True)

    exit_code: int
    output: str
    truncated: bool = False
    timed_out: bool = False
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


class SandboxLimits(BaseModel):
    """Resource limits of a sandbox; recorded in every trajectory so results are comparable."""

    model_config = ConfigDict(frozen=True)

    memory_mb: int = Field(1024, description="memory cap (swap capped to the same value)")
    cpus: float = Field(1.0, description="CPU share (Docker nano_cpus); local: not enforced")
    pids: int = Field(256, description="max processes/threads in the sandbox")
    file_size_mb: int = Field(1024, description="max size of any one file a command writes")
    cpu_time_s: int = Field(600, description="CPU seconds per command (local rlimit)")
    network: bool = Field(False, description="whether commands may use the network")
    default_timeout_s: float = Field(120.0, description="timeout for exec(timeout=None)")
    max_output_bytes: int = Field(32_768, description="output cap per command (head + tail)")
    lifetime_s: int = Field(6 * 3600, description="a Docker sandbox removes itself after this long")


class SandboxInfo(BaseModel):
    """What a trajectory records about where its commands ran."""

    backend: str
    image: str = ""
    image_id: str = ""
    limits: SandboxLimits


@runtime_checkable
class Sandbox(Protocol):
    """Where agent commands run. Paths are relative to the workspace unless absolute.

    File methods act with the agent's uid: they reach exactly what the agent's shell can (never root's
    view), and fail with PermissionError / FileNotFoundError / IsADirectoryError saying why. `read_file` reads
    regular files only (a pipe or a device is an OSError, not a hang) and refuses one over `max_bytes`.
    """

    limits: SandboxLimits
    workspace: str

    def exec(self, command: str, timeout: float | None = None) -> ExecResult: ...
    def read_file(self, path: str, max_bytes: int | None = None) -> bytes: ...
    def write_file(self, path: str, data: bytes) -> None: ...
    def write_files(self, files: Mapping[str, bytes]) -> None:
        """Several files in one go (one helper process instead of one each); same rules as write_file."""
        ...

    def reset(self) -> None: ...
    def close(self) -> None: ...
    def info(self) -> SandboxInfo: ...
    def __enter__(self) -> Sandbox: ...
    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...
