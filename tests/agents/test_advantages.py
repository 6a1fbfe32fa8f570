"""Advantage estimators on hand-computed groups."""

import pytest

from envgym.agents.advantages import group_advantages, rebn_advantages

R = [1.0, 0.0, 0.0, 1.0, 0.5, 0.5, 0.5]
GROUPS = [0, 0, 0, 0, 1, 1, 1]


def test_rloo_leave_one_out_mean():
    adv = group_advantages(R, GROUPS, "rloo")
    # group 0: r=1 -> 1 - (0+0+1)/3 = 2/3; r=0 -> 0 - 2/3 = -2/3; group 1 all equal -> 0
    assert adv == pytest.approx([2 / 3, -2 / 3, -2 / 3, 2 / 3, 0.0, 0.0, 0.0])


def test_rloo_single_episode_group_is_zero():
    assert group_advantages([1.0, 0.3], [0, 1], "rloo") == [0.0, 0.0]


def test_drgrpo_is_group_mean_difference():
    adv = group_advantages([3.0, 1.0, 2.0, 10.0], [0, 0, 0, 1], "drgrpo")
    assert adv == pytest.approx([1.0, -1.0, 0.0, 0.0])


def test_grpo_divides_by_population_std_and_guards_zero():
    adv = group_advantages(R, GROUPS, "grpo")
    # group 0: mean .5, std .5 -> ±1
    assert adv == pytest.approx([1.0, -1.0, -1.0, 1.0, 0.0, 0.0, 0.0], abs=1e-5)


def test_lite_uses_group_mean_and_batch_std():
    returns = [1.0, 0.0, 4.0, 2.0]
    groups = [0, 0, 1, 1]
    # batch mean 1.75, population std = sqrt(((.75)^2+(1.75)^2+(2.25)^2+(.25)^2)/4)
    std = ((0.75**2 + 1.75**2 + 2.25**2 + 0.25**2) / 4) ** 0.5
    adv = group_advantages(returns, groups, "lite")
    assert adv == pytest.approx([0.5 / std, -0.5 / std, 1.0 / std, -1.0 / std], rel=1e-5)


def test_rebn_returns_to_go_batch_normalised():
    adv = rebn_advantages([[0.0, 1.0], [1.0]], gamma=0.5)
    # returns-to-go: [0.5, 1.0], [1.0]; mean 5/6, population std sqrt(((1/3)^2 + 2*(1/6)^2)/3)
    mean = 2.5 / 3
    std = (((0.5 - mean) ** 2 + 2 * (1 - mean) ** 2) / 3) ** 0.5
    assert adv[0] == pytest.approx([(0.5 - mean) / std, (1 - mean) / std], rel=1e-5)
    assert adv[1] == pytest.approx([(1 - mean) / std], rel=1e-5)


def test_unknown_estimator_raises():
    with pytest.raises(ValueError):
        group_advantages([1.0], [0], "rebn")
