"""Held-out success: the same task seeds scored before and after training, with a standard error.

Why: a training curve of 16 episodes per step swings by ±0.3 and cannot show learning on its own; the same
fixed seeds (never trained on: they live far from the training seed range) scored with the same policy
settings before and after training can. The standard error is the binomial one, sqrt(p(1−p)/n).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import gymnasium as gym
from pydantic import BaseModel, ConfigDict, Field

from envgym.agents.rollout import RolloutConfig, TaskSpec, rollout

HELDOUT_SEED = 2_000_000_000


class HeldOutConfig(BaseModel):
    """How the trainer scores held-out tasks at the start and the end of a run (episodes 0: off)."""

    model_config = ConfigDict(extra="forbid")  # a misspelt key is an error, not a silent default

    episodes: int = Field(default=0, ge=0, description="held-out tasks (one episode each); 0 turns it off")
    seed: int = Field(default=HELDOUT_SEED, description="first task seed; seeds seed..seed+episodes-1")
    temperatures: list[float] = Field(default_factory=lambda: [0.0], description="0: greedy")


class HeldOutResult(BaseModel):
    step: int
    temperature: float
    episodes: int
    success: float
    stderr: float


@contextmanager
def sampling_temperature(policy: Any, temperature: float) -> Iterator[None]:
    """Temporarily sample at `temperature` (the policy's config is swapped back afterwards)."""
    saved = policy.config
    policy.config = saved.model_copy(update={"temperature": temperature})
    try:
        yield
    finally:
        policy.config = saved


def heldout_success(
    policy: Any,
    envs: Sequence[gym.Env],
    config: HeldOutConfig,
    rollout_config: RolloutConfig,
    difficulty: float | None,
    step: int,
    on_progress: Callable[[int, int], None] | None = None,
) -> list[HeldOutResult]:
    """Success on the held-out seeds at each configured temperature (infra-error episodes excluded), in
    chunks of `len(envs)` episodes (memory stays bounded); `on_progress(done, total)` after each chunk."""
    tasks = [TaskSpec(seed=config.seed + i, difficulty=difficulty, group=i) for i in range(config.episodes)]
    total, done = len(tasks) * len(config.temperatures), 0
    if on_progress is not None:
        on_progress(done, total)
    out = []
    for temperature in config.temperatures:
        wins: list[float] = []
        with sampling_temperature(policy, temperature):
            for start in range(0, len(tasks), len(envs)):
                chunk = tasks[start : start + len(envs)]
                episodes = rollout(policy, envs, chunk, rollout_config)
                wins += [float(ep.success) for ep in episodes if ep.infra_error is None]
                done += len(chunk)
                if on_progress is not None:
                    on_progress(done, total)
        n = len(wins)
        p = sum(wins) / n if n else float("nan")
        out.append(
            HeldOutResult(step=step, temperature=temperature, episodes=n, success=p,
                          stderr=math.sqrt(p * (1 - p) / n) if n else float("nan"))
        )  # fmt: skip
    return out


def read_heldout(run_dir: str | Path) -> list[HeldOutResult]:
    """The held-out rows of a run directory (`heldout.jsonl`, written by the trainer); empty when none."""
    path = Path(run_dir) / "heldout.jsonl"
    if not path.is_file():
        return []
    return [HeldOutResult.model_validate_json(ln) for ln in path.read_text().splitlines() if ln.strip()]
