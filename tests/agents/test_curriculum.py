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
