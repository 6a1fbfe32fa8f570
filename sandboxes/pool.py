"""SandboxPool: warm sandboxes of one kind, handed out in microseconds, reset and reused on return.

Why: a container start costs ~0.4 s and the daemon serializes starts (16 take ~3.4 s), so an RL rollout
that needs a fresh sandbox per episode should find one already running. The pool keeps `size` idle
sandboxes, refills in the background with at most `max_concurrent_starts` starts in flight, and resets
returned sandboxes (~tens of ms) instead of replacing them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from envgym.sandboxes.base import Sandbox, SandboxInfraError

log = logging.getLogger(__name__)


class SandboxPool:
    """A pool over `factory()` (any Sandbox backend). Thread-safe; use as a context manager."""

    def __init__(
        self,
        factory: Callable[[], Sandbox],
        size: int = 4,
        max_concurrent_starts: int = 4,
        max_reuses: int = 1000,
    ) -> None:
        if size < 1:
            raise ValueError("pool size must be >= 1")
        self.factory = factory
        self.size = size
        self.max_reuses = max_reuses
        self._idle: deque[Sandbox] = deque()
        self._uses: dict[int, int] = {}
        self._starting = 0
        self._cond = threading.Condition()
        self._closed = False
        self._last_error: BaseException | None = None
        self._max_starts = max_concurrent_starts
        self._workers = ThreadPoolExecutor(max_workers=max_concurrent_starts + 2, thread_name_prefix="envgym-pool")
        self._fill()

    @classmethod
    def for_image(cls, image: str, size: int = 4, max_concurrent_starts: int = 4, **sandbox_kwargs: Any) -> SandboxPool:
        """A pool of Docker sandboxes of `image` (through the front door: `open_sandbox("docker", ...)`)."""
        from envgym.sandboxes.front_door import open_sandbox

        return cls(lambda: open_sandbox("docker", image=image, **sandbox_kwargs), size, max_concurrent_starts)

    # -- filling -----------------------------------------------------------------------------------

    def _fill(self) -> None:
        with self._cond:
            if self._closed:
                return
            missing = self.size - len(self._idle) - self._starting
            launch = max(0, min(missing, self._max_starts - self._starting))
            self._starting += launch
        for _ in range(launch):
            self._workers.submit(self._start_one)

    def _start_one(self) -> None:
        sandbox: Sandbox | None = None
        try:
            sandbox = self.factory()
        except BaseException as exc:
            log.warning("sandbox pool: starting a sandbox failed: %s", exc)
            with self._cond:
                self._last_error = exc
        with self._cond:
            self._starting -= 1
            orphan = sandbox is not None and self._closed
            if sandbox is not None and not orphan:
                self._idle.append(sandbox)
                self._uses[id(sandbox)] = 0
                self._last_error = None
            self._cond.notify_all()
        if orphan and sandbox is not None:
            sandbox.close()
        elif sandbox is not None:
            self._fill()

    # -- checkout / checkin ------------------------------------------------------------------------

    def checkout(self, timeout: float = 120.0) -> Sandbox:
        """A ready sandbox (blocks until one is ready); give it back with `checkin`."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._idle:
                if self._closed:
                    raise SandboxInfraError("the sandbox pool is closed")
                if self._last_error is not None and self._starting == 0:
                    error, self._last_error = self._last_error, None
                    raise SandboxInfraError(f"the sandbox pool cannot start sandboxes: {error}") from error
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise SandboxInfraError(f"no sandbox became ready within {timeout:.0f} s")
                if self._starting == 0:
                    self._cond.release()
                    try:
                        self._fill()
                    finally:
                        self._cond.acquire()
                    continue
                self._cond.wait(min(remaining, 0.5))
            sandbox = self._idle.popleft()
        self._fill()
        return sandbox

    def checkin(self, sandbox: Sandbox) -> None:
        """Return a sandbox: it is reset in the background and reused (or replaced if reset fails)."""
        self._workers.submit(self._recycle, sandbox)

    def _recycle(self, sandbox: Sandbox) -> None:
        uses = self._uses.get(id(sandbox), 0) + 1
        keep = not self._closed and uses < self.max_reuses
        if keep:
            try:
                sandbox.reset()
            except Exception as exc:
                log.info("sandbox pool: reset failed (%s); replacing the sandbox", exc)
                keep = False
        with self._cond:
            keep = keep and not self._closed and len(self._idle) + self._starting < self.size
            if keep:
                self._idle.append(sandbox)
                self._uses[id(sandbox)] = uses
                self._cond.notify_all()
            else:
                self._uses.pop(id(sandbox), None)
        if not keep:
            sandbox.close()
            self._fill()

    @contextmanager
    def sandbox(self, timeout: float = 120.0) -> Iterator[Sandbox]:
        """`with pool.sandbox() as sb:` checks one out and returns it afterwards."""
        sb = self.checkout(timeout)
        try:
            yield sb
        finally:
            self.checkin(sb)

    @property
    def idle(self) -> int:
        with self._cond:
            return len(self._idle)

    def wait_ready(self, timeout: float = 300.0) -> None:
        """Block until the pool holds `size` idle sandboxes (e.g. before timing anything)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._idle) < self.size:
                if self._last_error is not None and self._starting == 0:
                    raise SandboxInfraError(f"the sandbox pool cannot start sandboxes: {self._last_error}")
                if time.monotonic() > deadline:
                    raise SandboxInfraError(f"pool not ready within {timeout:.0f} s")
                self._cond.wait(0.2)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            idle = list(self._idle)
            self._idle.clear()
            self._cond.notify_all()
        self._workers.shutdown(wait=True)
        with ThreadPoolExecutor(max_workers=8) as closer:
            list(closer.map(lambda sb: sb.close(), idle))

    def __enter__(self) -> SandboxPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
