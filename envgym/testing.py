"""Episode helpers for tests of env families (ours and users'): play one episode with the oracle or the random
reference agent, and check that the oracle recovers from random moves.

Why in the package: every family's test file needs exactly these loops, and an env author outside this repo
needs them too.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def play(
    env: Any, seed: int, difficulty: float, agent: str, rng: np.random.Generator | None = None
) -> tuple[bool, list[str]]:
    """One episode with the oracle or the random agent; returns (solved, observations)."""
    obs, _ = env.reset(seed=seed, options={"difficulty": difficulty})
    observations = [obs]
    rng = rng if rng is not None else np.random.default_rng(seed)
    while True:
        action = env.oracle_action() if agent == "oracle" else env.random_action(rng)
        obs, reward, terminated, truncated, info = env.step(action)
        observations.append(obs)
        if terminated or truncated:
            return bool(info["solved"]) and reward == 1.0, observations


def recovers(env: Any, seed: int, difficulty: float, random_moves: int) -> bool:
    """The oracle still solves after random moves were played (turn budget lifted for the check)."""
    env.max_turns_override = 10_000
    try:
        env.reset(seed=seed, options={"difficulty": difficulty})
        rng = np.random.default_rng(seed)
        for _ in range(random_moves):
            _, _, terminated, truncated, _ = env.step(env.random_action(rng))
            if terminated or truncated:
                return True  # solved by luck, or lost for good (a mine): nothing to recover
        for _ in range(2000):
            _, reward, terminated, truncated, _ = env.step(env.oracle_action())
            if terminated or truncated:
                return bool(reward == 1.0)
        return False
    finally:
        env.max_turns_override = None
