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
)

__all__ = ["ExecResult", "Sandbox", "SandboxError", "SandboxInfo", "SandboxInfraError", "SandboxLimits"]
