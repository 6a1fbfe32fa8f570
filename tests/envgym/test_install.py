"""`pip install envgym` alone is the env library; every heavy import names the extra that brings it."""

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from envgym.extras import EXTRAS, MissingExtraError, needs_extra, require

ROOT = Path(__file__).resolve().parents[2]
HEAVY = sorted(EXTRAS)

# Runs in a fresh interpreter in which every optional heavy module is missing (as after `pip install envgym`).
WITHOUT_EXTRAS = f"""
import sys
for name in {HEAVY!r}:
    sys.modules[name] = None
"""


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def distribution(requirement: str) -> str:
    return re.split(r"[<>=!~\\[; ]", requirement, maxsplit=1)[0].lower()


def test_the_extras_table_matches_pyproject() -> None:
    extras = pyproject()["project"]["optional-dependencies"]
    for module, (extra, dist) in EXTRAS.items():
        assert dist in {distribution(r) for r in extras[extra]}, f"{module}: {dist} is not in [{extra}]"
    base = {distribution(r) for r in pyproject()["project"]["dependencies"]}
    assert not base & {dist for _, dist in EXTRAS.values()}, "a heavy module crept into the base install"
    assert (ROOT / "LICENSE").read_text().startswith(" " * 33 + "Apache License\n")
    assert pyproject()["project"]["license"] == "Apache-2.0"


def test_require_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "docker", None)
    with pytest.raises(MissingExtraError, match=r"docker is not installed: pip install 'envgym\[swe\]'"):
        require("docker")
    assert require("json").dumps([]) == "[]"


def run_without_extras(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_EXTRAS + code, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "120"},
    )


def test_the_env_library_works_without_any_extra() -> None:
    code = (
        "import gymnasium as gym, envgym\n"
        "from envgym.agents.policies.scripted import OracleAgent\n"
        "from envgym.runner import run_episode\n"
        "for env_id in ('envgym/Sudoku-v0', 'envgym/Puzzle-v0', 'envgym/ToolUse-SQL-v0'):\n"
        "    episode = run_episode(gym.make(env_id), OracleAgent(), seed=1)\n"
        "    assert episode.outcome.success, env_id\n"
        "print('OK')\n"
    )
    result = run_without_extras(code)
    assert result.returncode == 0 and "OK" in result.stdout, result.stderr


@pytest.mark.parametrize(
    ("args", "extra"),
    [
        (["train", "--steps", "1"], "train"),
        (["eval", "--policy", "openai", "--episodes", "1"], "train"),
        (["sandbox", "shell"], "swe"),
        (["plot", "runs/none"], "train"),
    ],
)
def test_a_command_that_needs_an_extra_says_which(args: list[str], extra: str, tmp_path: Path) -> None:
    result = run_without_extras("from envgym.cli import main\nmain()\n", *args)
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0 and len(lines) == 1, result.stderr
    assert f"pip install 'envgym[{extra}]'" in lines[0]


def test_list_works_without_any_extra() -> None:
    result = run_without_extras("from envgym.cli import main\nmain()\n", "list", "--json")
    assert result.returncode == 0, result.stderr
    assert '"envgym/Sudoku-v0"' in result.stdout


