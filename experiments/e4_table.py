"""E4's summary table for docs/learner.md from `results/e4_smollm_cpu.<arm>.json` (the arms present).

    .venv/bin/python experiments/e4_table.py     # prints a markdown table; paste it under "E4 rerun"

Columns: held-out success on the same seeds, first -> last evaluated step (± binomial s.e.), greedy and at T=1
(step 0 from `e4_smollm_cpu.before.json` for arms run with --no-before); the sampler's
entropy and the zero-variance group fraction over the first and last 8 steps (collapse shows as both falling
and rising together); steps whose batch had no group with reward variance; wall time of the run.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from common import RESULTS

ARMS = ["packaged", "dynamic", "kl"]


def _heldout(rows: list[dict[str, Any]], temperature: float) -> str:
    at = sorted((r for r in rows if r["temperature"] == temperature), key=lambda r: r["step"])
    if not at:
        return "—"
    first, last = at[0], at[-1]
    text = f"{first['success']:.3f} ± {first['stderr']:.3f} (step {first['step']})"
    if last is not first:
        text += f" → {last['success']:.3f} ± {last['stderr']:.3f} (step {last['step']})"
    return text


def _mean(values: list[Any]) -> float:
    xs = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return sum(xs) / len(xs) if xs else float("nan")


def row(data: dict[str, Any], before: list[dict[str, Any]]) -> str:
    """One arm's line; `before` (the shared step-0 rows of --only-before) stands in for a --no-before arm's."""
    rows = list(data["heldout"])
    rows += [r for r in before if not any(x["step"] == 0 and x["temperature"] == r["temperature"] for x in rows)]
    m = data["metrics"] or [{"entropy": None, "zero_var_frac": None}]
    first, last = m[:8], m[-8:]
    entropy = f"{_mean([r['entropy'] for r in first]):.2f} → {_mean([r['entropy'] for r in last]):.2f}"
    zero = f"{_mean([r['zero_var_frac'] for r in first]):.2f} → {_mean([r['zero_var_frac'] for r in last]):.2f}"
    dead = sum(1 for r in m if not r.get("trained_episodes"))
    return (
        f"| {data['arm']} | {data['steps']} | {_heldout(rows, 0.0)} | {_heldout(rows, 1.0)} | "
        f"{entropy} | {zero} | {dead} | {data['seconds'] / 60:.0f} min |"
    )


def main() -> None:
    print("| arm | steps | held-out greedy, before → after | held-out T=1, before → after | entropy (first 8 → "
          "last 8 steps) | zero-variance groups (first 8 → last 8) | steps with nothing to train | wall |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    shared = Path(RESULTS) / "e4_smollm_cpu.before.json"
    before = json.loads(shared.read_text())["heldout"] if shared.is_file() else []
    for arm in ARMS:
        path = Path(RESULTS) / f"e4_smollm_cpu.{arm}.json"
        if path.is_file():
            print(row(json.loads(path.read_text()), before))
        else:
            print(f"| {arm} | not run (no {path.name}) | | | | | | |")


if __name__ == "__main__":
    main()
