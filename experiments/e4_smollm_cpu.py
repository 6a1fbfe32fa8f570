"""E4 (CPU form): SmolLM2-135M-Instruct improving on an easy puzzle family through `envgym train`.

Runs the packaged default config (guess-the-number, difficulty 0) for --steps steps, then writes the run's
curve to results/e4_smollm_cpu.{json,png}. Greedy before/after evaluation: `envgym eval --policy hf`.

    .venv/bin/python experiments/e4_smollm_cpu.py [--steps 40] [--run-dir runs/e4]
"""

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

from common import RESULTS

if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--run-dir", default="runs/e4")
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    cmd = ["envgym", "train", "--run-dir", a.run_dir, "--steps", str(a.steps), "--threads", str(a.threads)]
    subprocess.run([str(Path(sys.executable).with_name("envgym")), *cmd[1:]], check=True)
    RESULTS.mkdir(exist_ok=True)
    rows = [json.loads(x) for x in (Path(a.run_dir) / "metrics.jsonl").read_text().splitlines()]
    (RESULTS / "e4_smollm_cpu.json").write_text(json.dumps({"metrics": rows}))
    shutil.copy(Path(a.run_dir) / "curves.png", RESULTS / "e4_smollm_cpu.png")
    print(json.dumps({"success": [r["success"] for r in rows]}))
