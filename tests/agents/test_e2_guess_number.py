"""E2 (NOTES-RL §12): multi-turn guess-the-number with h/l feedback, a tiny random model, fixed seeds.

The claim under test: full-episode credit makes the policy *use the feedback text*. Success must rise above
the hidden-feedback ceiling K/N = 5/16 (no policy that cannot see feedback does better in expectation), while
the hidden-feedback control stays at or below it and the shuffled-reward control never beats its own start.
"""

import pytest
from toy_runs import run_e2, window_mean

STEPS = 200
CEILING = 5 / 16


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_e2_feedback_is_used_and_controls_fail():
    normal = [run_e2("normal", STEPS, seed=s) for s in (0, 1)]
    hidden = run_e2("hidden", STEPS, seed=0)
    shuffled = run_e2("shuffled", STEPS, seed=0)
    start = window_mean(hidden.success, 0, 10)  # arms with the same seed start from the same model and tasks
    last_normal = [window_mean(r.success, STEPS - 50) for r in normal]
    last_hidden = window_mean(hidden.success, STEPS - 50)
    print(f"E2 start {start:.3f}; last-50 normal {last_normal}, hidden {last_hidden:.3f}, "
          f"shuffled {window_mean(shuffled.success, STEPS - 50):.3f}")  # fmt: skip
    assert start < CEILING
    for value in last_normal:  # every seed rises clearly above what a feedback-blind policy can reach
        assert value > CEILING + 0.06, last_normal
        assert value > last_hidden + 0.08, (last_normal, last_hidden)
    assert last_hidden <= CEILING + 0.03, last_hidden
    windows = [window_mean(shuffled.success, i, i + 20) for i in range(0, STEPS, 20)]
    assert max(windows) <= start + 0.05, windows
