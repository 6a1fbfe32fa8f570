"""Scripted reference agents that play through the same text interface an LLM uses.

The oracle sends the env's solver move as action text; the random agent sends a uniformly random
well-formed action. Both are the fixed reference agents of the calibration tables.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from envgym.core import TextEnv


class OracleAgent:
    name = "oracle"

    def act(self, env: TextEnv, observation: str, info: dict[str, Any]) -> str:
        return env.oracle_action()


class RandomAgent:
    name = "random"

    def __init__(self, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(seed)

    def act(self, env: TextEnv, observation: str, info: dict[str, Any]) -> str:
        return env.random_action(self.rng)


def make_scripted_agent(kind: str, seed: int | None = None) -> OracleAgent | RandomAgent:
    if kind == "oracle":
        return OracleAgent()
    if kind == "random":
        return RandomAgent(seed)
    raise ValueError(f"unknown scripted agent {kind!r}; choose 'oracle' or 'random'")
