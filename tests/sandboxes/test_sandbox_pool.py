"""SandboxPool: warm checkout, reuse after reset, bounded concurrent starts, refill, failures."""

from __future__ import annotations

import threading
import time

import pytest

from envgym.sandboxes import SandboxInfraError
from envgym.sandboxes.local import LocalSandbox
from envgym.sandboxes.pool import SandboxPool


class FakeSandbox:
    """Counts concurrent starts; resets and closes are recorded."""

    live = 0
    peak = 0
    lock = threading.Lock()

    def __init__(self) -> None:
        with FakeSandbox.lock:
            FakeSandbox.live += 1
            FakeSandbox.peak = max(FakeSandbox.peak, FakeSandbox.live)
        time.sleep(0.05)
        with FakeSandbox.lock:
            FakeSandbox.live -= 1
        self.resets = 0
        self.closed = False

    def reset(self) -> None:
        self.resets += 1

    def close(self) -> None:
        self.closed = True


def test_pool_bounds_concurrent_starts_and_fills_to_size():
    FakeSandbox.peak = 0
    with SandboxPool(FakeSandbox, size=8, max_concurrent_starts=3) as pool:  # type: ignore[arg-type]
        pool.wait_ready(timeout=30)
        assert pool.idle == 8
        assert FakeSandbox.peak <= 3


def test_checkout_returns_warm_sandbox_and_refills():
    with SandboxPool(FakeSandbox, size=2, max_concurrent_starts=2) as pool:  # type: ignore[arg-type]
        pool.wait_ready()
        a = pool.checkout()
        b = pool.checkout()
        assert a is not b
        pool.wait_ready(timeout=30)  # refilled in the background
        assert pool.idle == 2
        pool.checkin(a)
        pool.checkin(b)
        deadline = time.monotonic() + 10
        while (a.resets == 0 or b.resets == 0) and time.monotonic() < deadline:
            time.sleep(0.01)
        # The pool was already full, so returned sandboxes are reset... then closed as surplus.
        time.sleep(0.2)
        assert a.closed and b.closed


def test_returned_local_sandbox_is_reset_and_reused():
    with SandboxPool(LocalSandbox, size=1, max_concurrent_starts=1) as pool:  # type: ignore[arg-type]
        with pool.sandbox() as sb:
            first = sb
            sb.exec("echo dirty > file; cd /tmp; export X=1")
        deadline = time.monotonic() + 30
        while pool.idle < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        with pool.sandbox() as sb:
            assert sb is first or sb.exec("true").exit_code == 0
            assert sb.exec('ls; pwd; echo "[${X-}]"').output == f"{sb.workspace}\n[]\n"


def test_factory_failure_surfaces_as_infra_error():
    def broken():
        raise SandboxInfraError("daemon down")

    with SandboxPool(broken, size=1) as pool, pytest.raises(SandboxInfraError, match="daemon down"):
        pool.checkout(timeout=10)


@pytest.mark.docker
def test_docker_pool_checkout(base_image):
    with SandboxPool.for_image(base_image, size=2, max_concurrent_starts=2) as pool:
        pool.wait_ready(timeout=120)
        with pool.sandbox() as sb:
            assert sb.exec("echo from-pool").output == "from-pool\n"
            sb.exec("touch leftover")
        with pool.sandbox() as sb2, pool.sandbox() as sb3:
            for s in (sb2, sb3):
                assert "leftover" not in s.exec("ls").output
