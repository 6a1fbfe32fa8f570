"""Where SWE-v0 gets its sandboxes: Docker sandboxes through `open_sandbox`, in warm pools owned by their user.

Why pools per role and per owner: agent sandboxes are recycled (reset) between episodes, but grading must happen
in a sandbox no agent ever touched, so the env holds one `SWESandboxes` for its agents and its grader holds
another; each is closed by whoever opened it (`env.close()`), with no process-global state and no exit hooks.
"""

from __future__ import annotations

import functools
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait

from envgym.environments.swe.schema import SWETask
from envgym.sandboxes import Sandbox, SandboxInfraError, SandboxLimits, open_sandbox
from envgym.sandboxes.pool import SandboxPool

SWE_LIMITS = SandboxLimits(
    memory_mb=2048, cpus=1.0, pids=256, default_timeout_s=120.0, max_output_bytes=32_768, lifetime_s=4 * 3600
)
SANDBOX_ENV = {"PYTHONDONTWRITEBYTECODE": "1", "PIP_NO_INDEX": "1"}


def open_swe_sandbox(image: str, workdir: str, limits: SandboxLimits = SWE_LIMITS) -> Sandbox:
    """A fresh Docker sandbox on `image` with `workdir` as its workspace (no network, non-root, capped)."""
    return open_sandbox("docker", image=image, workspace=workdir, limits=limits, env=dict(SANDBOX_ENV))


class SWESandboxes:
    """Warm sandbox pools of one role, one per (image, workdir), started on first use and closed by `close()`."""

    def __init__(self, role: str, size: int = 1, warm: bool = True) -> None:
        self.role = role
        self.warm = warm
        self.size = max(1, int(size))
        self._pools: dict[tuple[str, str], SandboxPool] = {}
        self._lock = threading.Lock()
        self._closed = False
        # used sandboxes are removed off the caller's path (a container removal costs ~0.2-0.4 s)
        self._discards = ThreadPoolExecutor(max_workers=2, thread_name_prefix=f"envgym-swe-{role}-close")
        self._pending: set[Future[None]] = set()

    def pool(self, image: str, workdir: str) -> SandboxPool:
        with self._lock:
            if self._closed:
                raise SandboxInfraError(f"the {self.role} sandboxes were closed")
            pool = self._pools.get((image, workdir))
            if pool is None:
                pool = SandboxPool(lambda: open_swe_sandbox(image, workdir), size=self.size, max_concurrent_starts=2)
                self._pools[(image, workdir)] = pool
            return pool

    def checkout(self, task: SWETask) -> tuple[Sandbox, SandboxPool | None]:
        """A ready sandbox for `task` and the pool to return it to (None: not pooled, close it when done)."""
        image = require_image(resolve_image(task), task)
        if not self.warm:
            return open_swe_sandbox(image, task.workdir), None
        pool = self.pool(image, task.workdir)
        return pool.checkout(), pool

    def discard(self, sandbox: Sandbox) -> None:
        """Close a used sandbox in the background (never recycled); `close()` waits for it."""
        try:
            future = self._discards.submit(sandbox.close)
        except RuntimeError:  # already shut down: close it here
            sandbox.close()
            return
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._forget)

    def _forget(self, future: Future[None]) -> None:
        with self._lock:
            self._pending.discard(future)

    def settle(self, timeout: float = 300.0) -> None:
        """Wait until no removal is in flight and every pool is full (benchmarks: time nothing that competes
        with background work of an earlier measurement)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            pending, pools = list(self._pending), list(self._pools.values())
        wait(pending, timeout=timeout)
        for pool in pools:
            pool.wait_ready(timeout=max(1.0, deadline - time.monotonic()))

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pools = list(self._pools.values())
            self._pools.clear()
        for pool in pools:
            pool.close()
        self._discards.shutdown(wait=True)


def resolve_image(task: SWETask) -> str:
    """The image to run `task` on: bundled projects map to their recipe's current content-hashed tag (so a
    rebuilt base image is picked up); external instances use their own `image` field."""
    from envgym.environments.swe.images import image_tag
    from envgym.environments.swe.recipes import RECIPES
    from envgym.sandboxes.images import BaseImageSpec

    recipe = _recipe(task)
    if recipe is not None:
        return image_tag(RECIPES[recipe], BaseImageSpec().tag())
    return task.image


def _recipe(task: SWETask) -> str | None:
    from envgym.environments.swe.recipes import RECIPES

    name, _, version = task.project.partition("==")
    recipe = RECIPES.get(name)
    return name if task.source == "synthesized" and recipe is not None and recipe.version == version else None


@functools.lru_cache(maxsize=64)
def _built(image: str) -> bool:
    from envgym.environments.swe.images import image_exists

    return image_exists(image)


def require_image(image: str, task: SWETask) -> str:
    """`image`, or a SandboxInfraError whose message says how to build it (cached once found)."""
    try:
        present = _built(image)
    except Exception as exc:  # no engine: let the sandbox layer explain
        raise SandboxInfraError(f"cannot reach the Docker engine to look for {image}: {exc}") from exc
    if not present:
        _built.cache_clear()
        raise SandboxInfraError(f"the image {image} for {task.instance_id} is not built: {build_hint(task)}")
    return image


def build_hint(task: SWETask) -> str:
    """What to run to get `task`'s image."""
    if _recipe(task):
        return f"run `envgym swe build --project {task.project}`"
    return f"build it, or `docker load` it ({task.image} is an external instance's own image)"
