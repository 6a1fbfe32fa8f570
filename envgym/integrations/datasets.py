"""envgym tasks as a Hugging Face `datasets.Dataset`: one row per task, (env_id, seed, difficulty, prompt).

Why rows and not episodes: a task is fully named by env id + seed + difficulty (the env regenerates it bit for
bit), so any trainer that schedules work from a dataset can schedule envgym tasks, and a rollout worker
rebuilds each one with `gym.make(row["env_id"]).reset(seed=row["seed"], options={"difficulty": ...})`.
`prompt` is the task's first observation and `tools` its function schemas (JSON), for trainers that render
the first turn themselves.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import gymnasium as gym

from envgym.extras import needs_extra


def task_rows(
    env_id: str,
    tasks: int,
    seed: int = 0,
    difficulty: float | Sequence[float] | None = None,
    env_kwargs: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Rows for seeds seed..seed+tasks-1; a sequence of difficulties is cycled over the rows."""
    import envgym  # noqa: F401  (registers the ids)

    if tasks < 1:
        raise ValueError(f"tasks must be at least 1, got {tasks}")
    levels = list(difficulty) if isinstance(difficulty, Sequence) else [difficulty]
    if not levels:
        raise ValueError("difficulty: give a float, a non-empty sequence of floats, or None")
    env = gym.make(env_id, **(env_kwargs or {}))
    rows = []
    try:
        for i in range(tasks):
            level = levels[i % len(levels)]
            options = {"difficulty": float(level)} if level is not None else {}
            observation, info = env.reset(seed=seed + i, options=options)
            task = dict(info.get("task") or {})
            rows.append({
                "env_id": env_id, "seed": seed + i, "difficulty": float(task.get("difficulty", level or 0.0)),
                "prompt": str(observation), "task_id": str(task.get("id", "")),
                "tools": json.dumps(info.get("tools") or []),
            })  # fmt: skip
    finally:
        env.close()
    return rows


def task_dataset(
    env_id: str,
    tasks: int,
    seed: int = 0,
    difficulty: float | Sequence[float] | None = None,
    env_kwargs: dict[str, Any] | None = None,
) -> Any:
    """`task_rows` as a `datasets.Dataset` (columns env_id, seed, difficulty, prompt, task_id, tools)."""
    with needs_extra("integrations"):
        from datasets import Dataset

    return Dataset.from_list(task_rows(env_id, tasks, seed, difficulty, env_kwargs))
