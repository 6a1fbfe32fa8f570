"""Run one episode of any env with any per-step agent and record it as an `Episode`.

Why here and not in the CLI: `envgym run`, `envgym eval`, calibration and tests all need exactly the same
loop and the same record, so replay can trust what it reads.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any, Protocol

import gymnasium as gym

from envgym.core import TextEnv
from envgym.trajectory import CommandRecord, Episode, Outcome, Turn


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
    task = info.get("task", {})
    env_id, _, version = str(task.get("env", f"{base.env_id}@{base.version}")).partition("@")
    episode = Episode(
        env_id=env_id,
        env_version=version,
        task=task,
        seed=task.get("seed", seed),
        difficulty=task.get("difficulty"),
        options=dict(options or {}),
        env_kwargs=dict(env_kwargs or {}),
        sandbox=info.get("sandbox"),
        policy=agent.name,
        initial_observation=observation,
    )
    total, terminated, truncated, infra_error, solved = 0.0, False, False, None, False
    for index in range(max_steps):
        action = agent.act(base, observation, info)
        started = time.perf_counter()
        observation, reward, terminated, truncated, info = env.step(action)
        total += float(reward)
        infra_error = info.get("infra_error") or infra_error
        solved = bool(info.get("solved", False))
        episode.turns.append(
            Turn(
                index=index,
                action=action,
                tool_call=info.get("tool_call") or None,
                observation=observation,
                reward=float(reward),
                terminated=terminated,
                truncated=truncated,
                feedback=info.get("feedback", {}),
                reward_components=info.get("reward_components", {}),
                commands=[CommandRecord.model_validate(c) for c in info.get("commands", [])],
                duration_s=time.perf_counter() - started,
            )
        )
        if terminated or truncated:
            break
    episode.outcome = Outcome(  # type: ignore[call-arg]
        return_=total,
        success=solved,
        terminated=terminated,
        truncated=truncated,
        infra_error=infra_error,
        num_turns=len(episode.turns),
    )
    episode.finished_at = datetime.now(UTC).isoformat()
    return episode
