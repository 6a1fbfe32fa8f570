"""envgym/Maze-v0: the rules (walls bumped, surroundings)."""

import numpy as np
import pytest

import envgym  # noqa: F401  (registers the ids)
from envgym.environments.puzzles.maze import DELTAS, DIRECTIONS, MazeEnv, parse_direction


def test_optimal_path_grows_with_difficulty_and_fits_the_budget() -> None:
    env = MazeEnv()
    means = []
    for d in (0.0, 0.5, 1.0):
        lengths = []
        for seed in range(20):
            env.reset(seed=seed, options={"difficulty": d})
            assert 0 < env.optimal < env.max_turns
            lengths.append(env.optimal)
        means.append(float(np.mean(lengths)))
    assert means[0] < means[1] < means[2]


def test_maze_is_perfect() -> None:
    """Carving a tree: open squares = 2 * cells - 1 (cells plus one passage per tree edge)."""
    env = MazeEnv()
    env.reset(seed=5, options={"params": {"rows": 6, "cols": 4}})
    assert sum(env.open) == 2 * 6 * 4 - 1


def test_bumping_a_wall_says_which_and_keeps_position() -> None:
    env = MazeEnv()
    env.reset(seed=1, options={"difficulty": 0.5})
    r, c = env.pos
    blocked = next(d for d in DIRECTIONS if not env._is_open(r + DELTAS[d][0], c + DELTAS[d][1]))
    obs, reward, terminated, _truncated, info = env.step(blocked)
    assert info["feedback"]["summary"].startswith("Bumped into the wall")
    assert "Open:" in info["feedback"]["details"] and "Walls:" in info["feedback"]["details"]
    assert env.pos == (r, c) and not terminated and reward == 0.0
    assert "A" in obs and "G" in obs


def test_board_shows_agent_and_goal() -> None:
    env = MazeEnv()
    obs, _ = env.reset(seed=2, options={"difficulty": 0.0})
    assert obs.count("A") >= 1 and "G" in obs and "#" in obs


@pytest.mark.parametrize(
    ("text", "direction"), [("up", "up"), ("Move Left", "left"), ("n", "up"), ("east", "right"), ("d.", "down")]
)
def test_text_form(text: str, direction: str) -> None:
    assert parse_direction(text) == direction


def test_prose_is_not_a_move() -> None:
    env = MazeEnv()
    env.reset(seed=0)
    _, _, terminated, _, info = env.step("I think we should go somewhere")
    assert info["feedback"]["error"] and not terminated
