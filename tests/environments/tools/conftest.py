"""Shared helpers for the tool-use tests."""

from __future__ import annotations

import json

import gymnasium as gym

import envgym  # noqa: F401

TOOL_IDS = [
    "envgym/ToolUse-v0",
    "envgym/ToolUse-SQL-v0",
    "envgym/ToolUse-Lookup-v0",
    "envgym/ToolUse-Compute-v0",
    "envgym/ToolUse-Files-v0",
    "envgym/ToolUse-API-v0",
]
SANDBOXED = {"envgym/ToolUse-v0", "envgym/ToolUse-Compute-v0", "envgym/ToolUse-Files-v0"}


def call(name: str, **arguments: object) -> str:
    return json.dumps({"name": name, "arguments": arguments})


def play_oracle(env: gym.Env, seed: int, difficulty: float, max_steps: int = 60) -> tuple[float, int]:
    """Reset and let the oracle play; returns (final reward, turns)."""
    env.reset(seed=seed, options={"difficulty": difficulty})
    for turn in range(1, max_steps + 1):
        _, reward, terminated, truncated, _ = env.step(env.unwrapped.oracle_action())
        if terminated or truncated:
            return float(reward), turn
    return 0.0, max_steps
