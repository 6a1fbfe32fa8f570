"""`run_episode`: one loop, one record, built only through the trajectory constructors."""

import gymnasium as gym

import envgym  # noqa: F401
from envgym.agents.policies.scripted import OracleAgent, RandomAgent
from envgym.runner import run_episode


def test_the_record_matches_what_the_env_said() -> None:
    env = gym.make("envgym/Maze-v0")
    episode = run_episode(env, OracleAgent(), seed=4, options={"difficulty": 0.4}, env_kwargs={"x": 1})
    assert episode.outcome is not None and episode.outcome.success and episode.outcome.terminated
    assert episode.outcome.num_turns == len(episode.turns) > 0
    assert episode.outcome.return_ == sum(t.reward for t in episode.turns)
    assert [t.index for t in episode.turns] == list(range(len(episode.turns)))
    assert episode.task["seed"] == episode.seed == 4 and episode.difficulty == 0.4
    assert episode.env_id == "envgym/Maze-v0" and episode.policy == "oracle" and episode.env_kwargs == {"x": 1}
    assert episode.finished_at is not None and episode.turns[-1].terminated


def test_a_step_cap_ends_the_record_unsolved() -> None:
    env = gym.make("envgym/Sudoku-v0")
    episode = run_episode(env, RandomAgent(seed=0), seed=1, options={"difficulty": 1.0}, max_steps=2)
    assert episode.outcome is not None and len(episode.turns) == 2
    assert not episode.outcome.terminated and not episode.outcome.truncated and not episode.infra


def test_same_seed_same_record() -> None:
    first, second = (run_episode(gym.make("envgym/Hanoi-v0"), OracleAgent(), seed=9) for _ in range(2))
    assert [t.action for t in first.turns] == [t.action for t in second.turns]
    assert first.initial_observation == second.initial_observation
