"""Learning-curve helpers: the moving average must not invent values for steps that have none."""

import json
import math

from envgym.agents.plotting import moving_average, plot_run


def test_moving_average_skips_nan_instead_of_counting_zero():
    nan = float("nan")
    out = moving_average([1.0, nan, 3.0, nan, nan, nan], window=2)
    assert out[:4] == [1.0, 1.0, 3.0, 3.0]
    assert math.isnan(out[4]) and math.isnan(out[5])
    assert moving_average([2.0, 4.0, 6.0], window=2) == [2.0, 3.0, 5.0]


def test_plot_run_renders_a_png_with_missing_values(tmp_path):
    rows = [{"step": i + 1, "success": i / 10, "entropy": None if i % 2 else 1.0 - i / 20} for i in range(10)]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    png = plot_run(tmp_path)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
