"""`open_sandbox(kind, **options)`: the one way anything in envgym gets a sandbox.

Why one front door: envs, the CLI, the server, the fleet and the tests all ask for sandboxes by name, so
adding a backend (a remote one, say) means writing its module and adding one row to `BACKENDS`; nothing
else changes. Backends are imported lazily so `import envgym` never pulls in docker.

`auto` (the default of every env that runs agent code) picks the first backend that really isolates here:
the local bubblewrap jail, else Docker. Where neither exists it raises `SandboxUnavailable`; nothing ever
falls back to running agent code on the host.
"""

from __future__ import annotations

import importlib
from typing import Any

from envgym.sandboxes.base import Sandbox, SandboxUnavailable

# name -> "module:callable"; the callable takes the keyword options and returns a started Sandbox.
BACKENDS: dict[str, str] = {
    "auto": "envgym.sandboxes.front_door:open_confined_sandbox",
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


# Options only the Docker backend understands: asking for them means asking for Docker.
DOCKER_ONLY = frozenset({"image", "workspace", "uid", "transport"})


def open_confined_sandbox(**options: Any) -> Sandbox:
    """The `auto` row: the local bubblewrap jail if it can be built here, else Docker, else refuse."""
    from envgym.sandboxes.local import bwrap_problem

    problem = bwrap_problem()
    if not problem and not DOCKER_ONLY & options.keys():
        return open_sandbox("local", **options)
    from envgym.sandboxes.docker_client import docker_available

    if docker_available():
        return open_sandbox("docker", **options)
    reason = problem or f"options {sorted(DOCKER_ONLY & options.keys())} need Docker"
    raise SandboxUnavailable(
        f"no sandbox that isolates agent code is available here: {reason}, and no Docker engine answers. "
        "Install bubblewrap (`apt-get install bubblewrap`) or start Docker; envgym will not run agent code "
        "on the host unconfined."
    )
