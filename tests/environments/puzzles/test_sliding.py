"""envgym/Sliding-v0: exact optimal lengths, and the rules."""

import numpy as np

import envgym  # noqa: F401  (registers the ids)
from envgym.environments.puzzles.sliding import SlidingEnv, ida_star, manhattan


def test_scramble_length_is_the_exact_optimum() -> None:
    env = SlidingEnv()
    for seed in range(30):
        env.reset(seed=seed, options={"difficulty": 0.45})
        assert env.optimal == manhattan(env.state, env.params.size)
        path = ida_star(env.state, env.params.size)
        assert path is not None and len(path) == env.optimal
    for seed in range(30):
        env.reset(seed=seed, options={"difficulty": 1.0})
        assert env.params.size == 4 and env.optimal == manhattan(env.state, 4) >= 25


def test_optimal_length_grows_with_difficulty() -> None:
    env = SlidingEnv()
    means = []
    for d in (0.0, 0.25, 0.5, 0.75, 1.0):
        opt = []
        for seed in range(20):
            env.reset(seed=seed, options={"difficulty": d})
            opt.append(env.optimal)
        means.append(sum(opt) / len(opt))
    assert means == sorted(means) and means[0] <= 3 and means[-1] >= 30


def test_illegal_move_says_where_the_blank_is() -> None:
    env = SlidingEnv()
    env.reset(seed=0, options={"difficulty": 0.0})
    env.state = (1, 2, 3, 4, 5, 6, 7, 0, 8)  # blank in the bottom row
    _, reward, terminated, _, info = env.step("up")
    assert "blank is in the bottom row" in info["feedback"]["summary"]
    assert "legal moves now" in info["feedback"]["error"] and "up" not in info["feedback"]["error"].split(":")[1]
    assert env.state == (1, 2, 3, 4, 5, 6, 7, 0, 8) and not terminated
    _obs, reward, terminated, _, info = env.step("left")
    assert "Tile 8 slid left" in info["feedback"]["summary"] and terminated and reward == 1.0


def test_manhattan_hint_only_at_low_difficulty() -> None:
    env = SlidingEnv()
    for d, shown in ((0.2, True), (0.9, False)):
        env.reset(seed=1, options={"difficulty": d})
        action = env.random_action(np.random.default_rng(0))
        *_, terminated, _, info = env.step(action)
        if not terminated:
            assert ("Manhattan distance" in (info["feedback"]["hint"] or "")) is shown


def test_text_forms() -> None:
    env = SlidingEnv()
    env.reset(seed=0)
    for text, direction in (("u", "up"), ("Left", "left"), ("slide down", "down"), ("move right.", "right")):
        call = env._text_form(text)
        assert call is not None and call.arguments == {"direction": direction}
    assert env._text_form("upward") is None
    *_, info = env.step('{"name": "slide", "arguments": {"direction": "sideways"}}')
    assert "bad arguments" in info["feedback"]["error"]
