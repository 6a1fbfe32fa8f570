"""E4 (CPU form): SmolLM2-135M-Instruct on easy guess-the-number through the packaged `envgym train` config,
one arm per process, judged on the same 128 held-out task seeds before and after training, greedy and T=1.

Arms (same seeds, same held-out tasks):
  packaged  the shipped config (2 minibatch updates per batch, so clip-higher acts)
  dynamic   + dynamic sampling (fresh task seeds until every group of the batch has reward variance, at most
            3 rounds) and 2 PPO epochs (the batch is reused more, clip-higher acts more)
  kl        dynamic + a k2 KL penalty to the initial model (β = 0.05)

Why held-out: the training curve's per-step success (16 episodes) swings by ±0.2. Writes
results/e4_smollm_cpu.<arm>.{json,png}.

    nice -n 19 .venv/bin/python experiments/e4_smollm_cpu.py --arm packaged --steps 48 [--episodes 128] [--threads 1]
"""

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from common import RESULTS

ARMS: dict[str, dict[str, Any]] = {
    "packaged": {},
    "dynamic": {"dynamic_sampling": True, "dynamic_max_rounds": 3, "ppo_epochs": 2},
    "kl": {"dynamic_sampling": True, "dynamic_max_rounds": 3, "ppo_epochs": 2, "kl_beta": 0.05},
}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--arm", choices=sorted(ARMS), default="packaged")
    p.add_argument("--steps", type=int, default=48)
    p.add_argument("--episodes", type=int, default=128, help="held-out episodes per evaluation")
    p.add_argument("--run-dir", default=None)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()

    import torch

    from envgym.agents.cli import default_config_path
    from envgym.agents.heldout import HeldOutConfig, read_heldout
    from envgym.agents.plotting import heldout_summary, plot_run
    from envgym.agents.trainer import TrainConfig, Trainer

    torch.set_num_threads(a.threads)
    base = TrainConfig.from_yaml(default_config_path())
    heldout = HeldOutConfig(episodes=a.episodes, seed=10_000, temperatures=[0.0, base.policy.temperature])
    config = base.model_copy(update={"steps": a.steps, "heldout": heldout, "checkpoint_every": 12, **ARMS[a.arm]})
    run_dir = Path(a.run_dir or f"runs/e4-{a.arm}")
    shutil.rmtree(run_dir, ignore_errors=True)
    start = time.perf_counter()
    history = Trainer(config, run_dir).train(
        on_step=lambda m: print(f"{a.arm} step {m['step']}: success {m['success']:.3f} entropy {m['entropy']:.3f} "
                                f"zero-var {m['zero_var_frac']:.2f}", file=sys.stderr, flush=True)
    )  # fmt: skip
    seconds = time.perf_counter() - start
    for line in heldout_summary(run_dir):
        print(line, file=sys.stderr)
    plot_run(run_dir)
    RESULTS.mkdir(exist_ok=True)
    summary = {
        "experiment": "e4_smollm_cpu", "arm": a.arm, "overrides": ARMS[a.arm], "env_id": config.env_id,
        "difficulty": config.difficulty, "steps": a.steps, "threads": a.threads, "seconds": round(seconds),
        "heldout": [r.model_dump() for r in read_heldout(run_dir)], "metrics": history,
    }  # fmt: skip
    (RESULTS / f"e4_smollm_cpu.{a.arm}.json").write_text(json.dumps(summary))
    shutil.copy(run_dir / "curves.png", RESULTS / f"e4_smollm_cpu.{a.arm}.png")
    print(json.dumps({"arm": a.arm, "heldout": summary["heldout"], "seconds": round(seconds)}))


if __name__ == "__main__":
    main()
