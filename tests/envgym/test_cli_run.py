"""`envgym run` (and `eval`): resumable run directories, refusal of a different run, Ctrl-C, honest infra accounting."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import typer

from envgym.cli import app
from envgym.cli_errors import run_command
from envgym.trajectory import read_episodes


def envgym_run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = run_command(typer.main.get_command(app), ["run", *args])
    out, err = capsys.readouterr()
    return code, out, err


def seeds(out: Path) -> list[int | None]:
    return [e.seed for e in read_episodes(out / "trajectories.jsonl")]


def test_rerunning_the_same_command_resumes_without_duplicates(tmp_path: Path, capsys) -> None:
    out = str(tmp_path / "run")
    base = ["envgym/GuessNumber-v0", "--agent", "oracle", "--difficulty", "0.2", "--out", out]
    assert envgym_run(capsys, *base, "--episodes", "3")[0] == 0
    code, text, _ = envgym_run(capsys, *base, "--episodes", "5")
    assert code == 0 and "3 of 5 episodes already recorded" in text
    assert sorted(seeds(tmp_path / "run")) == [0, 1, 2, 3, 4]
    code, text, _ = envgym_run(capsys, *base, "--episodes", "5")
    assert code == 0 and "5 of 5" in text and "success rate 100.0% (5/5)" in text
    assert len(seeds(tmp_path / "run")) == 5
    manifest = json.loads((tmp_path / "run" / "run.json").read_text())
    assert manifest["command"] == "run" and manifest["config"]["env_id"] == "envgym/GuessNumber-v0"
    assert manifest["resume"].startswith("envgym run envgym/GuessNumber-v0")


def test_a_different_command_into_a_used_directory_is_refused(tmp_path: Path, capsys) -> None:
    out = str(tmp_path / "run")
    assert envgym_run(capsys, "envgym/GuessNumber-v0", "--episodes", "1", "--out", out)[0] == 0
    before = (tmp_path / "run" / "trajectories.jsonl").read_bytes()
    code, _, err = envgym_run(capsys, "envgym/GuessNumber-v0", "--agent", "random", "--episodes", "1", "--out", out)
    assert code != 0 and len(err.strip().splitlines()) == 1 and "holds a different run" in err
    assert (tmp_path / "run" / "trajectories.jsonl").read_bytes() == before
    stray = tmp_path / "stray"
    stray.mkdir()
    (stray / "notes.txt").write_text("mine")
    code, _, err = envgym_run(capsys, "envgym/GuessNumber-v0", "--episodes", "1", "--out", str(stray))
    assert code != 0 and "not empty" in err


def test_a_torn_last_episode_is_run_again(tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    args = ["envgym/GuessNumber-v0", "--episodes", "3", "--out", str(out)]
    assert envgym_run(capsys, *args)[0] == 0
    data = (out / "trajectories.jsonl").read_bytes()
    (out / "trajectories.jsonl").write_bytes(data[:-30])  # killed while writing the third episode
    assert envgym_run(capsys, *args)[0] == 0
    assert sorted(seeds(out)) == [0, 1, 2]
    assert len(list(read_episodes(out / "trajectories.jsonl", strict=True))) == 3


def test_reset_time_infra_errors_are_excluded_and_shown(tmp_path: Path, capsys, flaky_image_env) -> None:
    code, text, _ = envgym_run(capsys, flaky_image_env.env_id, "--episodes", "2", "--out", str(tmp_path / "r"))
    assert code == 0
    assert "success rate 100.0% (1/1)" in text and "infra errors 1 (excluded)" in text
    records = list(read_episodes(tmp_path / "r" / "trajectories.jsonl"))
    broken = [e for e in records if e.outcome and e.outcome.infra_error]
    assert len(broken) == 1 and broken[0].turns == []


INTERRUPTED = {  # sub-command words before --episodes, and the seed of the first episode
    "run": (["run", "envgym/Sudoku-v0", "--agent", "random"], 0),
    "eval": (["eval", "--env", "envgym/Sudoku-v0", "--policy", "random"], 10_000),
}


@pytest.mark.slow
@pytest.mark.parametrize("command", INTERRUPTED)
def test_ctrl_c_says_how_many_episodes_were_saved_and_how_to_resume(tmp_path: Path, command: str) -> None:
    words, first_seed = INTERRUPTED[command]
    out = tmp_path / "run"
    argv = [sys.executable, "-m", "envgym.cli", *words, "--episodes", "100000", "--out", str(out)]
    env = {**os.environ, "COLUMNS": "400"}
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        while not (out / "trajectories.jsonl").is_file() or not (out / "trajectories.jsonl").read_bytes():
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    saved = len(seeds(out))
    assert f"interrupted: {saved} of 100000 episodes saved" in stdout
    assert f"resume with: envgym {' '.join(words)} --episodes 100000" in stdout
    assert "Traceback" not in stdout + stderr
    resumed = subprocess.run([*argv[:-4], "--episodes", str(saved + 1), "--out", str(out)],
                             capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert f"{saved} of {saved + 1} episodes already recorded" in resumed.stdout
    assert sorted(seeds(out)) == list(range(first_seed, first_seed + saved + 1))  # type: ignore[type-var]


def test_a_run_dir_from_before_run_json_is_adopted_by_the_same_command(tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    args = ["envgym/GuessNumber-v0", "--episodes", "2", "--out", str(out)]
    assert envgym_run(capsys, *args)[0] == 0
    (out / "run.json").unlink()  # as written by envgym before run directories had a manifest
    code, text, _ = envgym_run(capsys, *args[:2], "3", *args[3:])
    assert code == 0 and "2 of 3 episodes already recorded" in text and len(seeds(out)) == 3
    (out / "run.json").unlink()
    code, _, err = envgym_run(capsys, "envgym/GuessNumber-v0", "--agent", "random", "--out", str(out))
    assert code != 0 and "not empty" in err
