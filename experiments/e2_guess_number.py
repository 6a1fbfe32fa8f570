"""E2: multi-turn guess-the-number (N=16, K=5) with h/l feedback; hidden-feedback and shuffled-reward controls.

.venv/bin/python experiments/e2_guess_number.py [--steps 400] [--seeds 0 1 2]
"""

import argparse

from common import run_arms
from toy_runs import run_e2

if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    a = p.parse_args()
    run_arms(
        "e2_guess_number", run_e2, ["normal", "hidden", "shuffled"], a.seeds, a.steps, {"hidden ceiling K/N": 5 / 16}
    )
