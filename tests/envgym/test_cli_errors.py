"""A user mistake on the `envgym` command line is one line on stderr and a non-zero exit, never a traceback."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from envgym.cli_errors import debug_requested, one_line, strip_debug

# the inputs issue 12 lists (item 4), each of which printed a traceback
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
# the same promise on every other sub-command (files named here are made by `workspace`)
MORE_MISTAKES = {
    "run on an unknown env": ["run", "envgym/Nope-v0", "--out", "r"],
    "run into a directory it did not make": ["run", "envgym/GuessNumber-v0", "--out", "stray"],
    "eval into a directory it did not make": ["eval", "--episodes", "1", "--out", "stray"],
    "train config with a bad value": ["train", "--config", "bad.yaml", "--run-dir", "r"],
    "train config with a misspelt key": ["train", "--config", "misspelt.yaml", "--run-dir", "r"],
    "plot a missing run": ["plot", "missing-run"],
    "replay a missing file": ["replay", "missing.jsonl"],
    "replay a damaged file": ["replay", "damaged.jsonl"],
    "replay on an unknown sandbox": ["replay", "damaged.jsonl", "--sandbox", "bogus"],
    "view a missing file": ["view", "missing.jsonl"],
    "view a damaged file": ["view", "damaged.jsonl"],
    "submit without --to": ["submit", "r"],
    "submit a missing run": ["submit", "missing-run", "--dry-run"],
    "swe list on a missing task file": ["swe", "list", "--tasks", "missing.jsonl"],
    "swe synthesize an unknown project": ["swe", "synthesize", "--project", "nope==1.0", "--out", "x.jsonl"],
    "serve an unknown env": ["serve", "envgym/Nope-v0"],
    "serve off loopback without a token": ["serve", "envgym/GuessNumber-v0", "--host", "0.0.0.0"],
    "leaderboard token on a bad database URL": ["leaderboard", "token", "create", "me", "--db", "nope://x"],
    "leaderboard serve with an unknown boundary": [
        "leaderboard",
        "serve",
        "--sandbox",
        "bogus",
        "--db",
        "sqlite:///lb.db",
    ],
    "unknown sub-command": ["sandbox", "nope"],
}


def workspace(tmp_path: Path) -> Path:
    """A working directory holding the bad inputs the mistakes name."""
    (tmp_path / "damaged.jsonl").write_text("{not json\n")
    (tmp_path / "stray").mkdir()
    (tmp_path / "stray" / "notes.txt").write_text("mine")
    (tmp_path / "bad.yaml").write_text("steps: many\n")
    (tmp_path / "misspelt.yaml").write_text("stepz: 3\nheldout:\n  episodez: 4\n")
    return tmp_path


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
    if args[0] in ("run", "eval"):  # run directories are written only once the first episode is finished
        assert not (tmp_path / "r").exists(), "a run that failed on bad input left a run directory behind"


@pytest.mark.parametrize("args", MORE_MISTAKES.values(), ids=MORE_MISTAKES.keys())
def test_every_sub_command_fails_in_one_line_on_stderr(args: list[str], tmp_path: Path) -> None:
    result = envgym(args, workspace(tmp_path))
    assert len(assert_one_line_error(result)) <= 420
    assert result.stdout.strip() == "", "an error went to stdout"
    assert (tmp_path / "stray" / "notes.txt").read_text() == "mine" and len(list((tmp_path / "stray").iterdir())) == 1


@pytest.mark.slow
def test_a_missing_model_directory_is_one_line(tmp_path: Path) -> None:
    result = envgym(["eval", "--policy", "hf", "--model", "/no/such/model", "--episodes", "1", "--out", "r"], tmp_path)
    assert "no model directory at /no/such/model" in assert_one_line_error(result)


def test_the_messages_say_what_was_wrong(tmp_path: Path) -> None:
    assert "gpt4" in assert_one_line_error(envgym(MISTAKES["unknown agent"], tmp_path))
    assert "stepz" in assert_one_line_error(
        envgym(MORE_MISTAKES["train config with a misspelt key"], workspace(tmp_path))
    )
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