@pytest.mark.slow
def test_the_wheel_installs_alone_into_a_fresh_venv(tmp_path: Path) -> None:
    """Build the wheel, install it with the base dependencies only, and use it from outside the repo."""
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(ROOT)],
        check=True,
        timeout=600,
    )
    (wheel,) = wheels.glob("envgym-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q"]
    subprocess.run([*pip, "--no-deps", str(wheel)], check=True, timeout=600)
    base = pyproject()["project"]["dependencies"]
    installed = subprocess.run([*pip, *base], capture_output=True, text=True, timeout=600)
    if installed.returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail(f"installing the base dependencies failed: {installed.stderr[-500:]}")
        pytest.skip(f"no package index reachable for the base dependencies: {installed.stderr[-200:]}")
    code = (
        "import sys, gymnasium as gym, envgym\n"
        "env = gym.make('envgym/Sudoku-v0'); obs, info = env.reset(seed=0)\n"
        "assert info['task']['env'] == 'envgym/Sudoku-v0@1' and envgym.__file__.startswith(sys.prefix)\n"
        "heavy = [m for m in ('torch', 'docker', 'transformers', 'fastapi') if m in sys.modules]\n"
        "print('OK', heavy)\n"
    )
    out = subprocess.run([str(python), "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "OK []" in out.stdout, out.stderr
    listing = subprocess.run(
        [str(venv / "bin" / "envgym"), "list", "--json"], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert listing.returncode == 0 and '"envgym/SWE-v0"' in listing.stdout, listing.stderr
    missing = subprocess.run(
        [str(venv / "bin" / "envgym"), "train"], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert missing.returncode != 0 and "pip install 'envgym[train]'" in missing.stderr, missing.stderr
    licenses = [p.name for p in venv.glob("lib/python*/site-packages/envgym-*.dist-info/**/LICENSE*")]
    assert licenses, "the wheel carries no LICENSE"


API_CALLS = {
    "hf policy": "from envgym.agents.policies.hf import HFPolicy, HFPolicyConfig\n"
    "HFPolicy.from_config(HFPolicyConfig(model='tiny'))",
    "openai policy": "from envgym.agents.policies.openai_policy import OpenAIPolicy\nOpenAIPolicy()",
    "plot": "from envgym.agents.plotting import plot_run\nplot_run('runs/none')",
    "docker sandbox": "from envgym.sandboxes.docker_client import docker_client\ndocker_client()",
    "swe images": "from envgym.environments.swe.images import _docker\n_docker()",
    "tiny model": "from envgym.agents.toy import tiny_policy\ntiny_policy()",
    "leaderboard upload": "from envgym.leaderboard.client import upload\nupload(None, 'http://127.0.0.1:9', 't')",
    "openai stand-in": "from envgym.integrations.openai_standin import make_app\nmake_app()",
    "datasets rows": "from envgym.integrations.datasets import task_dataset\ntask_dataset('envgym/Sudoku-v0', 2)",
}

# modules that need an extra as soon as they are imported, and the extra each must name
MODULES = {
    "envgym.server.app": "server",
    "envgym.server.mcp_server": "server",
    "envgym.server.background": "server",
    "envgym.leaderboard.server": "server",
    "envgym.leaderboard.db": "server",
    "envgym.leaderboard.worker": "server",
    "envgym.leaderboard.ranking": "server",
    "envgym.remote": "server",
    "envgym.integrations.verifiers": "integrations",
    "envgym.integrations.skyrl": "integrations",
}


@pytest.mark.parametrize(("module", "extra"), MODULES.items(), ids=MODULES.keys())
def test_importing_a_module_without_its_extra_names_it(module: str, extra: str) -> None:
    code = f"from envgym.extras import MissingExtraError\ntry:\n    import {module}\n"
    code += "except MissingExtraError as exc:\n    print('MISSING', exc)\n"
    result = run_without_extras(code)
    assert result.returncode == 0 and "MISSING" in result.stdout, result.stdout + result.stderr
    assert f"pip install 'envgym[{extra}]'" in result.stdout


def test_the_modules_that_only_talk_to_a_server_import_without_extras() -> None:
    code = "import envgym.leaderboard.cli, envgym.leaderboard.client, envgym.server.cli, envgym.integrations.trl\n"
    result = run_without_extras(code + "print('OK')\n")
    assert result.returncode == 0 and "OK" in result.stdout, result.stderr


def test_needs_extra_translates_only_a_missing_optional_module(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sqlalchemy", None)
    missing = r"sqlalchemy is not installed: pip install 'envgym\[server\]'"
    with pytest.raises(MissingExtraError, match=missing), needs_extra("server"):
        import sqlalchemy  # noqa: F401
    monkeypatch.setitem(sys.modules, "anyio", None)
    with pytest.raises(MissingExtraError, match=r"anyio is not installed"), needs_extra("server", also=("anyio",)):
        import anyio  # noqa: F401
    with pytest.raises(ModuleNotFoundError) as raised, needs_extra("server"):  # a broken install: not the extra
        import no_such_dependency_of_fastapi  # type: ignore[import-not-found]  # noqa: F401
    assert not isinstance(raised.value, MissingExtraError)


@pytest.mark.parametrize("call", API_CALLS.values(), ids=API_CALLS.keys())
def test_the_python_api_names_the_missing_extra(call: str) -> None:
    code = f"from envgym.extras import MissingExtraError\ntry:\n    {call.replace(chr(10), chr(10) + '    ')}\n"
    code += "except MissingExtraError as exc:\n    print('MISSING', exc)\n"
    result = run_without_extras(code)
    assert result.returncode == 0 and "MISSING" in result.stdout, result.stdout + result.stderr
    assert "pip install 'envgym[" in result.stdout
