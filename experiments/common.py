"""Shared by the experiment scripts: run arms × seeds, write JSON, plot window-averaged curves to PNG."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def run_arms(
    name: str, runner: Callable[..., Any], arms: list[str], seeds: list[int], steps: int, reference: dict[str, float]
) -> dict[str, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from envgym.agents.plotting import moving_average

    torch.set_num_threads(1)
    RESULTS.mkdir(exist_ok=True)
    out: dict[str, Any] = {"experiment": name, "steps": steps, "seeds": seeds, "reference": reference, "arms": {}}
    fig, ax = plt.subplots(figsize=(7, 4))
    for arm in arms:
        runs = []
        for seed in seeds:
            result = runner(arm, steps=steps, seed=seed)
            runs.append(result.model_dump())
            last = sum(result.success[-50:]) / len(result.success[-50:])
            print(f"{name} {arm} seed {seed}: last-50 success {last:.3f} ({result.seconds:.0f} s)", file=sys.stderr)
            ax.plot(moving_average(result.success, 20), label=f"{arm} s{seed}")
        out["arms"][arm] = {
            "runs": runs,
            "last50_mean": sum(sum(r["success"][-50:]) / len(r["success"][-50:]) for r in runs) / len(runs),
        }
    for label, value in reference.items():
        ax.axhline(value, ls="--", lw=1, color="grey")
        ax.text(0, value, label, fontsize=8, va="bottom")
    ax.set_xlabel("step")
    ax.set_ylabel("success (20-step moving average)")
    ax.set_title(name)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(RESULTS / f"{name}.png", dpi=90)
    (RESULTS / f"{name}.json").write_text(json.dumps(out))
    print(json.dumps({arm: round(v["last50_mean"], 3) for arm, v in out["arms"].items()}))
    return out
