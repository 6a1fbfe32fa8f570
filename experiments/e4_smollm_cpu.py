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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common import RESULTS

ARMS: dict[str, dict[str, Any]] = {
    "packaged": {},
    "dynamic": {"dynamic_sampling": True, "dynamic_max_rounds": 3, "ppo_epochs": 2},
    "kl": {"dynamic_sampling": True, "dynamic_max_rounds": 3, "ppo_epochs": 2, "kl_beta": 0.05},
}


class HeldOutLog:
    """One stderr line per held-out chunk at most every 60 s (and at the end of a pass): visible, not a flood."""

    def __init__(self, arm: str, start: float) -> None:
        self.arm, self.start, self.last = arm, start, 0.0

    def __call__(self, phase: str, done: int, total: int) -> None:
        now = time.perf_counter()
        if phase == "held-out" and (done == total or now - self.last >= 60):
            self.last = now
            print(
                f"{self.arm} held-out {done}/{total} episodes ({now - self.start:.0f} s)", file=sys.stderr, flush=True
            )


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--arm", choices=sorted(ARMS), default="packaged")
    p.add_argument("--steps", type=int, default=48)
    p.add_argument("--episodes", type=int, default=128, help="held-out episodes per evaluation")
    p.add_argument("--run-dir", default=None)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--eval-every", type=int, default=0, help="also score the held-out seeds greedily every K steps")
    p.add_argument(
        "--deadline",
        default=None,
        help="UTC HH:MM: stop training after the step that ends past it (the final "
        "held-out evaluation follows); the steps actually done are recorded",
    )
    p.add_argument(
        "--no-before",
        action="store_true",
        help="skip the step-0 evaluation (it is the same for every arm: same "
        "initial weights, seeds and sampling seed; take it from another arm's JSON)",
    )
    p.add_argument("--t1-by", default=None, help="UTC HH:MM: skip the final T=1 evaluation if it would start later")
    p.add_argument(
        "--only-before",
        action="store_true",
        help="only the step-0 evaluation, to results/e4_smollm_cpu.before.json "
        "(run it beside arms started with --no-before)",
    )
    a = p.parse_args()  # fmt: skip

    import torch

    from envgym.agents.cli import default_config_path
    from envgym.agents.heldout import HeldOutConfig, heldout_success, read_heldout
    from envgym.agents.plotting import heldout_summary, plot_run
    from envgym.agents.trainer import TrainConfig, Trainer

    torch.set_num_threads(a.threads)
    base = TrainConfig.from_yaml(default_config_path())
    heldout = HeldOutConfig(episodes=a.episodes, seed=10_000, temperatures=[0.0, base.policy.temperature])
    # the script runs the held-out evaluations itself (the trainer's own are off), so that the cheap greedy
    # result of the final weights is written before the costly T=1 one
    config = base.model_copy(
        update={"steps": a.steps, "heldout": HeldOutConfig(episodes=0), "checkpoint_every": 12, **ARMS[a.arm]}
    )
    name = "before" if a.only_before else a.arm
    run_dir = Path(a.run_dir or f"runs/e4-{name}")
    shutil.rmtree(run_dir, ignore_errors=True)
    deadline, t1_by = _deadline(a.deadline), _deadline(a.t1_by)
    start = time.perf_counter()
    log = HeldOutLog(a.arm, start)
    trainer = Trainer(config, run_dir)
    history: list[dict[str, Any]] = []
    skipped: list[str] = []

    def write(finished: bool) -> dict[str, Any]:
        summary = {
            "experiment": "e4_smollm_cpu", "arm": name, "overrides": ARMS[a.arm], "env_id": config.env_id,
            "difficulty": config.difficulty, "steps": trainer.step, "steps_planned": a.steps, "finished": finished,
            "threads": a.threads, "seconds": round(time.perf_counter() - start), "skipped": skipped,
            "heldout": [r.model_dump() for r in read_heldout(run_dir)], "metrics": history,
        }  # fmt: skip
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / f"e4_smollm_cpu.{name}.json").write_text(json.dumps(summary))
        return summary

    def evaluate(temperature: float) -> None:
        cfg = heldout.model_copy(update={"temperatures": [temperature]})
        rows = heldout_success(trainer.policy, trainer.envs, cfg, config.rollout, config.difficulty, trainer.step,
                               on_progress=lambda d, t: log("held-out", d, t))  # fmt: skip
        with trainer.heldout_path.open("a") as f:
            f.writelines(r.model_dump_json() + "\n" for r in rows)
        print(f"{a.arm} step {trainer.step}: held-out T={temperature:g} {rows[0].success:.3f} ± {rows[0].stderr:.3f}",
              file=sys.stderr, flush=True)  # fmt: skip
        write(finished=False)

    def on_step(m: dict[str, Any]) -> None:
        history.append(m)
        print(f"{a.arm} step {m['step']}: success {m['success']:.3f} entropy {m['entropy']:.3f} "
              f"zero-var {m['zero_var_frac']:.2f} rollout {m['rollout_s']:.0f} s learn {m['learn_s']:.0f} s",
              file=sys.stderr, flush=True)  # fmt: skip
        if deadline is not None and time.time() > deadline and trainer.step < a.steps:
            print(f"{a.arm}: deadline passed, stopping after step {trainer.step}", file=sys.stderr, flush=True)
            trainer.config.steps = trainer.step  # the loop ends after this step
        elif a.eval_every and trainer.step % a.eval_every == 0 and trainer.step < trainer.config.steps:
            evaluate(0.0)

    if a.no_before:
        skipped.append("step-0 evaluation (identical for every arm)")
    else:
        for temperature in heldout.temperatures:
            evaluate(temperature)
    if a.only_before:
        write(finished=True)
        return
    trainer.train(on_step=on_step, on_progress=log)
    evaluate(0.0)
    if t1_by is not None and time.time() > t1_by:
        skipped.append(f"final T={base.policy.temperature:g} evaluation (past --t1-by {a.t1_by})")
    else:
        evaluate(base.policy.temperature)
    for line in heldout_summary(run_dir):
        print(line, file=sys.stderr)
    plot_run(run_dir)
    summary = write(finished=True)
    shutil.copy(run_dir / "curves.png", RESULTS / f"e4_smollm_cpu.{a.arm}.png")
    print(
        json.dumps({"arm": a.arm, "steps": trainer.step, "heldout": summary["heldout"], "seconds": summary["seconds"]})
    )


def _deadline(hhmm: str | None) -> float | None:
    """Today's HH:MM UTC as a Unix time (None: no deadline)."""
    if hhmm is None:
        return None
    hour, minute = (int(x) for x in hhmm.split(":"))
    now = datetime.now(UTC)
    return now.replace(hour=hour, minute=minute, second=0, microsecond=0).timestamp()


if __name__ == "__main__":
    main()
