import json
from pathlib import Path

import gymnasium as gym
import pytest

import envgym  # noqa: F401
from envgym.agents.policies.scripted import OracleAgent
from envgym.runner import run_episode
from envgym.sandboxes import ExecResult
from envgym.trajectory import (
    CommandRecord,
    Episode,
    RateSummary,
    TrajectoryError,
    TrajectoryWriter,
    Turn,
    read_episodes,
)


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
    assert raw["task"]["env"] == "envgym/GuessNumber-v0@1"


def test_a_lone_surrogate_does_not_lose_the_episode(tmp_path: Path) -> None:
    """pydantic refuses to serialize a lone surrogate: the episode was lost and the writer raised."""
    episode = _episode(0)
    episode.turns[0].action = "\ud800 50 \ud83d\ude00"
    episode.turns[0].extra = {"\udfff": ["\ud800"]}
    usual = _episode(1)
    path = tmp_path / "t.jsonl"
    with TrajectoryWriter(path) as writer:
        writer.write(episode)
        writer.write(usual)
    back = list(read_episodes(path, strict=True))
    assert len(back) == 2 and back[1].model_dump() == usual.model_dump()
    assert back[0].turns[0].action == "\ufffd 50 \U0001f600"  # the lone one replaced, the pair joined
    (key, value), *_ = back[0].turns[0].extra.items()  # pydantic itself replaces a key's bytes, one U+FFFD each
    assert set(key) == {"\ufffd"} and value == ["\ufffd"] and len(back[0].turns[0].extra) == 1
    assert back[0].turns[1:] == episode.turns[1:]


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


# ----- the constructors -----------------------------------------------------------------------------------
def test_reset_time_infra_error_marks_the_episode_infra(flaky_image_env) -> None:
    env = flaky_image_env()
    episodes = [run_episode(env, OracleAgent(), seed=s, options={"difficulty": 0.3}) for s in (0, 1)]
    ok, broken = episodes
    assert ok.outcome is not None and ok.outcome.success and not ok.infra
    assert broken.infra and broken.turns == []  # no fake submit turn after a failed reset
    assert broken.outcome is not None and "image" in str(broken.outcome.infra_error)
    summary = RateSummary.of(episodes)
    assert (summary.success_rate, summary.scored, summary.infra_errors) == (1.0, 1, 1)
    assert "100.0% (1/1)" in summary.line() and "infra errors 1 (excluded)" in summary.line()


def test_step_time_infra_error_marks_the_episode_infra() -> None:
    env = gym.make("envgym/GuessNumber-v0")
    obs, info = env.reset(seed=3)
    episode = Episode.start(env, obs, info, policy="test", seed=3)
    step = env.step("guess 1")
    broken = (*step[:4], {**step[4], "infra_error": "container died"})
    episode.turns.append(Turn.from_step(0, "guess 1", broken))  # type: ignore[arg-type]
    episode.finish(success=True)
    assert episode.infra and episode.outcome is not None and not episode.outcome.success
    with pytest.raises(ValueError, match="already finished"):
        episode.finish(success=False)


def test_command_record_from_exec_result() -> None:
    result = ExecResult(exit_code=2, output="boom", truncated=True, timed_out=False, duration_s=0.5)
    record = CommandRecord.from_exec("x" * 50, result, max_command_chars=10)
    assert record.command == "x" * 10 + "..." and record.exit_code == 2 and record.truncated
    assert CommandRecord.model_validate(record.model_dump()) == record
    assert CommandRecord.from_exec("ls", result).command == "ls"


def test_turn_from_step_reads_the_info_keys() -> None:
    env = gym.make("envgym/GuessNumber-v0")
    env.reset(seed=1)
    step = env.step("guess 50")
    turn = Turn.from_step(0, "guess 50", step, observation="?", extra={"tokens": 3})
    assert turn.observation == "?" and turn.tool_call and turn.tool_call["name"]
    assert turn.feedback["summary"] and turn.extra == {"tokens": 3} and turn.infra_error is None
