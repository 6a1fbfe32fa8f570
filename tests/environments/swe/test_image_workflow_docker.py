"""The SWE image workflow says what to do: a missing image names `envgym swe build`, `swe list` shows what is
built, `swe check` skips unbuilt images as "not built" instead of failing them (real Docker engine)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from envgym.environments.swe.env import SWEEnv
from envgym.environments.swe.sandboxing import require_image
from envgym.environments.swe.schema import SWETask
from envgym.sandboxes import SandboxInfraError

from .conftest import require_docker

pytestmark = pytest.mark.docker
ABSENT = "envgym-test/never-built:0"


def envgym(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "envgym", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def absent_instance(tmp_path_factory: pytest.TempPathFactory, external_instances: Path) -> Path:
    row = json.loads(external_instances.read_text())
    row.update(instance_id="local__absent-1", image=ABSENT)
    path = tmp_path_factory.mktemp("absent") / "instances.jsonl"
    path.write_text(json.dumps(row) + "\n")
    return path


def test_a_missing_project_image_names_swe_build(bundled_tasks: list[SWETask]) -> None:
    require_docker()
    six = next(t for t in bundled_tasks if t.project == "six==1.17.0")
    with pytest.raises(SandboxInfraError, match=r"envgym swe build --project six==1\.17\.0"):
        require_image("envgym/swe:six-1.17.0-000000000000", six)


def test_reset_on_a_missing_image_is_infra_with_the_fix(absent_instance: Path) -> None:
    env = SWEEnv(tasks=str(absent_instance))
    try:
        _, info = env.reset(seed=0)
        assert info["infra_error"] and ABSENT in info["infra_error"] and "not built" in info["infra_error"]
    finally:
        env.close()


def test_swe_list_shows_which_images_are_built(absent_instance: Path, external_instances: Path) -> None:
    absent = envgym("swe", "list", "--tasks", str(absent_instance))
    assert absent.returncode == 0, absent.stderr
    assert "not built" in absent.stdout and "envgym swe build" in absent.stdout
    built = envgym("swe", "list", "--tasks", str(external_instances))
    assert built.returncode == 0 and "built" in built.stdout and "not built" not in built.stdout


def test_swe_check_reports_not_built_instead_of_fail(absent_instance: Path) -> None:
    result = envgym("swe", "check", "--tasks", str(absent_instance), "--no-null")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "not built" in result.stdout and "FAIL" not in result.stdout
    assert "1 skipped (image not built)" in result.stdout
