"""A user mistake on the `envgym` command line is one line on stderr and a non-zero exit, never a traceback."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from envgym.cli_errors import debug_requested, one_line, strip_debug

MISTAKES = {
    "unknown agent": ["run", "envgym/GuessNumber-v0", "--agent", "gpt4", "--out", "r"],
    "misspelt param": ["run", "envgym/Sudoku-v0", "--params", '{"rowz":3}', "--out", "r", "--episodes", "1"],
    "unknown env": ["eval", "--env", "envgym/Nope-v0", "--episodes", "1", "--out", "r"],
    "missing train config": ["train", "--config", "missing.yaml", "--run-dir", "r"],
    "openai without a key": ["eval", "--policy", "openai", "--episodes", "1", "--out", "r"],
    "swe grade on a missing file": ["swe", "grade", "--predictions", "missing.jsonl"],
    "sandbox shell on a missing image": ["sandbox", "shell", "no-such-image"],
    "missing argument": ["run"],
}


def envgym(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in {"OPENAI_API_KEY", "ENVGYM_DEBUG"}}
    return subprocess.run(
        [sys.executable, "-m", "envgym.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**environ, "COLUMNS": "200", **env},
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode != 0, result
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    return lines[0]


@pytest.mark.parametrize("args", MISTAKES.values(), ids=MISTAKES.keys())
def test_a_mistake_is_one_line_and_a_non_zero_exit(args: list[str], tmp_path: Path) -> None:
    line = assert_one_line_error(envgym(args, tmp_path))
    assert len(line) <= 420
    if args[0] == "run":  # `envgym run` writes nothing until its first episode is finished
        assert not (tmp_path / "r").exists(), "a run that failed on bad input left a run directory behind"


@pytest.mark.slow
def test_a_missing_model_directory_is_one_line(tmp_path: Path) -> None:
    result = envgym(["eval", "--policy", "hf", "--model", "/no/such/model", "--episodes", "1", "--out", "r"], tmp_path)
    assert "no model directory at /no/such/model" in assert_one_line_error(result)


def test_the_messages_say_what_was_wrong(tmp_path: Path) -> None:
    assert "gpt4" in assert_one_line_error(envgym(MISTAKES["unknown agent"], tmp_path))
    assert "rowz" in assert_one_line_error(envgym(MISTAKES["misspelt param"], tmp_path))


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    flag = envgym(["--debug", *MISTAKES["unknown agent"]], tmp_path)
    assert flag.returncode != 0 and "Traceback" in flag.stderr
    env_var = envgym(MISTAKES["unknown agent"], tmp_path, ENVGYM_DEBUG="1")
    assert env_var.returncode != 0 and "Traceback" in env_var.stderr


def test_one_line_of_library_errors() -> None:
    from pydantic import BaseModel

    class Config(BaseModel):
        steps: int

    try:
        Config.model_validate({"steps": "many"})
    except Exception as exc:
        assert (
            one_line(exc)
            == "invalid Config: steps: Input should be a valid integer, unable to parse string as an integer"
        )
    assert one_line(FileNotFoundError(2, "No such file or directory", "x.yaml")) == "No such file or directory: x.yaml"
    assert one_line(KeyError("unknown env id 'x'")) == "unknown env id 'x'"
    assert "internal error (KeyError" in one_line(KeyError("steps"))
    assert "--debug" in one_line(AttributeError("'NoneType' object has no attribute 'x'"))
    assert "\n" not in one_line(RuntimeError("a\nb\n  c"))


def test_debug_flag_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ENVGYM_DEBUG", raising=False)
    assert debug_requested(["run", "--debug"]) and not debug_requested(["run", "--", "--debug"])
    assert strip_debug(["--debug", "run", "--", "--debug"]) == ["run", "--", "--debug"]
    monkeypatch.setenv("ENVGYM_DEBUG", "0")
    assert not debug_requested(["run"])
