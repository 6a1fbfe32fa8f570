"""`envgym replay`: honest recordings replay without divergence; a hand-edited one names the turn it diverges at."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest

import envgym  # noqa: F401
from envgym.agents.policies.scripted import OracleAgent, RandomAgent
from envgym.cli import app
from envgym.replay import ReplayError, find_sandbox, normalise, replay_episode
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


Runner = Any  # tests/envgym/conftest.py: EnvgymRunner (invoke -> output, exit_code, exception)


@pytest.fixture(scope="module")
def cli(envgym_cli: Runner) -> Runner:
    """The `envgym` entry point's own handling (tests/envgym/conftest.py): a failure is one line on stderr."""
    return envgym_cli


@pytest.mark.parametrize("env_id", ENVS)
def test_recorded_episodes_replay_without_divergence(tmp_path: Path, env_id: str) -> None:
    path = record(tmp_path / "t.jsonl", env_id, range(3), OracleAgent())
    record(path, env_id, range(3, 5), RandomAgent(seed=1))
    for episode in read_episodes(path):
        report, _ = replay_episode(episode)
        assert not report.diverged, (episode.seed, report.first_divergence)
        assert report.replayed_return == pytest.approx(sum(t.reward for t in episode.turns))
        assert len(report.turns) == len(episode.turns) + 1  # + the reset


def test_cli_replay_clean_exit_zero(tmp_path: Path, cli: Runner) -> None:
    path = record(tmp_path / "t.jsonl", "envgym/ToolUse-v0", range(2), OracleAgent())
    result = cli.invoke(app, ["replay", str(path)])
    assert result.exit_code == 0, result.output
    assert "2 episodes: 2 ok, 0 diverged" in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 3 and all(line.startswith("ok") for line in lines[:2]), result.output  # one per episode


def _edit(path: Path, episode: int, turn: int, **changes: object) -> Path:
    lines = path.read_text().splitlines()
    record_ = json.loads(lines[episode])
    record_["turns"][turn].update(changes)
    lines[episode] = json.dumps(record_)
    edited = path.with_name("edited.jsonl")
    edited.write_text("\n".join(lines) + "\n")
    return edited


def test_hand_edited_observation_reports_the_turn(tmp_path: Path, cli: Runner) -> None:
    path = record(tmp_path / "t.jsonl", "envgym/Sokoban-v0", range(1), OracleAgent())
    assert len(next(read_episodes(path)).turns) > 3
    edited = _edit(path, 0, 2, observation="I was edited by hand")
    result = cli.invoke(app, ["replay", str(edited)])
    assert result.exit_code == 1, result.output
    assert "DIVERGED" in result.output and "at turn 2 (observation)" in result.output
    assert "I was edited by hand" not in result.output  # one line per episode by default
    verbose = cli.invoke(app, ["replay", str(edited), "--verbose"])
    assert verbose.exit_code == 1 and "I was edited by hand" in verbose.output  # the diff shows the recorded text


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


def test_until_stops_and_prints_state(tmp_path: Path, cli: Runner) -> None:
    path = record(tmp_path / "t.jsonl", "envgym/Sokoban-v0", range(1), OracleAgent())
    episode = next(read_episodes(path))
    result = cli.invoke(app, ["replay", str(path), "--episode", episode.episode_id[:8], "--until", "1"])
    assert result.exit_code == 0, result.output
    assert "State after the last replayed turn" in result.output
    assert episode.turns[1].observation.splitlines()[-1] in result.output


def test_until_opens_a_shell_in_the_sandbox_state(tmp_path: Path, cli: Runner) -> None:
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


# ----- damaged files and exit codes ------------------------------------------------------------------------------
def _one_line_error(result: object) -> str:
    output = result.output  # type: ignore[attr-defined]
    assert result.exit_code == 2, output  # type: ignore[attr-defined]
    assert ("Traceback" not in output and result.exception is None) or isinstance(result.exception, SystemExit)  # type: ignore[attr-defined]
    return str(output)


def test_empty_file_exits_2_with_one_line(tmp_path: Path, cli: Runner) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    output = _one_line_error(cli.invoke(app, ["replay", str(empty)]))
    assert "nothing to replay" in output and len(output.strip().splitlines()) == 1
    missing = _one_line_error(cli.invoke(app, ["replay", str(tmp_path / "absent.jsonl")]))
    assert "no trajectory file" in missing


