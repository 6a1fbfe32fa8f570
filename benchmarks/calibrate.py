"""Calibration tables: for each env of a family group and difficulty 0, .25, .5, .75, 1, the mean optimal
solution length (oracle turns) and the solve rate of the fixed random reference agent.

Why a script: "harder must be harder" is a measured claim. Anyone reruns it and gets the same numbers
(seeded), and `--write` refreshes the table in the docs between the CALIBRATION markers.

    python benchmarks/calibrate.py --group puzzles --episodes 100 --write docs/puzzles.md
"""

from __future__ import annotations

import argparse
import re
import statistics
import time
from pathlib import Path

import gymnasium as gym

import envgym  # noqa: F401
from envgym.agents.policies.scripted import OracleAgent, RandomAgent
from envgym.registry import ENTRIES
from envgym.runner import run_episode

LEVELS = (0.0, 0.25, 0.5, 0.75, 1.0)
BEGIN, END = "<!-- CALIBRATION:BEGIN -->", "<!-- CALIBRATION:END -->"


def calibrate(env_id: str, episodes: int) -> list[tuple[float, float, float, float]]:
    """Rows of (difficulty, mean oracle turns, oracle solve rate, random solve rate)."""
    env = gym.make(env_id)
    rows = []
    for level in LEVELS:
        options = {"difficulty": level}
        oracle = [run_episode(env, OracleAgent(), seed=s, options=options) for s in range(episodes)]
        random_agent = RandomAgent(seed=12345)
        rand = [run_episode(env, random_agent, seed=s, options=options) for s in range(episodes)]
        assert all(e.outcome is not None for e in oracle + rand)
        rows.append(
            (
                level,
                statistics.mean(e.outcome.num_turns for e in oracle if e.outcome),
                statistics.mean(float(e.outcome.success) for e in oracle if e.outcome),
                statistics.mean(float(e.outcome.success) for e in rand if e.outcome),
            )
        )
    env.close()
    return rows


def render(tables: dict[str, list[tuple[float, float, float, float]]], episodes: int) -> str:
    lines = [
        f"Measured by `python benchmarks/calibrate.py` ({episodes} seeded episodes per cell; seeds 0..{episodes - 1}).",
        "",
        "| env | difficulty | mean optimal length (oracle turns) | oracle solve rate | random-agent solve rate |",
        "|---|---|---|---|---|",
    ]
    for env_id, rows in tables.items():
        for level, length, oracle, rand in rows:
            lines.append(f"| {env_id} | {level:g} | {length:.1f} | {oracle:.0%} | {rand:.1%} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--group", default="puzzles", help="registry family group: puzzles or tools")
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--only", nargs="*", help="env ids to calibrate (default: the whole group)")
    parser.add_argument("--write", type=Path, help="markdown file whose CALIBRATION block is replaced")
    args = parser.parse_args()
    ids = args.only or [
        e.id for e in ENTRIES if e.family == args.group and not e.id.endswith(("/Puzzle-v0", "/ToolUse-v0"))
    ]
    tables = {}
    for env_id in ids:
        started = time.perf_counter()
        tables[env_id] = calibrate(env_id, args.episodes)
        print(f"{env_id}: {time.perf_counter() - started:.1f}s", flush=True)
    table = render(tables, args.episodes)
    print(table)
    if args.write:
        text = args.write.read_text() if args.write.exists() else f"{BEGIN}\n{END}\n"
        block = f"{BEGIN}\n{table}\n{END}"
        args.write.write_text(re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S))


if __name__ == "__main__":
    main()
