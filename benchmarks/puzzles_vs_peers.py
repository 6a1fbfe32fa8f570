"""envgym puzzles vs GEM and reasoning-gym on the same machine, in the same run: reset + first step per
second for each family both ship, printed as envgym / peer ratios.

Peers are installed in a separate venv so their pins never touch ours:

    python3 -m venv .peers && .peers/bin/pip install gem-llm reasoning-gym==0.1.23
    .venv/bin/python benchmarks/puzzles_vs_peers.py --peers-python .peers/bin/python

Each peer measurement runs in its own subprocess with a time limit (a peer generator that loops forever is
reported as such instead of hanging the benchmark). GEM's envs are multi-turn like ours (reset + one step);
reasoning-gym's are single-turn datasets (generate one item + score one answer).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import gymnasium as gym

import envgym  # noqa: F401

# envgym id -> (GEM id, reasoning-gym dataset name); None where the peer lacks the family.
PAIRS: dict[str, tuple[str | None, str | None]] = {
    "envgym/Sokoban-v0": ("game:Sokoban-v0-easy", "sokoban"),
    "envgym/Sudoku-v0": ("game:Sudoku-v0-easy", "sudoku"),
    "envgym/Mastermind-v0": ("game:Mastermind-v0-easy", None),
    "envgym/Minesweeper-v0": ("game:Minesweeper-v0-easy", None),
    "envgym/Hanoi-v0": ("game:TowerofHanoi-v0-easy", "tower_of_hanoi"),
    "envgym/Sliding-v0": ("game:FifteenPuzzle-v0-easy", None),
    "envgym/Maze-v0": (None, "maze"),
    "envgym/GuessNumber-v0": ("game:GuessTheNumber-v0-easy", None),
    "envgym/NQueens-v0": (None, "n_queens"),
}

GEM_SNIPPET = """
import time, json, gem
env = gem.make({name!r})
env.reset(seed=0)
n, t = 0, time.perf_counter()
while time.perf_counter() - t < {seconds}:
    env.reset(seed=n); env.step("\\\\boxed{{1}}"); n += 1
print(json.dumps(n / (time.perf_counter() - t)))
"""

RG_SNIPPET = """
import time, json, reasoning_gym as rg
n, t = 0, time.perf_counter()
ds = rg.create_dataset({name!r}, size=100000, seed=1)
while time.perf_counter() - t < {seconds}:
    item = ds[n]; ds.score_answer("1", item); n += 1
print(json.dumps(n / (time.perf_counter() - t)))
"""


def peer_rate(python: str, snippet: str, seconds: float, limit: float) -> float | str:
    try:
        done = subprocess.run(
            [python, "-c", snippet],
            capture_output=True,
            text=True,
            timeout=limit,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
    except subprocess.TimeoutExpired:
        return f"no result in {limit:.0f}s"
    if done.returncode != 0:
        return "error: " + (done.stderr.strip().splitlines() or ["?"])[-1][:60]
    return float(json.loads(done.stdout.strip().splitlines()[-1]))


def our_rate(env_id: str, difficulty: float, seconds: float) -> float:
    env = gym.make(env_id).unwrapped
    env.reset(seed=0, options={"difficulty": difficulty})
    n, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        env.reset(seed=n, options={"difficulty": difficulty})
        env.step(env.oracle_action())  # type: ignore[attr-defined]
        n += 1
    return n / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--peers-python", default=".peers/bin/python")
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--difficulty", type=float, default=0.0, help="ours at this difficulty vs peers' easy presets")
    args = parser.parse_args()
    print(f"{'family':24} {'envgym eps/s':>13} {'GEM eps/s':>14} {'x GEM':>7} {'rgym eps/s':>16} {'x rgym':>7}")
    for env_id, (gem_name, rg_name) in PAIRS.items():
        ours = our_rate(env_id, args.difficulty, args.seconds)
        cells = []
        for name, snippet in ((gem_name, GEM_SNIPPET), (rg_name, RG_SNIPPET)):
            if name is None:
                cells.append(("-", "-"))
                continue
            rate = peer_rate(
                args.peers_python, snippet.format(name=name, seconds=args.seconds), args.seconds, 60 + 10 * args.seconds
            )
            cells.append((f"{rate:,.1f}", f"{ours / rate:.1f}") if isinstance(rate, float) else (rate, "-"))
        print(
            f"{env_id:24} {ours:13,.0f} {cells[0][0]:>14} {cells[0][1]:>7} {cells[1][0]:>16} {cells[1][1]:>7}",
            flush=True,
        )


if __name__ == "__main__":
    main()
