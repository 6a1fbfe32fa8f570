"""SWE-v0 fixtures. Docker tests skip when no engine answers, except under CI=true, where they fail."""

from __future__ import annotations

import os

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def require_docker() -> None:
    from envgym.sandboxes.docker_client import docker_available

    if docker_available():
        return
    if IN_CI:
        pytest.fail("CI=true but no Docker engine is reachable: the SWE docker tests must run in CI")
    pytest.skip("no Docker engine reachable")


@pytest.fixture(scope="session")
def bundled_tasks():  # type: ignore[no-untyped-def]
    from envgym.environments.swe.env import load_tasks

    return load_tasks(None)


@pytest.fixture(scope="session")
def built_images(bundled_tasks):  # type: ignore[no-untyped-def]
    """Every bundled project image (built once; idempotent)."""
    require_docker()
    from envgym.environments.swe.images import build_image
    from envgym.environments.swe.recipes import recipe_for

    return {p: build_image(recipe_for(p)) for p in sorted({t.project for t in bundled_tasks})}


@pytest.fixture(scope="session", autouse=True)
def _close_sandbox_pools():  # type: ignore[no-untyped-def]
    """Stop the warm SWE sandboxes when the session ends (not only at interpreter exit)."""
    yield
    from envgym.environments.swe.sandboxing import close_pools

    close_pools()
