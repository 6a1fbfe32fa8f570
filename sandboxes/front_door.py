"""`open_sandbox(kind, **options)`: the one way anything in envgym gets a sandbox.

Why one front door: envs, the CLI, the server, the fleet and the tests all ask for sandboxes by name, so
adding a backend (a remote one, say) means writing its module and adding one row to `BACKENDS`; nothing
else changes. Backends are imported lazily so `import envgym` never pulls in docker.
"""

from __future__ import annotations

import importlib
from typing import Any

from envgym.sandboxes.base import Sandbox

# name -> "module:callable"; the callable takes the keyword options and returns a started Sandbox.
BACKENDS: dict[str, str] = {
    "docker": "envgym.sandboxes.docker:open_docker_sandbox",
    "local": "envgym.sandboxes.local:open_local_sandbox",
}


class UnknownSandboxKind(ValueError):
    """Raised for a backend name that is not in `BACKENDS`."""


def sandbox_kinds() -> list[str]:
    """The backend names `open_sandbox` accepts."""
    return sorted(BACKENDS)


def open_sandbox(kind: str, **options: Any) -> Sandbox:
    """A started sandbox of backend `kind`; `options` go to that backend (e.g. image, source, limits, env).

    Raises `UnknownSandboxKind` for a name not in `BACKENDS`, and the backend's `SandboxError` when it cannot
    start. The caller owns the sandbox and must `close()` it.
    """
    target = BACKENDS.get(kind)
    if target is None:
        raise UnknownSandboxKind(f"unknown sandbox kind {kind!r}; choose one of: {', '.join(sandbox_kinds())}")
    module_name, _, attr = target.partition(":")
    factory = getattr(importlib.import_module(module_name), attr)
    sandbox: Sandbox = factory(**options)
    return sandbox
