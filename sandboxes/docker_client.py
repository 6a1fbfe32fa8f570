"""One shared docker SDK client per process, with daemon failures turned into `SandboxInfraError`.

Why: creating a client per sandbox costs a connection pool each, and a daemon that is down should give
one clear message instead of a requests traceback.
"""

from __future__ import annotations

import threading
from typing import Any

from envgym.extras import require
from envgym.sandboxes.base import SandboxInfraError

_lock = threading.Lock()
_client: Any = None


def docker_client() -> Any:
    """The process-wide `docker.DockerClient`; raises `SandboxInfraError` if no engine answers."""
    global _client
    with _lock:
        if _client is None:
            require("docker")  # a missing package is a missing extra, not a daemon that is down
            try:
                import docker

                client = docker.from_env(timeout=120, max_pool_size=64)
                client.ping()
            except Exception as exc:
                raise SandboxInfraError(
                    f"no Docker engine reachable ({exc}). Start one (`dockerd &` or `sudo systemctl start "
                    "docker`), set DOCKER_HOST, or use LocalSandbox."
                ) from exc
            _client = client
        return _client


def docker_available() -> bool:
    try:
        docker_client()
    except SandboxInfraError:
        return False
    return True
