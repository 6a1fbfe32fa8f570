"""Where agent commands run: the `Sandbox` protocol with Docker and local backends, a warm pool, images.

Importing this package is cheap: docker is only imported when a Docker sandbox or image is used.
"""

from envgym.sandboxes.base import (
    ExecResult,
    Sandbox,
    SandboxError,
    SandboxInfo,
    SandboxInfraError,
    SandboxLimits,
    SandboxUnavailable,
)
from envgym.sandboxes.front_door import BACKENDS, UnknownSandboxKind, open_sandbox, sandbox_kinds

__all__ = [
    "BACKENDS",
    "ExecResult",
    "Sandbox",
    "SandboxError",
    "SandboxInfo",
    "SandboxInfraError",
    "SandboxLimits",
    "SandboxUnavailable",
    "UnknownSandboxKind",
    "open_sandbox",
    "sandbox_kinds",
]
