"""E3: curriculum (L = 1..6) vs fixed-hard (L = 6) on toy code-breaking; 4-layer d=128 model.

Both arms are scored on their training tasks; the curriculum's per-level success is in the JSON. The notes
expect 2-3k steps before a curriculum effect shows: this is a long CPU run.

    .venv/bin/python experiments/e3_curriculum.py [--steps 2000] [--seeds 0]
"""

import argparse

from common import run_arms

from envgym.agents.toy_experiments import run_e3

if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    a = p.parse_args()
    run_arms("e3_curriculum", run_e3, ["curriculum", "fixed-hard"], a.seeds, a.steps, {"random at L=6": 6 * 4**-6})
