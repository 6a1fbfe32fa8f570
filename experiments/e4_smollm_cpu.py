"""E4 (CPU form): SmolLM2-135M-Instruct improving on an easy puzzle family through the packaged `envgym train`
config (guess-the-number, difficulty 0), judged on held-out tasks before and after training.

Why held-out evaluation: the training curve's per-step success (16 episodes) swings by ±0.3, so the claim
"it improved" rests on the same 128 held-out task seeds (never trained on) scored before and after, both
greedy and sampling at the training temperature, with the same policy settings (system prompt, action prefix).
Writes results/e4_smollm_cpu.{json,png}.

    .venv/bin/python experiments/e4_smollm_cpu.py [--steps 24] [--episodes 128] [--threads 2]
"""

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from common import RESULTS


def score(policy: Any, config: Any, episodes: int, temperature: float) -> float:
    from envgym.agents.evaluation import evaluate
    from envgym.agents.trainer import make_env

    policy.config = policy.config.model_copy(update={"temperature": temperature})
    result = evaluate(
        lambda: make_env(config.env_id, config.env_kwargs), policy, episodes=episodes,
        difficulty=config.difficulty, seed=10_000, batch_size=32, max_turns=config.rollout.max_turns,
    )  # fmt: skip
    return result.success_rate


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=24)
    p.add_argument("--episodes", type=int, default=128, help="held-out episodes per evaluation")
    p.add_argument("--run-dir", default="runs/e4")
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()

    import torch

    from envgym.agents.cli import default_config_path
    from envgym.agents.plotting import plot_run
    from envgym.agents.trainer import TrainConfig, Trainer, make_policy

    torch.set_num_threads(a.threads)
    config = TrainConfig.from_yaml(default_config_path()).model_copy(update={"steps": a.steps})
    shutil.rmtree(a.run_dir, ignore_errors=True)
    policy = make_policy(config.policy)
    train_temperature = config.policy.temperature

    def evaluate_all(label: str) -> dict[str, float]:
        start = time.perf_counter()
        out = {f"T={t:g}": score(policy, config, a.episodes, t) for t in (0.0, train_temperature)}
        policy.config = policy.config.model_copy(update={"temperature": train_temperature})
        print(f"{label}: {out} ({time.perf_counter() - start:.0f} s)", file=sys.stderr, flush=True)
        return out

    before = evaluate_all("before")
    start = time.perf_counter()
    history = Trainer(config, a.run_dir, policy=policy).train(
        on_step=lambda m: print(f"step {m['step']}: success {m['success']:.3f}", file=sys.stderr, flush=True)
    )
    train_s = time.perf_counter() - start
    after = evaluate_all("after")
    plot_run(a.run_dir)
    RESULTS.mkdir(exist_ok=True)
    summary = {
        "experiment": "e4_smollm_cpu", "env_id": config.env_id, "difficulty": config.difficulty,
        "steps": a.steps, "episodes_per_step": config.tasks_per_step * config.group_size,
        "heldout_episodes": a.episodes, "heldout_seeds": [10_000, 10_000 + a.episodes - 1],
        "before": before, "after": after, "train_seconds": round(train_s), "threads": a.threads,
        "metrics": history,
    }  # fmt: skip
    (RESULTS / "e4_smollm_cpu.json").write_text(json.dumps(summary))
    shutil.copy(Path(a.run_dir) / "curves.png", RESULTS / "e4_smollm_cpu.png")
    print(json.dumps({"before": before, "after": after, "train_seconds": round(train_s)}))


if __name__ == "__main__":
    main()
