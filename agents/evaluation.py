"""Success rates of any policy on any env: scripted (oracle, random), local HF models, OpenAI endpoints.

Why one function: `envgym eval`, the experiments and the README compare policies on the same task seeds,
recorded as trajectories, so the numbers are comparable and replayable.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
from pydantic import BaseModel

from envgym.trajectory import Episode, TrajectoryWriter


class EvalResult(BaseModel):
    env_id: str
    policy: str
    difficulty: float | None
    episodes: int
    success_rate: float
    mean_return: float
    mean_turns: float
    infra_errors: int


def summarise(env_id: str, policy: str, difficulty: float | None, records: list[Episode]) -> EvalResult:
    done = [r for r in records if r.outcome is not None]
    valid = [r for r in done if r.outcome is not None and r.outcome.infra_error is None]
    n = max(len(valid), 1)
    return EvalResult(
        env_id=env_id,
        policy=policy,
        difficulty=difficulty,
        episodes=len(done),
        success_rate=sum(bool(r.outcome and r.outcome.success) for r in valid) / n,
        mean_return=sum(r.outcome.return_ for r in valid if r.outcome) / n,
        mean_turns=sum(r.outcome.num_turns for r in valid if r.outcome) / n,
        infra_errors=len(done) - len(valid),
    )


def evaluate(
    env_factory: Callable[[], gym.Env],
    policy: Any,
    episodes: int = 32,
    difficulty: float | None = None,
    seed: int = 0,
    batch_size: int = 16,
    out: str | Path | None = None,
    max_turns: int | None = None,
    hide_feedback: bool = False,
    on_done: Callable[[int], None] | None = None,
) -> EvalResult:
    """Run `episodes` tasks (seeds seed..seed+episodes-1) and summarise; records to OUT/trajectories.jsonl.
    `on_done(n)` is called as each batch (or scripted episode) of n episodes finishes (a progress bar)."""
    done = on_done or (lambda n: None)
    from envgym.agents.rollout import RolloutConfig, TaskSpec, rollout, rollout_text
    from envgym.runner import run_episode

    writer = TrajectoryWriter(Path(out) / "trajectories.jsonl") if out else None
    options = {"difficulty": difficulty} if difficulty is not None else {}
    records: list[Episode] = []
    try:
        if _is_batched(policy):
            cfg = RolloutConfig(max_turns=max_turns, hide_feedback=hide_feedback)
            envs = [env_factory() for _ in range(min(batch_size, episodes))]
            for start in range(0, episodes, len(envs)):
                stop = min(episodes, start + len(envs))
                tasks = [TaskSpec(seed=seed + i, difficulty=difficulty) for i in range(start, stop)]
                if hasattr(policy, "sample"):
                    eps = rollout(policy, envs, tasks, cfg, writer)
                    records += [e.record for e in eps if e.record is not None]
                else:
                    records += rollout_text(policy, envs, tasks, cfg, writer)
                done(len(tasks))
        else:  # scripted step agents see the env itself
            env = env_factory()
            for i in range(episodes):
                record = run_episode(env, policy, seed=seed + i, options=options)
                if writer is not None:
                    writer.write(record)
                records.append(record)
                done(1)
    finally:
        if writer is not None:
            writer.close()
    env_id = records[0].env_id if records else "?"
    return summarise(env_id, str(getattr(policy, "name", type(policy).__name__)), difficulty, records)


def _is_batched(policy: Any) -> bool:
    """Batched policies take lists of conversations; scripted agents take (env, observation, info)."""
    import inspect

    params = list(inspect.signature(policy.act).parameters)
    return bool(params) and params[0] == "conversations"


class FeedbackProbe(BaseModel):
    """Success on the same seeds with the env's feedback in context and with it replaced by a constant."""

    with_feedback: float
    hidden_feedback: float
    episodes: int

    @property
    def uses_feedback(self) -> bool:
        return self.with_feedback > self.hidden_feedback


def feedback_probe(
    env_factory: Callable[[], gym.Env],
    policy: Any,
    episodes: int = 64,
    difficulty: float | None = None,
    seed: int = 0,
    max_turns: int | None = None,
) -> FeedbackProbe:
    """Does this policy do better when it can read the feedback? Run before turning on any feedback-based
    learning signal (e.g. self-distillation): without a gap there is no teacher signal to distil."""
    kw: dict[str, Any] = {"episodes": episodes, "difficulty": difficulty, "seed": seed, "max_turns": max_turns}
    seen = evaluate(env_factory, policy, **kw)
    hidden = evaluate(env_factory, policy, hide_feedback=True, **kw)
    return FeedbackProbe(with_feedback=seen.success_rate, hidden_feedback=hidden.success_rate, episodes=episodes)
