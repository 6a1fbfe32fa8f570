"""E3: curriculum (L = 1..6) vs fixed-hard (L = 6) on toy code-breaking; 4-layer d=128 model, one thread.

Both arms are scored every --eval-every steps on the same 256 held-out L=6 tasks (the comparison NOTES-RL
asks for). Each arm writes results/e3_curriculum.<arm>.json as it goes, so the two arms can run as two
processes (one per core) and a stopped run still leaves its numbers; `--plot` merges whatever exists into
results/e3_curriculum.{json,png}.

    .venv/bin/python experiments/e3_curriculum.py --arm curriculum --steps 2000 &
    .venv/bin/python experiments/e3_curriculum.py --arm fixed-hard --steps 2000
    .venv/bin/python experiments/e3_curriculum.py --plot
"""

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from common import RESULTS

ARMS = ["curriculum", "fixed-hard", "fixed-L2"]
RANDOM_L6 = 1 - (1 - 4**-6) ** 6  # uniform random play at L=6 with K=6 turns


def arm_path(arm: str) -> Path:
    return RESULTS / f"e3_curriculum.{arm}.json"


def run(arm: str, steps: int, seed: int, eval_every: int) -> None:
    import torch
    from toy_runs import ArmResult, run_e3

    torch.set_num_threads(1)
    RESULTS.mkdir(exist_ok=True)

    def save(result: ArmResult) -> None:
        tmp = arm_path(arm).with_suffix(".tmp")
        tmp.write_text(json.dumps({"steps_planned": steps, **result.model_dump()}))
        tmp.replace(arm_path(arm))
        level = result.level_by_step[-1] if result.level_by_step else None
        held_out = f"{result.eval_success[-1]:.3f}" if result.eval_success else "not evaluated"
        print(
            f"{arm} step {len(result.success)}: L=6 held-out success {held_out}, "
            f"train success {sum(result.success[-50:]) / len(result.success[-50:]):.3f}, "
            f"frontier {level}, {result.seconds:.0f} s",
            file=sys.stderr,
            flush=True,
        )

    save(run_e3(arm, steps=steps, seed=seed, eval_every=eval_every, progress=save))


def plot() -> dict[str, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from envgym.agents.plotting import moving_average

    arms = {arm: json.loads(arm_path(arm).read_text()) for arm in ARMS if arm_path(arm).exists()}
    fig, (ax_eval, ax_train) = plt.subplots(1, 2, figsize=(11, 4))
    summary: dict[str, Any] = {"experiment": "e3_curriculum", "random_at_L6": RANDOM_L6, "arms": {}}
    for arm, r in arms.items():
        ax_eval.plot(r["eval_steps"], r["eval_success"], marker=".", label=arm)
        ax_train.plot(moving_average(r["success"], 20), label=f"{arm}: train success")
        summary["arms"][arm] = {
            "steps": len(r["success"]),
            "seconds": round(r["seconds"]),
            "final_L6_success": r["eval_success"][-1] if r["eval_success"] else None,
            "best_L6_success": max(r["eval_success"], default=None),
            "zero_var_frac_last100": sum(r["zero_var_frac"][-100:]) / max(len(r["zero_var_frac"][-100:]), 1),
            "final_frontier": r["level_by_step"][-1] if r["level_by_step"] else None,
        }
        if any(lv is not None for lv in r["level_by_step"]):
            ax_train.plot([1 + 5 * lv for lv in r["level_by_step"]], ls=":", label=f"{arm}: frontier L")
    ax_eval.axhline(RANDOM_L6, ls="--", lw=1, color="grey")
    ax_eval.text(0, RANDOM_L6, "uniform random at L=6", fontsize=8, va="bottom")
    ax_eval.set(xlabel="step", ylabel="success on 256 held-out L=6 tasks", title="E3: evaluation at L=6")
    ax_train.set(xlabel="step", ylabel="success (20-step MA) / frontier L", title="training tasks")
    for ax in (ax_eval, ax_train):
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(RESULTS / "e3_curriculum.png", dpi=90)
    (RESULTS / "e3_curriculum.json").write_text(json.dumps({**summary, "runs": arms}))
    print(json.dumps(summary["arms"], indent=1))
    return summary


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--arm", choices=ARMS, action="append", help="default: curriculum, then fixed-hard")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-every", type=int, default=50)
    p.add_argument("--plot", action="store_true", help="only merge the per-arm files into the summary and PNG")
    a = p.parse_args()
    if not a.plot:
        for arm in a.arm or ARMS[:2]:
            run(arm, a.steps, a.seed, a.eval_every)
    plot()
