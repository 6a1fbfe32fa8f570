"""`envgym list`: whole ids on an 80-column terminal, and a JSON form for scripts."""

import json
import os
import subprocess
import sys

from envgym.registry import ENTRIES


def envgym_list(*args: str, columns: int = 80) -> str:
    env = {**os.environ, "COLUMNS": str(columns)}
    return subprocess.run(
        [sys.executable, "-m", "envgym.cli", "list", *args], capture_output=True, text=True, check=True, env=env
    ).stdout


def test_every_id_is_whole_at_80_columns() -> None:
    out = envgym_list()
    assert all(len(line) <= 80 for line in out.splitlines())
    for entry in ENTRIES:
        assert any(line.split()[:1] == [entry.id] for line in out.splitlines()), entry.id
    assert "envgym list --json" in out  # the knobs that did not fit are one command away


def test_json_lists_every_env_with_its_knobs() -> None:
    rows = json.loads(envgym_list("--json"))
    assert [r["id"] for r in rows] == [e.id for e in ENTRIES]
    sudoku = next(r for r in rows if r["id"] == "envgym/Sudoku-v0")
    assert sudoku["available"] and sudoku["knobs"] and sudoku["family"] == "puzzles"