def test_truncated_file_replays_what_it_can_and_exits_2(tmp_path: Path, cli: Runner) -> None:
    path = record(tmp_path / "t.jsonl", "envgym/GuessNumber-v0", range(2), OracleAgent())
    data = path.read_text()
    path.write_text(data[: len(data) - 40])  # a run killed mid-write: the last line is torn
    output = _one_line_error(cli.invoke(app, ["replay", str(path)]))
    assert "1 episodes: 1 ok, 0 diverged; the file is damaged" in output


@pytest.mark.parametrize(
    "line",
    ["{not json", "[" * 5000, '{"episode_id": "x"}', "\x00\xff garbage"],
)
def test_damaged_file_exits_2_without_traceback(tmp_path: Path, cli: Runner, line: str) -> None:
    path = record(tmp_path / "t.jsonl", "envgym/GuessNumber-v0", range(1), OracleAgent())
    path.write_text(line + "\n" + path.read_text())
    output = _one_line_error(cli.invoke(app, ["replay", str(path)]))
    assert "t.jsonl:1" in output or "damaged" in output or "nothing to replay" in output


def test_infra_at_reset_is_infra_not_divergence_and_exits_2(
    tmp_path: Path, cli: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = record(tmp_path / "t.jsonl", "envgym/ToolUse-Compute-v0", range(2), OracleAgent())
    from envgym.sandboxes import docker_client

    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-such-docker.sock")  # a Docker engine that is down
    monkeypatch.setattr(docker_client, "_client", None)  # earlier tests may have cached a client to the real one
    result = cli.invoke(app, ["replay", str(path), "--sandbox", "docker"])
    assert result.exit_code == 2, result.output  # nothing could be replayed
    assert "2 episodes: 0 ok, 0 diverged, 2 infra" in result.output
    assert "DIVERGED" not in result.output


# ----- the trajectory file is untrusted ----------------------------------------------------------------------------
def _forged(path: Path, **changes: object) -> Path:
    record_ = json.loads(path.read_text().splitlines()[0])
    record_.update(changes)
    forged = path.with_name("forged.jsonl")
    forged.write_text(json.dumps(record_) + "\n")
    return forged


@pytest.mark.parametrize(
    "env_id", ["this:Zen-v0", "gymnasium.envs.classic_control.cartpole:CartPole-v1", "CartPole-v1", "envgym/Nope-v0"]
)
def test_a_file_cannot_name_a_module_or_a_foreign_env(tmp_path: Path, cli: Runner, env_id: str) -> None:
    import sys

    path = record(tmp_path / "t.jsonl", "envgym/GuessNumber-v0", range(1), OracleAgent())
    forged = next(read_episodes(_forged(path, env_id=env_id)))
    with pytest.raises(ReplayError, match="not an envgym env id"):
        replay_episode(forged)
    assert "this" not in sys.modules  # `gym.make("this:...")` would have imported (and run) that module
    output = _one_line_error(cli.invoke(app, ["replay", str(_forged(path, env_id=env_id))]))
    assert "not an envgym env id" in output and "1 unreplayable" in output


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"tasks": "/etc/passwd"}, "tasks"),
        ({"pool_size": 500}, "pool_size"),
        ({"max_turns": 10**9}, "max_turns"),
        ({"render_mode": "human"}, "render_mode"),
        ({"difficulty": "NaN"}, "difficulty"),
    ],
)
def test_a_file_cannot_pass_arbitrary_env_kwargs(tmp_path: Path, kwargs: dict, fragment: str) -> None:
    path = record(tmp_path / "t.jsonl", "envgym/GuessNumber-v0", range(1), OracleAgent())
    forged = next(read_episodes(_forged(path, env_kwargs=kwargs)))
    with pytest.raises(ReplayError, match=fragment):
        replay_episode(forged)


