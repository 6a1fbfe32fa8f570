"""Sandbox test fixtures: one `make_sandbox` factory parametrized over every backend of `open_sandbox`.

Docker tests skip when no engine answers, except under CI=true, where a missing engine fails them:
CI must run them for real.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from envgym.sandboxes import Sandbox, SandboxLimits, open_sandbox, sandbox_kinds

IN_CI = os.environ.get("CI", "").lower() == "true"


def require_docker() -> None:
    from envgym.sandboxes.docker_client import docker_available

    if docker_available():
        return
    if IN_CI:
        pytest.fail("CI=true but no Docker engine is reachable: the docker tests must run in CI")
    pytest.skip("no Docker engine reachable")


@pytest.fixture(scope="session")
def base_image() -> str:
    require_docker()
    from envgym.sandboxes.images import ensure_base_image

    return ensure_base_image()


# every row of the front door's table but `auto` (which picks one of them): a new backend runs the whole
# conformance suite from its row alone; rows that need an engine carry that engine's marker
BACKEND_MARKS = {"docker": pytest.mark.docker}
BACKEND_PARAMS = [pytest.param(k, marks=BACKEND_MARKS.get(k, ())) for k in sandbox_kinds() if k != "auto"]


@pytest.fixture(params=BACKEND_PARAMS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


SandboxFactory = Callable[..., Sandbox]


@pytest.fixture
def make_sandbox(backend: str, request: pytest.FixtureRequest) -> Iterator[SandboxFactory]:
    """`make_sandbox(source=None, **limit_overrides)` -> a sandbox of the current backend, closed after."""
    made: list[Sandbox] = []
    image = request.getfixturevalue("base_image") if backend == "docker" else ""

    def make(source: Any = None, **limits: Any) -> Sandbox:
        options: dict[str, Any] = {"image": image} if image else {}
        sb = open_sandbox(backend, source=source, limits=SandboxLimits(**limits), **options)
        made.append(sb)
        return sb

    yield make
    for sb in made:
        sb.close()
