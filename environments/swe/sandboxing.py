"""Where SWE-v0 gets its sandboxes: `envgym.sandboxes` Docker sandboxes, warm pools per image and role.

Why two pools per image: agent sandboxes are recycled (reset) between episodes, but grading must happen in a
sandbox no agent ever touched, so grading draws from its own pool and closes what it used. Synthesis, the env
and the grader all come through here, so limits are uniform and recorded.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
from collections.abc import Iterator
from typing import Any

from envgym.environments.swe.schema import SWETask
from envgym.sandboxes import Sandbox, SandboxLimits

SWE_LIMITS = SandboxLimits(
    memory_mb=2048, cpus=1.0, pids=256, default_timeout_s=120.0, max_output_bytes=32_768, lifetime_s=4 * 3600
)
SANDBOX_ENV = {"PYTHONDONTWRITEBYTECODE": "1", "PIP_NO_INDEX": "1"}

_pools: dict[tuple[str, str, str], Any] = {}
_lock = threading.Lock()


def open_sandbox(image: str, workdir: str, limits: SandboxLimits = SWE_LIMITS) -> Sandbox:
    """A fresh Docker sandbox on `image` with `workdir` as its workspace (no network, non-root, capped)."""
    from envgym.sandboxes.docker import DockerSandbox

    return DockerSandbox(image, limits=limits, workspace=workdir, env=dict(SANDBOX_ENV))


def pool_for(image: str, workdir: str, role: str = "agent", size: int = 1) -> Any:
    """The process-wide warm pool for (image, workdir, role), started on first use."""
    from envgym.sandboxes.pool import SandboxPool

    key = (image, workdir, role)
    with _lock:
        pool = _pools.get(key)
        if pool is None:
            pool = SandboxPool(lambda: open_sandbox(image, workdir), size=size, max_concurrent_starts=2)
            _pools[key] = pool
        return pool


_OWNER_PID = os.getpid()


def close_pools() -> None:
    """Stop every warm sandbox this process started (also runs at exit).

    A forked child (multiprocessing, AsyncVectorEnv workers) inherits `_pools` and runs threading's exit
    hooks when it ends: it must not close the parent's pools, whose containers are still in use.
    """
    if os.getpid() != _OWNER_PID:
        return
    with _lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        with contextlib.suppress(Exception):
            pool.close()


# Pools close their idle sandboxes through a thread pool, which Python refuses after interpreter shutdown has
# begun (plain atexit is too late): register with threading's pre-shutdown hook when it exists.
_register = getattr(threading, "_register_atexit", None)
if callable(_register):
    _register(close_pools)
else:  # pragma: no cover - other interpreters
    atexit.register(close_pools)


def resolve_image(task: SWETask) -> str:
    """The image to run `task` on: bundled projects map to their recipe's current content-hashed tag (so a
    rebuilt base image is picked up); external instances use their own `image` field."""
    from envgym.environments.swe.images import image_tag
    from envgym.environments.swe.recipes import RECIPES
    from envgym.sandboxes.images import BaseImageSpec

    name, _, version = task.project.partition("==")
    recipe = RECIPES.get(name)
    if task.source == "synthesized" and recipe is not None and recipe.version == version:
        return image_tag(recipe, BaseImageSpec().tag())
    return task.image


@contextlib.contextmanager
def fresh_sandbox(task: SWETask, pooled: bool = True) -> Iterator[Sandbox]:
    """A sandbox no agent has touched, on the task's image; closed (never recycled) on exit."""
    image = resolve_image(task)
    sandbox = pool_for(image, task.workdir, role="grade").checkout() if pooled else open_sandbox(image, task.workdir)
    try:
        yield sandbox
    finally:
        sandbox.close()
