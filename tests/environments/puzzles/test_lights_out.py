"""envgym/LightsOut-v0: the GF(2) solver's minimality, and the rules."""

import numpy as np

import envgym  # noqa: F401  (registers the ids)
from envgym.environments.puzzles.lights_out import LightsOutEnv, press_masks, solve


def brute_force_min(lights: int, size: int) -> int | None:
    """Fewest presses by trying every press set in Gray-code order."""
    masks = press_masks(size)
    n = size * size
    best: int | None = None
    board, presses = 0, 0
    for k in range(1, 1 << n):
        bit = (k & -k).bit_length() - 1
        board ^= masks[bit]
        presses ^= 1 << bit
        if board == lights and (best is None or presses.bit_count() < best):
            best = presses.bit_count()
    return 0 if lights == 0 else best


def test_solver_is_minimal_on_every_3x3_board() -> None:
    for lights in range(1, 1 << 9):
        plan = solve(lights, 3)
        assert plan is not None  # 3x3 press matrix is invertible
        assert plan.bit_count() == brute_force_min(lights, 3)


def test_solver_is_minimal_on_singular_4x4_boards() -> None:
    rng = np.random.default_rng(0)
    masks = press_masks(4)
    for _ in range(3):
        lights = 0
        for cell in rng.choice(16, size=6, replace=False):
            lights ^= masks[int(cell)]
        plan = solve(lights, 4)
        assert plan is not None and plan.bit_count() == brute_force_min(lights, 4)
    assert solve(1, 5) is None  # one corner light alone is unsolvable on 5x5


def test_optimal_length_grows_with_difficulty() -> None:
    env = LightsOutEnv()
    means = []
    for d in (0.0, 0.5, 1.0):
        opt = []
        for seed in range(20):
            env.reset(seed=seed, options={"difficulty": d})
            opt.append(env.optimal)
            assert env.max_turns > env.optimal
        means.append(sum(opt) / len(opt))
    assert means == sorted(means) and means[0] < means[-1]


def test_press_reports_toggled_lights_and_remaining() -> None:
    env = LightsOutEnv()
    env.reset(seed=4, options={"params": {"size": 3, "presses": 2}})
    before = env.lights
    obs, _reward, terminated, _, info = env.step("press 2 2")
    assert env.lights == before ^ press_masks(3)[4]
    details = info["feedback"]["details"]
    for cell in ("(1,2)", "(2,1)", "(2,2)", "(2,3)", "(3,2)"):
        assert cell in details
    if not terminated:
        assert f"{env.lights.bit_count()} lights remain lit" in info["feedback"]["summary"]
    assert "1 2 3" in obs  # the grid header is shown


def test_out_of_range_press_and_text_forms() -> None:
    env = LightsOutEnv()
    env.reset(seed=0, options={"difficulty": 0.0})
    before = env.lights
    *_, info = env.step("press 4 1")
    assert "must be in 1..3" in info["feedback"]["error"] and env.lights == before
    assert env._text_form("2 3") is not None
    assert env._text_form("(2, 3)") is not None
    assert env._text_form("push 2 3") is None


def test_oracle_solves_optimally_from_the_start() -> None:
    env = LightsOutEnv()
    for seed in range(20):
        env.reset(seed=seed, options={"difficulty": 1.0})
        optimal, turns = env.optimal, 0
        while True:
            *_, terminated, truncated, _ = env.step(env.oracle_action())
            turns += 1
            if terminated or truncated:
                break
        assert terminated and turns == optimal
