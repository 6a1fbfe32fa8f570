"""Learning curves of a run directory (`metrics.jsonl`) as one PNG.

Why a fixed panel set: success, return, entropy, zero-variance fraction, in-group std, grad norm, KL and
throughput are the early warnings of NOTES-RL §11.7; seeing them side by side is the point.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from envgym.extras import require

PANELS = [
    ("success", "success rate"),
    ("return", "mean return"),
    ("entropy", "action-token entropy (sampler)"),
    ("zero_var_frac", "zero-variance groups"),
    ("group_std", "in-group reward std"),
    ("grad_norm", "grad norm"),
    ("kl", "KL to reference (k1)"),
    ("tokens_per_s", "sampled tokens / s"),
]


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"no metrics.jsonl in {run_dir}; is it an `envgym train` run directory?")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def read_heldout_rows(run_dir: str | Path) -> list[dict[str, Any]]:
    """Held-out rows (step, temperature, episodes, success, stderr) of a run; empty when it has none."""
    from envgym.agents.heldout import read_heldout

    return [r.model_dump() for r in read_heldout(run_dir)]


def heldout_summary(run_dir: str | Path) -> list[str]:
    """One line per temperature: held-out success at the first and the last evaluated step, with their
    standard errors, e.g. `held-out (64 seeds, greedy): step 0 0.16 ± 0.05 -> step 12 0.55 ± 0.06`."""
    by_temp: dict[float, list[dict[str, Any]]] = {}
    for row in read_heldout_rows(run_dir):
        by_temp.setdefault(float(row["temperature"]), []).append(row)
    lines = []
    for temp, rows in sorted(by_temp.items()):
        label = "greedy" if temp == 0 else f"T={temp:g}"
        parts = [f"step {r['step']} {r['success']:.2f} ± {r['stderr']:.2f}" for r in (rows[0], rows[-1])[: len(rows)]]
        lines.append(f"held-out ({rows[-1]['episodes']} seeds, {label}): " + " -> ".join(parts))
    return lines


def moving_average(values: list[float], window: int) -> list[float]:
    """Trailing mean over the last `window` values, skipping NaN (a step with nothing trained has no entropy;
    counting it as 0 would draw a false dip); NaN where the whole window is NaN."""
    out = []
    for i in range(len(values)):
        finite = [v for v in values[max(0, i - window + 1) : i + 1] if v == v]
        out.append(sum(finite) / len(finite) if finite else float("nan"))
    return out


def plot_run(run_dir: str | Path, out: str | Path | None = None, smooth: int | None = None) -> Path:
    """Render the run's curves to `out` (default RUN_DIR/curves.png); returns the path."""
    require("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_metrics(run_dir)
    steps = [r["step"] for r in rows]
    window = smooth or max(1, len(rows) // 20)
    panels = [(k, t) for k, t in PANELS if any(isinstance(r.get(k), int | float) for r in rows)]
    heldout = read_heldout_rows(run_dir)
    cols = 4
    nrows = (len(panels) + bool(heldout) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(4 * cols, 3 * nrows), squeeze=False)
    if heldout:  # first panel: held-out success with ± 1 standard error, the evidence of learning
        ax = axes.flat[0]
        for temp in sorted({float(r["temperature"]) for r in heldout}):
            pts = [r for r in heldout if float(r["temperature"]) == temp]
            ax.errorbar([r["step"] for r in pts], [r["success"] for r in pts], yerr=[r["stderr"] for r in pts],
                        marker="o", capsize=4, label="greedy" if temp == 0 else f"T={temp:g}")  # fmt: skip
        ax.set_title(f"held-out success ({heldout[-1]['episodes']} seeds, ±1 s.e.)")
        ax.set_xlabel("step")
        ax.set_ylim(0, 1)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    for ax, (key, title) in zip(list(axes.flat)[bool(heldout) :], panels, strict=False):
        ys = [float(r[key]) if isinstance(r.get(key), int | float) else float("nan") for r in rows]
        ax.plot(steps, ys, alpha=0.35, lw=1, marker=".", ms=3)  # markers: isolated points between NaNs show
        if window > 1:
            ax.plot(steps, moving_average(ys, window), lw=2)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels) + bool(heldout) :]:
        ax.axis("off")
    fig.suptitle(str(run_dir))
    fig.tight_layout()
    target = Path(out) if out else Path(run_dir) / "curves.png"
    fig.savefig(target, dpi=90)
    plt.close(fig)
    return target
