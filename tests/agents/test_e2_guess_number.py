"""E2 (NOTES-RL §12): multi-turn guess-the-number with h/l feedback, a tiny random model, fixed seeds.

The claim under test: full-episode credit makes the policy *use the feedback text*. Success must rise above
the hidden-feedback ceiling K/N = 5/16 (no policy that cannot see feedback does better in expectation), while
the hidden-feedback control stays at or below it and the shuffled-reward control never beats its own start.
"""

import pytest

from envgym.agents.toy_experiments import run_e2, window_mean

STEPS = 200
CEILING = 5 / 16


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_e2_feedback_is_used_and_controls_fail():
    normal = run_e2("normal", STEPS, seed=0)
    hidden = run_e2("hidden", STEPS, seed=0)
    shuffled = run_e2("shuffled", STEPS, seed=0)
    start = window_mean(normal.success, 0, 10)  # all arms start from the same model and tasks
    last = {r.arm: window_mean(r.success, STEPS - 50) for r in (normal, hidden, shuffled)}
    print(f"E2 start {start:.3f} last-50: {last}")
    assert start < CEILING
    assert last["normal"] > CEILING + 0.08, last
    assert last["hidden"] <= CEILING + 0.03, last
    assert last["normal"] > last["hidden"] + 0.1, last
    windows = [window_mean(shuffled.success, i, i + 20) for i in range(0, STEPS, 20)]
    assert max(windows) <= start + 0.05, windows
