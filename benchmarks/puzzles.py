"""Puzzle throughput on one core: reset + first step (episodes/s) and full oracle episodes (steps/s) per
family, as a ratio against GuessNumber measured in the same run (the cheapest family: the contract's floor).

    python benchmarks/puzzles.py [--seconds 1.0]

Peers (GEM, reasoning-gym) are compared by `benchmarks/puzzles_vs_peers.py`.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import gymnasium as gym

import envgym  # noqa: F401
from envgym.core import TextEnv
from envgym.registry import ENTRIES


def reset_first_step_rate(env: TextEnv, difficulty: float, seconds: float) -> float:
    """Episodes/s of reset + one well-formed step (what a batched rollout pays per new task)."""
    env.reset(seed=0, options={"difficulty": difficulty})  # warm-up: per-size caches (e.g. Mastermind's tree)
    n, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        env.reset(seed=n, options={"difficulty": difficulty})
        env.step(env.oracle_action())
        n += 1
    return n / (time.perf_counter() - started)


def oracle_step_rate(env: TextEnv, difficulty: float, seconds: float) -> float:
    """Steps/s over whole oracle episodes (the oracle's own planning time included)."""
    steps, n, started = 0, 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        env.reset(seed=n, options={"difficulty": difficulty})
        done = False
        while not done:
            _, _, terminated, truncated, _ = env.step(env.oracle_action())
            steps += 1
            done = terminated or truncated
        n += 1
    return steps / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--difficulty", type=float, default=0.5)
    args = parser.parse_args()
    ids = [e.id for e in ENTRIES if e.family == "puzzles" and e.id != "envgym/Puzzle-v0"]
    baseline_env: TextEnv = gym.make("envgym/GuessNumber-v0").unwrapped  # type: ignore[assignment]
    base_reset = reset_first_step_rate(baseline_env, args.difficulty, args.seconds)
    base_steps = oracle_step_rate(baseline_env, args.difficulty, args.seconds)
    print(f"difficulty {args.difficulty}; baseline GuessNumber: {base_reset:,.0f} eps/s, {base_steps:,.0f} steps/s")
    print(f"{'env':28} {'reset+step eps/s':>17} {'x baseline':>10} {'oracle steps/s':>15} {'x baseline':>10}")
    for env_id in ids:
        env: TextEnv = gym.make(env_id).unwrapped  # type: ignore[assignment]
        r = reset_first_step_rate(env, args.difficulty, args.seconds)
        s = oracle_step_rate(env, args.difficulty, args.seconds)
        print(f"{env_id:28} {r:17,.0f} {r / base_reset:10.2f} {s:15,.0f} {s / base_steps:10.2f}")


if __name__ == "__main__":
    main()
