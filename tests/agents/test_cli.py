"""`envgym train` / `eval` / `plot` through typer, with the tiny model (no downloads)."""

import json
from pathlib import Path

import typer
import yaml
from typer.testing import CliRunner

from envgym.agents.cli import default_config_path, register
from envgym.agents.trainer import TrainConfig


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)

    @app.command("noop")
    def _noop() -> None:  # typer needs >1 command to keep sub-command names
        pass

    return app


def test_default_config_is_valid():
    cfg = TrainConfig.from_yaml(default_config_path())
    assert cfg.policy.model == "smollm2-135m" and cfg.env_id == "envgym/GuessNumber-v0"


def test_train_resume_plot_and_eval(tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({
        "env_id": "envgym/ToyGuess-v0", "steps": 2, "tasks_per_step": 2, "group_size": 2, "lr": 1e-3,
        "policy": {"model": "tiny", "max_new_tokens": 1, "device": "cpu"},
    }))  # fmt: skip
    run = tmp_path / "run"
    runner = CliRunner()
    result = runner.invoke(_app(), ["train", "--config", str(cfg), "--run-dir", str(run)])
    assert result.exit_code == 0, result.output
    assert "success" in result.output and (run / "curves.png").is_file()
    result = runner.invoke(_app(), ["train", "--config", str(cfg), "--run-dir", str(run), "--steps", "3"])
    assert result.exit_code == 0, result.output
    assert "resumed at step 2" in " ".join(result.output.split())
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]
    result = runner.invoke(_app(), ["plot", str(run), "--out", str(tmp_path / "c.png")])
    assert result.exit_code == 0 and (tmp_path / "c.png").stat().st_size > 1000
    out = tmp_path / "eval"
    result = runner.invoke(_app(), ["eval", "--env", "envgym/GuessNumber-v0", "--policy", "oracle", "--episodes",
                                    "4", "--difficulty", "0.2", "--out", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads((out / "eval.json").read_text())["success_rate"] == 1.0
    result = runner.invoke(_app(), ["eval", "--env", "envgym/ToyGuess-v0", "--policy", "hf", "--model", "tiny",
                                    "--episodes", "4", "--out", str(tmp_path / "eval-tiny")])  # fmt: skip
    assert result.exit_code == 0, result.output
    result = runner.invoke(_app(), ["eval", "--env", "envgym/ToyGuess-v0", "--policy", "hf", "--run", str(run),
                                    "--episodes", "4", "--out", str(tmp_path / "eval-run")])  # fmt: skip
    assert result.exit_code == 0, result.output


def test_eval_feedback_probe_hides_observations_on_the_same_seeds(tmp_path):
    from envgym.trajectory import read_episodes

    out = tmp_path / "probe"
    result = CliRunner().invoke(_app(), ["eval", "--env", "envgym/ToyGuess-v0", "--policy", "hf", "--model", "tiny",
                                         "--temperature", "1.0", "--episodes", "6", "--out", str(out),
                                         "--feedback-probe"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "feedback probe" in result.output
    probe = json.loads((out / "feedback_probe.json").read_text())
    assert probe["episodes"] == 6 and 0.0 <= probe["hidden_feedback"] <= 1.0
    seen = list(read_episodes(out / "trajectories.jsonl"))
    hidden = list(read_episodes(out / "hidden-feedback" / "trajectories.jsonl"))
    assert [e.seed for e in seen] == [e.seed for e in hidden]
    assert all(t.observation == "?" for e in hidden for t in e.turns)
    assert any(t.observation != "?" for e in seen for t in e.turns)
    refused = CliRunner().invoke(_app(), ["eval", "--policy", "oracle", "--feedback-probe", "--out", str(out)])
    assert refused.exit_code != 0 and "needs a model policy" in " ".join(refused.output.split())


def test_eval_takes_policy_settings_from_a_train_config(tmp_path):
    from envgym.trajectory import read_episodes

    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({"policy": {"model": "tiny", "max_new_tokens": 1, "action_prefix": "go "}}))
    out = tmp_path / "eval"
    result = CliRunner().invoke(_app(), ["eval", "--env", "envgym/ToyGuess-v0", "--policy", "hf", "--config", str(cfg),
                                         "--episodes", "3", "--max-turns", "2", "--out", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    actions = [t.action for e in read_episodes(out / "trajectories.jsonl") for t in e.turns]
    assert actions and all(a.startswith("go ") for a in actions)


def _seeds(out: Path) -> list[int | None]:
    from envgym.trajectory import read_episodes

    return [e.seed for e in read_episodes(out / "trajectories.jsonl")]


def test_eval_resumes_the_same_command_and_refuses_a_different_one(tmp_path):
    out = tmp_path / "eval"
    base = ["eval", "--env", "envgym/GuessNumber-v0", "--policy", "oracle", "--difficulty", "0.2", "--seed", "7",
            "--out", str(out)]  # fmt: skip
    assert CliRunner().invoke(_app(), [*base, "--episodes", "3"]).exit_code == 0
    result = CliRunner().invoke(_app(), [*base, "--episodes", "5"])
    assert result.exit_code == 0, result.output
    assert "3 of 5 episodes already recorded" in " ".join(result.output.split())
    assert sorted(_seeds(out)) == [7, 8, 9, 10, 11]
    assert json.loads((out / "eval.json").read_text())["episodes"] == 5  # the summary covers the resumed ones
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["command"] == "eval" and manifest["config"]["seed"] == 7
    assert manifest["resume"].startswith("envgym eval --env envgym/GuessNumber-v0 --policy oracle")
    assert CliRunner().invoke(_app(), [*base, "--episodes", "5"]).exit_code == 0
    assert len(_seeds(out)) == 5
    before = (out / "trajectories.jsonl").read_bytes()
    refused = CliRunner().invoke(_app(), [*base[:4], "random", *base[5:], "--episodes", "2"])
    assert refused.exit_code != 0 and "holds a different run" in str(refused.exception)
    assert (out / "trajectories.jsonl").read_bytes() == before


def test_eval_into_a_directory_it_did_not_make_is_refused(tmp_path):
    stray = tmp_path / "stray"
    stray.mkdir()
    (stray / "notes.txt").write_text("mine")
    refused = CliRunner().invoke(_app(), ["eval", "--policy", "oracle", "--episodes", "1", "--out", str(stray)])
    assert refused.exit_code != 0 and "not empty" in str(refused.exception)
    assert sorted(p.name for p in stray.iterdir()) == ["notes.txt"]
