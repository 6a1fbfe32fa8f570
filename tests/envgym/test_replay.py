"""`envgym replay`: honest recordings replay without divergence; a hand-edited one names the turn it diverges at."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import gymnasium as gym
import pytest
from typer.testing import CliRunner

import envgym  # noqa: F401
from envgym.agents.policies.scripted import OracleAgent, RandomAgent
from envgym.cli import _load_plugins, app
from envgym.replay import normalise, replay_episode
from envgym.runner import run_episode
from envgym.trajectory import TrajectoryWriter, read_episodes

ENVS = ["envgym/Puzzle-v0", "envgym/Sokoban-v0", "envgym/ToolUse-v0", "envgym/ToolUse-Compute-v0"]


def record(path: Path, env_id: str, seeds: range, agent: object, options: dict | None = None) -> Path:
    env = gym.make(env_id)
    with TrajectoryWriter(path) as writer:
        for seed in seeds:
            writer.write(run_episode(env, agent, seed=seed, options=options or {"difficulty": 0.5}))  # type: ignore[arg-type]
    env.close()
    return path


@pytest.fixture(scope="module")
def cli() -> CliRunner:
    _load_plugins()
    return CliRunner()


@pytest.mark.parametrize("env_id", ENVS)
def test_recorded_episodes_replay_without_divergence(tmp_path: Path, env_id: str) -> None:
    path = record(tmp_path / "t.jsonl", env_id, range(3), OracleAgent())
    record(path, env_id, range(3, 5), RandomAgent(seed=1))
    for episode in read_episodes(path):
        report, _ = replay_episode(episode)
        assert not report.diverged, (episode.seed, report.first_divergence)
        assert report.replayed_return == pytest.approx(sum(t.reward for t in episode.turns))
        assert len(report.turns) == len(episode.turns) + 1  # + the reset


def test_cli_replay_clean_exit_zero(tmp_path: Path, cli: CliRunner) -> None:
    path = record(tmp_path / "t.jsonl", "envgym/ToolUse-v0", range(2), OracleAgent())
    result = cli.invoke(app, ["replay", str(path)])
    assert result.exit_code == 0, result.output
    assert "2 episodes replayed, 0 diverged" in result.output


def _edit(path: Path, episode: int, turn: int, **changes: object) -> Path:
    lines = path.read_text().splitlines()
    record_ = json.loads(lines[episode])
    record_["turns"][turn].update(changes)
    lines[episode] = json.dumps(record_)
    edited = path.with_name("edited.jsonl")
    edited.write_text("\n".join(lines) + "\n")
    return edited


def test_hand_edited_observation_reports_the_turn(tmp_path: Path, cli: CliRunner) -> None:
    path = record(tmp_path / "t.jsonl", "envgym/Sokoban-v0", range(1), OracleAgent())
    assert len(next(read_episodes(path)).turns) > 3
    edited = _edit(path, 0, 2, observation="I was edited by hand")
    result = cli.invoke(app, ["replay", str(edited)])
    assert result.exit_code == 1, result.output
    assert "Diverged at turn 2" in result.output
    assert "I was edited by hand" in result.output  # the diff shows the recorded text


def test_hand_edited_action_and_reward_report_the_turn(tmp_path: Path) -> None:
    path = record(tmp_path / "t.jsonl", "envgym/ToolUse-v0", range(1), OracleAgent())
    episode = next(read_episodes(path))
    last = len(episode.turns) - 1
    edited = _edit(path, 0, last, reward=5.0)
    report, _ = replay_episode(next(read_episodes(edited)))
    assert report.first_divergence is not None and report.first_divergence.index == last
    assert [d.field for d in report.first_divergence.diffs] == ["reward"]
    edited = _edit(path, 0, 0, action='{"name": "nope", "arguments": {}}')
    report, _ = replay_episode(next(read_episodes(edited)))
    assert report.first_divergence is not None and report.first_divergence.index == 0


def test_volatile_fields_are_normalised_unless_strict() -> None:
    a = "bash: exit code 0 (0.13 s).\n1 passed in 0.03s /tmp/tmpab12_x/file c0ffee123456"
    b = "bash: exit code 0 (1.70 s).\n1 passed in 0.41s /tmp/tmpzz99_q/file deadbeef0042"
    assert normalise(a) == normalise(b)
    assert normalise("exit code 0") != normalise("exit code 1")


def test_until_stops_and_prints_state(tmp_path: Path, cli: CliRunner) -> None:
    path = record(tmp_path / "t.jsonl", "envgym/Sokoban-v0", range(1), OracleAgent())
    episode = next(read_episodes(path))
    result = cli.invoke(app, ["replay", str(path), "--episode", episode.episode_id[:8], "--until", "1"])
    assert result.exit_code == 0, result.output
    assert "State after the last replayed turn" in result.output
    assert episode.turns[1].observation.splitlines()[-1] in result.output


def test_until_opens_a_shell_in_the_sandbox_state(tmp_path: Path, cli: CliRunner) -> None:
    path = record(tmp_path / "t.jsonl", "envgym/ToolUse-Files-v0", range(1), OracleAgent())
    episode = next(read_episodes(path))
    result = cli.invoke(app, ["replay", str(path), "--episode", episode.episode_id, "--until", "0"], input="ls\nexit\n")
    assert result.exit_code == 0, result.output
    assert "Shell in the local sandbox" in result.output
    assert "config" in result.output  # the Files task's tree, listed from inside the sandbox


# ----- SWE: the one Docker path ------------------------------------------------------------------------------
def _docker_ok() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        import docker

        docker.from_env().ping()
        return True
    except Exception:
        return False


@pytest.mark.docker
@pytest.mark.slow
def test_swe_oracle_episodes_replay_without_divergence(tmp_path: Path) -> None:
    if not _docker_ok():
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but no Docker engine is reachable")
        pytest.skip("no Docker engine")
    if "envgym/SWE-v0" not in gym.registry:  # registry.py has no SWE entry yet
        gym.register(id="envgym/SWE-v0", entry_point="envgym.environments.swe.env:SWEEnv")
    path = record(tmp_path / "swe.jsonl", "envgym/SWE-v0", range(2), OracleAgent())
    episodes = list(read_episodes(path))
    assert all(ep.outcome is not None and ep.outcome.success for ep in episodes)
    for episode in episodes:
        report, _ = replay_episode(episode)
        assert not report.diverged, report.first_divergence
