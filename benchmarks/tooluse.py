"""Throughput of the tool-use envs: resets/s and full oracle episodes/s per family, with the ratio against
`envgym/GuessNumber-v0` (the cheapest env) measured in the same run.

    python benchmarks/tooluse.py [--episodes 50] [--difficulty 0.5]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import gymnasium as gym

import envgym  # noqa: F401

IDS = (
    "envgym/GuessNumber-v0",
    "envgym/ToolUse-SQL-v0",
    "envgym/ToolUse-Lookup-v0",
    "envgym/ToolUse-Compute-v0",
    "envgym/ToolUse-Files-v0",
    "envgym/ToolUse-API-v0",
    "envgym/ToolUse-v0",
)


def measure(env_id: str, episodes: int, difficulty: float) -> tuple[float, float, float, float]:
    """(resets/s, oracle episodes/s, steps/s, mean steps) over `episodes` seeds, after one warm-up episode."""
    env = gym.make(env_id)
    base: Any = env.unwrapped
    env.reset(seed=10_000, options={"difficulty": difficulty})
    started = time.perf_counter()
    for seed in range(episodes):
        env.reset(seed=seed, options={"difficulty": difficulty})
    reset_rate = episodes / (time.perf_counter() - started)
    steps = 0
    started = time.perf_counter()
    for seed in range(episodes):
        env.reset(seed=seed, options={"difficulty": difficulty})
        done = False
        while not done:
            _, _, terminated, truncated, _ = env.step(base.oracle_action())
            steps += 1
            done = terminated or truncated
    elapsed = time.perf_counter() - started
    env.close()
    return reset_rate, episodes / elapsed, steps / elapsed, steps / episodes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--difficulty", type=float, default=0.5)
    args = parser.parse_args()
    print(f"{'env':28s} {'resets/s':>9s} {'episodes/s':>11s} {'steps/s':>9s} {'steps/ep':>9s} {'vs GuessNumber':>15s}")
    baseline = None
    for env_id in IDS:
        resets, episodes, steps, per_episode = measure(env_id, args.episodes, args.difficulty)
        baseline = baseline or episodes
        print(
            f"{env_id:28s} {resets:9.1f} {episodes:11.1f} {steps:9.1f} {per_episode:9.1f} {episodes / baseline:14.4f}x",
            flush=True,
        )


if __name__ == "__main__":
    main()
