"""envgym/FrozenLake-v0: the rules (holes, edges, slipping)."""

import numpy as np
import pytest

import envgym  # noqa: F401  (registers the ids)
from envgym.environments.puzzles.frozen_lake import FrozenLakeEnv


def test_optimal_path_grows_with_difficulty() -> None:
    env = FrozenLakeEnv()
    means = []
    for d in (0.0, 0.5, 1.0):
        lengths = []
        for seed in range(20):
            env.reset(seed=seed, options={"difficulty": d})
            lengths.append(env.optimal)
        means.append(float(np.mean(lengths)))
    assert means[0] < means[1] < means[2]


def test_dense_lakes_are_still_solvable() -> None:
    env = FrozenLakeEnv()
    for seed in range(50):
        env.reset(seed=seed, options={"params": {"size": 6, "hole_density": 0.6}})
        assert 0 < env.optimal < env.max_turns


def test_falling_into_a_hole_ends_the_episode_and_says_where() -> None:
    env = FrozenLakeEnv()
    for seed in range(200):
        env.reset(seed=seed, options={"params": {"size": 4, "hole_density": 0.4}})
        if env.holes[1]:
            break
    else:
        pytest.fail("no lake with a hole right of the start")
    _obs, reward, terminated, _truncated, info = env.step("right")
    assert terminated and reward == 0.0 and not info["solved"]
    assert "fell into a hole at (0, 1)" in info["feedback"]["summary"]


def test_edge_blocks_and_neighbourhood_is_reported() -> None:
    env = FrozenLakeEnv()
    env.reset(seed=0)
    _, _, terminated, _, info = env.step("up")
    assert "edge" in info["feedback"]["summary"] and not terminated
    assert env.pos == 0
    assert "Around you:" in info["feedback"]["details"]


def test_not_slippery_by_default_and_slippery_is_deterministic() -> None:
    env = FrozenLakeEnv()
    _, info = env.reset(seed=0)
    assert info["task"]["params"]["slippery"] is False
    runs = []
    for _ in range(2):
        env.reset(seed=4, options={"params": {"slippery": True, "hole_density": 0.0, "size": 6}})
        runs.append([env.step(a)[0] for a in ["down", "right", "down", "right"]])
    assert runs[0] == runs[1]


def test_json_tool_call() -> None:
    env = FrozenLakeEnv()
    env.reset(seed=0, options={"params": {"hole_density": 0.0}})
    _, _, _, _, info = env.step('```json\n{"name": "move", "arguments": {"direction": "down"}}\n```')
    assert info["tool_call"] == {"name": "move", "arguments": {"direction": "down"}}
    assert env.pos == env.params.size