def test_a_file_cannot_choose_the_sandbox(tmp_path: Path) -> None:
    path = record(tmp_path / "t.jsonl", "envgym/ToolUse-Files-v0", range(1), OracleAgent())
    hostile = {"sandbox": "local", "sandbox_options": {"source": "/etc", "workspace": "/"}}
    forged = next(read_episodes(_forged(path, env_kwargs=hostile)))
    report, env = replay_episode(forged, keep_env=True)
    try:
        assert not report.diverged, report.first_divergence  # replayed in the env's own sandbox, unchanged
        assert any("ignored" in note for note in report.notes)
        box = find_sandbox(env)
        assert box is not None and b"root:" not in box.exec("cat passwd 2>&1; ls").output.encode()
        assert getattr(env.unwrapped, "sandbox_options", {}) == {}
    finally:
        env.close()


def test_hostile_seed_or_options_are_a_replay_error(tmp_path: Path) -> None:
    path = record(tmp_path / "t.jsonl", "envgym/GuessNumber-v0", range(1), OracleAgent())
    for changes in ({"options": {"difficulty": 7}}, {"options": {"params": {"upper": "x" * 10}}}):
        with pytest.raises(ReplayError):
            replay_episode(next(read_episodes(_forged(path, **changes))))


def test_step_shows_the_observation(tmp_path: Path, cli: Runner) -> None:
    path = record(tmp_path / "t.jsonl", "envgym/GuessNumber-v0", range(1), OracleAgent())
    episode = next(read_episodes(path))
    result = cli.invoke(app, ["replay", str(path), "--step"], input="\n" * 50)
    assert result.exit_code == 0, result.output
    assert episode.initial_observation.splitlines()[0] in result.output
    assert episode.turns[0].observation.splitlines()[0] in result.output


def test_file_text_is_never_rich_markup(tmp_path: Path, cli: Runner) -> None:
    """Brackets in ids and actions are shown as text: `[/x]` would otherwise crash rich (MarkupError)."""
    path = record(tmp_path / "t.jsonl", "envgym/GuessNumber-v0", range(1), OracleAgent())
    record_ = json.loads(path.read_text().splitlines()[0])
    record_["episode_id"] = "[/red][bold]x"
    record_["turns"][0]["action"] = "[/bold] [link=file:///etc/passwd]click[/link]"
    markup = tmp_path / "markup.jsonl"
    markup.write_text(json.dumps(record_) + "\n")
    result = cli.invoke(app, ["replay", str(markup), "--verbose"])
    assert result.exit_code == 1, result.output  # the edited action diverges; no crash
    assert "[/red][bold]x"[:12] in result.output
    foreign = tmp_path / "foreign.jsonl"
    foreign.write_text(json.dumps({**record_, "env_id": "[/x]evil"}) + "\n")
    result = cli.invoke(app, ["replay", str(foreign)])
    assert result.exit_code == 2 and "[/x]evil" in result.output, result.output


@pytest.mark.parametrize("field", ["episode_id", "env_id", "env_version"])
@pytest.mark.parametrize("value", ["\ud800", "\x1b]0;owned\x07", "x" * 5000])
def test_a_hostile_name_costs_only_its_own_record(tmp_path: Path, cli: Runner, field: str, value: str) -> None:
    """A lone surrogate (legal JSON), a terminal escape or a huge id in one record: that line is named as
    damaged, the other episodes are replayed, the exit code is 2, and nothing of it reaches the terminal raw."""
    path = record(tmp_path / "t.jsonl", "envgym/GuessNumber-v0", range(3), OracleAgent())
    lines = path.read_text().splitlines()
    first = json.loads(lines[0])
    first[field] = value + first[field]
    path.write_text(json.dumps(first) + "\n" + "\n".join(lines[1:]) + "\n")
    output = _one_line_error(cli.invoke(app, ["replay", str(path)]))
    assert "2 ok" in output and "t.jsonl:1" in output, output
    assert "\x1b" not in output and "\ud800" not in output


def test_visible_shows_what_a_terminal_would_act_on() -> None:
    from envgym.terminal import visible

    assert visible("a\x1b]0;t\x07b\ud800\u202ec\nd") == "a\\x1b]0;t\\x07b\\ud800\\u202ec\\x0ad"
    assert visible("line\nnext\ttab", multiline=True) == "line\nnext\ttab"
    assert visible("x" * 10_000, 50) == "x" * 49 + "…"
    assert visible("é ✓ 日本") == "é ✓ 日本"  # printable text is left alone
