import json
from pathlib import Path

import gymnasium as gym
import pytest

import envgym  # noqa: F401
from envgym.agents.policies.scripted import OracleAgent
from envgym.runner import run_episode
from envgym.trajectory import Episode, TrajectoryError, TrajectoryWriter, read_episodes


def _episode(seed: int) -> Episode:
    env = gym.make("envgym/GuessNumber-v0")
    return run_episode(env, OracleAgent(), seed=seed, options={"difficulty": 0.3})


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    episodes = [_episode(s) for s in range(3)]
    with TrajectoryWriter(path) as writer:
        for ep in episodes:
            writer.write(ep)
    back = list(read_episodes(path))
    assert [e.model_dump() for e in back] == [e.model_dump() for e in episodes]
    assert all(e.outcome is not None and e.outcome.success for e in back)
    raw = json.loads(path.read_text().splitlines()[0])
    assert raw["outcome"]["return"] == 1.0 and raw["env_id"] == "envgym/GuessNumber-v0"
    assert raw["task"]["env"] == "envgym/GuessNumber-v0@0"


def test_appends_across_writers(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    for seed in range(2):
        with TrajectoryWriter(path) as writer:
            writer.write(_episode(seed))
    assert len(list(read_episodes(path))) == 2


def test_torn_last_line_loses_only_that_episode(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    with TrajectoryWriter(path) as writer:
        writer.write(_episode(0))
        writer.write(_episode(1))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40])  # crash mid-write of the second record
    assert len(list(read_episodes(path))) == 1
    with pytest.raises(TrajectoryError):
        list(read_episodes(path, strict=True))


def test_corruption_in_the_middle_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    with TrajectoryWriter(path) as writer:
        writer.write(_episode(0))
    with path.open("a") as f:
        f.write("{garbage\n")
    with TrajectoryWriter(path) as writer:
        writer.write(_episode(1))
    with pytest.raises(TrajectoryError, match=":2:"):
        list(read_episodes(path))


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TrajectoryError, match="no trajectory file"):
        list(read_episodes(tmp_path / "nope.jsonl"))
