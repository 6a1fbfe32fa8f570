"""envgym/Minesweeper-v0: contract checks, oracle/random calibration, no-guess generation, and the rules."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envgym  # noqa: F401  (registers the ids)
from envgym.environments.puzzles.minesweeper import MinesweeperEnv, deduce, neighbour_masks
from envgym.testing import play, recovers

ENV_ID = "envgym/Minesweeper-v0"


def test_check_env() -> None:
    check_env(gym.make(ENV_ID).unwrapped)


def test_same_seed_and_options_give_identical_oracle_episodes() -> None:
    a, b = gym.make(ENV_ID).unwrapped, gym.make(ENV_ID).unwrapped
    for seed in (0, 7, 12345):
        assert play(a, seed, 0.7, "oracle") == play(b, seed, 0.7, "oracle")


@pytest.mark.parametrize("difficulty", [0.0, 0.5, 1.0])
def test_oracle_solves_every_episode(difficulty: float) -> None:
    env = gym.make(ENV_ID).unwrapped
    failures = [seed for seed in range(200) if not play(env, seed, difficulty, "oracle")[0]]
    assert failures == []


def test_oracle_recovers_after_random_moves() -> None:
    env = gym.make(ENV_ID).unwrapped
    failures = [(s, d) for s in range(20) for d in (0.0, 0.5, 1.0) if not recovers(env, s, d, 8)]
    assert failures == []


def test_random_agent_does_not_do_better_when_harder() -> None:
    env = gym.make(ENV_ID).unwrapped
    rates = {}
    for d in (0.0, 1.0):
        rng = np.random.default_rng(2024)
        rates[d] = sum(play(env, 10_000 + s, d, "random", rng)[0] for s in range(200)) / 200
    assert rates[1.0] <= rates[0.0]
    assert rates[1.0] < 0.05


@pytest.mark.parametrize("difficulty", [0.0, 0.5, 1.0])
def test_opening_is_safe_and_the_board_needs_no_guess(difficulty: float) -> None:
    env = MinesweeperEnv()
    for seed in range(20):
        env.reset(seed=seed, options={"difficulty": difficulty})
        assert env.revealed[env.start] and env.counts[env.start] == 0 and not env.layout[env.start]
        assert env.hidden_safe() > 0 and env.moves
        assert all(not env.layout[i] for i in env.moves)
        assert env.max_turns == len(env.moves) + env.params.slack


def test_deductions_are_sound() -> None:
    env = MinesweeperEnv()
    for seed in range(20):
        env.reset(seed=seed, options={"difficulty": 1.0})
        p = env.params
        opened = sum(1 << i for i, r in enumerate(env.revealed) if r)
        safe, mines = deduce(env.counts, opened, 0, env.n_mines, neighbour_masks(p.rows, p.cols))
        assert safe, "a no-guess board always has a next safe cell"
        for i in range(p.rows * p.cols):
            if safe >> i & 1:
                assert not env.layout[i]
            if mines >> i & 1:
                assert env.layout[i]


def test_harder_means_bigger_denser_boards() -> None:
    env = MinesweeperEnv()
    stats = []
    for d in (0.0, 0.5, 1.0):
        env.reset(seed=2, options={"difficulty": d})
        stats.append((env.params.rows * env.params.cols, env.n_mines / (env.params.rows * env.params.cols)))
    assert stats == sorted(stats)


def test_mine_ends_the_game_and_says_where() -> None:
    env = MinesweeperEnv()
    env.reset(seed=0, options={"difficulty": 0.5})
    cols = env.params.cols
    mine = env.layout.index(True)
    obs, reward, terminated, truncated, info = env.step(f"reveal {mine // cols + 1} {mine % cols + 1}")
    assert terminated and not truncated and reward == 0.0 and not info["solved"]
    assert f"({mine // cols + 1}, {mine % cols + 1}) was a mine" in info["feedback"]["summary"]
    assert "*" in obs


def test_reveal_numbers_flags_and_repeats() -> None:
    env = MinesweeperEnv()
    env.reset(seed=1, options={"difficulty": 0.5})
    cols = env.params.cols
    target = env.moves[0]
    r, c = target // cols + 1, target % cols + 1
    *_, info = env.step(f"flag {r} {c}")
    assert f"Flagged ({r}, {c})" in info["feedback"]["summary"] and target in env.flags
    *_, info = env.step(f"{r} {c}")
    assert "flagged" in info["feedback"]["summary"] and not env.revealed[target]
    assert env.oracle_action() == f"flag {r} {c}"
    env.step(env.oracle_action())
    hidden = env.hidden_safe()
    *_, info = env.step(f"reveal {r} {c}")
    summary = info["feedback"]["summary"]
    assert env.revealed[target] and (f"shows {env.counts[target]}" in summary or "opened" in summary)
    if env.hidden_safe():
        assert f"{env.hidden_safe()} safe cells still hidden" in summary and env.hidden_safe() < hidden
    *_, info = env.step(f"reveal {r} {c}")
    assert "already revealed" in info["feedback"]["summary"]
    *_, info = env.step("reveal 99 1")
    assert "row must be in 1.." in info["feedback"]["error"]
