"""The difficulty controller: learnability weights, frontier with hysteresis, replay, the wrapper."""

import numpy as np

from envgym.agents.toy import ToyCodeEnv
from envgym.curriculum import CurriculumConfig, CurriculumWrapper, DifficultyController


def test_frontier_moves_up_on_mastery_and_back_on_forgetting():
    c = DifficultyController(CurriculumConfig(levels=[0.0, 0.5, 1.0], min_samples=4, ema=0.5), seed=0)
    assert c.sample("f") == 0.0  # only level 0 before anything is mastered
    for _ in range(4):
        c.update("f", 0.0, 1.0)
    assert c.families["f"].frontier == 1
    for _ in range(3):  # not enough samples since the move: no thrashing
        c.update("f", 0.0, 0.0)
    assert c.families["f"].frontier == 1
    c.update("f", 0.5, 0.0)
    assert c.families["f"].frontier == 0  # level below the frontier forgotten -> retreat


def _at_level_one(ema: float = 0.1) -> DifficultyController:
    c = DifficultyController(CurriculumConfig(levels=[0.0, 0.5, 1.0], min_samples=1, ema=ema), seed=0)
    st = c._state("f")
    st.frontier, st.p_hat = 1, [0.9, 0.3, 0.5]
    return c


def test_one_lucky_group_does_not_move_the_frontier_in_a_batch_update():
    lucky_then_failures = [(0.5, 1.0, 0)] * 10 + [(0.5, 0.0, g) for g in range(1, 8) for _ in range(10)]
    one_by_one, frontiers = _at_level_one(), []
    for difficulty, success, _ in lucky_then_failures:
        one_by_one.update("f", difficulty, success)
        frontiers.append(one_by_one.families["f"].frontier)
    assert frontiers[8] == 2  # per-episode EMA: nine correlated successes cross 0.7 (then it falls back)
    batched = _at_level_one()
    batched.update_batch("f", lucky_then_failures)
    st = batched.families["f"]
    assert st.frontier == 1 and st.counts[1] == 80 and st.since_move == 80
    assert abs(st.p_hat[1] - (0.3 * 0.9 + 0.1) * 0.9**7) < 1e-9  # each task counted once, by its mean


def test_a_batch_of_mastered_tasks_moves_the_frontier_once():
    c = _at_level_one(ema=0.5)
    c.update_batch("f", [(0.5, 1.0, g) for g in range(4) for _ in range(8)])
    assert c.families["f"].frontier == 2 and c.families["f"].since_move == 0


def test_learnability_weights_prefer_medium_success():
    c = DifficultyController(CurriculumConfig(levels=[0.0, 0.5, 1.0]), seed=0)
    st = c._state("f")
    st.frontier, st.p_hat = 2, [0.95, 0.5, 0.02]
    w = c.weights("f")
    assert w[1] > w[0] and w[1] > w[2]
    draws = [c.sample("f") for _ in range(2000)]
    share = {lv: draws.count(lv) / len(draws) for lv in (0.0, 0.5, 1.0)}
    assert share[0.5] > 0.5 and share[0.0] > 0.1  # replay keeps easier levels in the mix


def test_wrapper_sets_difficulty_and_reports_success():
    c = DifficultyController(CurriculumConfig(levels=[0.0, 1.0], min_samples=1, ema=1.0), seed=1)
    env = CurriculumWrapper(ToyCodeEnv(), c)
    _, info = env.reset(seed=3)
    assert info["task"]["difficulty"] == 0.0
    code = " ".join(env.unwrapped.code)
    *_, terminated, _, info = env.step(code)
    assert terminated and info["solved"]
    assert c.families[env.family].p_hat[0] == 1.0 and c.families[env.family].frontier == 1
    state = c.state_dict()
    d = DifficultyController(CurriculumConfig(levels=[0.0, 1.0]))
    d.load_state_dict(state)
    assert d.families == c.families
    assert np.isclose(sum(d.weights(env.family)), 1.0)
