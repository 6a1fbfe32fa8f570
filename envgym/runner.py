"""Run one episode of any env with any per-step agent and record it as an `Episode`.

Why here and not in the CLI: `envgym run`, `envgym eval`, calibration and tests all need exactly the same
loop and the same record, so replay can trust what it reads. The record is built only through the
constructors in `envgym.trajectory`, so a reset-time infra error ends the episode as infra before any step.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

import gymnasium as gym

from envgym.core import TextEnv
from envgym.trajectory import Episode, Turn


class StepAgent(Protocol):
    """Anything that picks the next action text from the env and the last observation."""

    name: str

    def act(self, env: TextEnv, observation: str, info: dict[str, Any]) -> str: ...


def run_episode(
    env: gym.Env,
    agent: StepAgent,
    seed: int | None = None,
    options: dict[str, Any] | None = None,
    env_kwargs: dict[str, Any] | None = None,
    max_steps: int = 10_000,
) -> Episode:
    """Reset `env`, let `agent` act until the episode ends, and return the full record."""
    base: TextEnv = env.unwrapped  # type: ignore[assignment]
    observation, info = env.reset(seed=seed, options=options)
    episode = Episode.start(
        env, observation, info, policy=agent.name, seed=seed, options=options, env_kwargs=env_kwargs
    )
    if episode.done:  # the env could not even start the task: infra, not a failure
        return episode
    for index in range(max_steps):
        action = agent.act(base, observation, info)
        started = time.perf_counter()
        step = env.step(action)
        observation, _, terminated, truncated, info = step
        episode.turns.append(Turn.from_step(index, action, step, duration_s=time.perf_counter() - started))
        if terminated or truncated or info.get("infra_error"):
            break
    return episode.finish(success=bool(info.get("solved", False)))
