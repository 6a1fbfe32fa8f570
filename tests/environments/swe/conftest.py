"""SWE-v0 fixtures. Docker tests skip when no engine answers, except under CI=true, where they fail."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

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


# A tiny SWE-bench-format instance on the base image: fast to grade, and a place to plant hostile code.
CALC = "def add(a, b):\n    return a - b\n\n\ndef mul(a, b):\n    return a * b\n"
CALC_TEST = "from calc import add, mul\n\n\ndef test_add():\n    assert add(2, 3) == 5\n\n\ndef test_mul():\n    assert mul(2, 3) == 6\n"
GOLD = (
    "diff --git a/calc.py b/calc.py\n--- a/calc.py\n+++ b/calc.py\n@@ -1,5 +1,5 @@\n def add(a, b):\n"
    "-    return a - b\n+    return a + b\n \n \n def mul(a, b):\n"
)


@pytest.fixture(scope="session")
def external_instances(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_docker()
    from envgym.sandboxes.images import ensure_base_image

    base = ensure_base_image()
    ctx = tmp_path_factory.mktemp("calc")
    (ctx / "repo" / "tests").mkdir(parents=True)
    (ctx / "repo" / "calc.py").write_text(CALC)
    (ctx / "repo" / "tests" / "test_calc.py").write_text(CALC_TEST)
    (ctx / "Dockerfile").write_text(f"FROM {base}\nCOPY repo /repo\nRUN chown -R 1000:1000 /repo\nWORKDIR /repo\n")
    subprocess.run(["docker", "build", "-q", "-t", "envgym-test/calc:1", str(ctx)], check=True, capture_output=True)
    instance = {
        "instance_id": "local__calc-1",
        "repo": "local/calc",
        "base_commit": "",
        "problem_statement": "add(2, 3) returns -1 instead of 5.",
        "patch": GOLD,
        "test_patch": "",
        "FAIL_TO_PASS": json.dumps(["tests/test_calc.py::test_add"]),
        "PASS_TO_PASS": json.dumps(["tests/test_calc.py::test_mul"]),
        "version": "1",
        "environment_setup_commit": "",
        "created_at": "2025-01-01",
        "image": "envgym-test/calc:1",
        "test_command": "PYTHONPATH=. python3 -m pytest -p no:cacheprovider -q tests",
    }
    path = ctx / "instances.jsonl"
    path.write_text(json.dumps(instance) + "\n")
    return path


MINIMAL_TASK = {
    "instance_id": "o__r.1.abc",
    "repo": "o/r",
    "problem_statement": "x",
    "patch": "",
    "FAIL_TO_PASS": json.dumps(["tests/test_a.py::test_x"]),
    "PASS_TO_PASS": "[]",
    "image": "img",
    "source_paths": ["pkg"],
    "test_paths": ["tests"],
}


@pytest.fixture
def minimal_task():  # type: ignore[no-untyped-def]
    """A one-test task in SWE-bench's shape (JSON-encoded id lists), for tests that need no image."""
    from envgym.environments.swe.schema import SWETask

    return SWETask.model_validate(MINIMAL_TASK)
