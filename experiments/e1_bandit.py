"""E1: bandit sanity (single turn) with sign-flip and shuffled-reward controls. ~1-3 min per arm on 1 thread.

.venv/bin/python experiments/e1_bandit.py [--steps 150] [--seeds 0]
"""

import argparse

from common import run_arms
from toy_runs import run_e1

if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    a = p.parse_args()
    run_arms(
        "e1_bandit", run_e1, ["normal", "flipped", "shuffled"], a.seeds, a.steps, {"chance (1/16 of numbers)": 1 / 16}
    )
