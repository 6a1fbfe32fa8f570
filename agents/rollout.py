"""Batched multi-turn rollouts, token-in/token-out, every episode recorded as a trajectory.

Why token-level bookkeeping: each episode is one token sequence (prompt, then per turn the sampled action ids
followed by the observation ids), built by appending, never by re-rendering. What the model conditioned on at
turn k is therefore exactly a prefix of the sequence the trainer scores, and the action mask marks precisely
the sampled tokens.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import gymnasium as gym
from pydantic import BaseModel, Field

from envgym.agents.policies.base import Message, Policy, TokenPolicy
from envgym.trajectory import CommandRecord, Episode, Outcome, Turn


class EpisodeSink(Protocol):
    """Where finished episodes go: a `TrajectoryWriter` or a `BackgroundTrajectoryWriter`."""

    def write(self, episode: Episode) -> None: ...


class RolloutConfig(BaseModel):
    """Episode limits and observation handling for a rollout."""

    max_turns: int | None = Field(default=None, ge=1, description="cap on turns (None: the env's own budget)")
    max_context_tokens: int = Field(default=4096, ge=8, description="stop an episode (truncated) beyond this")
    hide_feedback: bool = Field(default=False, description="control: replace every observation after an action")
    hidden_text: str = "?"


@dataclass
class TaskSpec:
    """One task: episodes with the same `group` share seed and options (the baseline of full-episode credit)."""

    seed: int
    difficulty: float | None = None
    group: int = 0
    options: dict[str, Any] = field(default_factory=dict)

    def reset_options(self) -> dict[str, Any]:
        opts = dict(self.options)
        if self.difficulty is not None:
            opts["difficulty"] = self.difficulty
        return opts


@dataclass
class TokenTurn:
    action_ids: list[int]
    action_logprobs: list[float]
    obs_ids: list[int]
    reward: float
    stopped: bool


@dataclass
class TokenEpisode:
    """One episode as token ids, with its outcome and the recorded trajectory."""

    task: TaskSpec
    prompt_ids: list[int]
    turns: list[TokenTurn] = field(default_factory=list)
    return_: float = 0.0
    success: bool = False
    truncated: bool = False
    infra_error: str | None = None
    record: Episode | None = None

    def flatten(self) -> tuple[list[int], list[bool], list[int]]:
        """(ids, action_mask, turn_index): the mask is True on sampled action tokens at their own positions;
        turn_index gives each token's turn (-1 on the prompt)."""
        ids, mask, turn_index = list(self.prompt_ids), [False] * len(self.prompt_ids), [-1] * len(self.prompt_ids)
        for k, turn in enumerate(self.turns):
            ids += turn.action_ids + turn.obs_ids
            mask += [True] * len(turn.action_ids) + [False] * len(turn.obs_ids)
            turn_index += [k] * (len(turn.action_ids) + len(turn.obs_ids))
        return ids, mask, turn_index

    @property
    def action_tokens(self) -> int:
        return sum(len(t.action_ids) for t in self.turns)

    @property
    def difficulty(self) -> float | None:
        return self.task.difficulty


def _env_names(env: gym.Env) -> tuple[str, str]:
    base = env.unwrapped
    return str(getattr(base, "env_id", env.spec.id if env.spec else type(base).__name__)), str(
        getattr(base, "version", "0")
    )


def rollout(
    policy: TokenPolicy,
    envs: Sequence[gym.Env],
    tasks: Sequence[TaskSpec],
    config: RolloutConfig | None = None,
    writer: EpisodeSink | None = None,
) -> list[TokenEpisode]:
    """Run `tasks[i]` on `envs[i]` until every episode ends; sample all live episodes in one batch per turn."""
    cfg = config or RolloutConfig()
    if len(envs) < len(tasks):
        raise ValueError(f"need one env per task: {len(envs)} envs for {len(tasks)} tasks")
    episodes: list[TokenEpisode] = []
    contexts: list[list[int]] = []
    records: list[Episode] = []
    live: list[int] = []
    for i, task in enumerate(tasks):
        env = envs[i]
        env_id, version = _env_names(env)
        options = task.reset_options()
        record = Episode(
            env_id=env_id, env_version=version, task={}, seed=task.seed, difficulty=task.difficulty,
            options=options, policy=policy.name, initial_observation="",
        )  # fmt: skip
        try:
            obs, info = env.reset(seed=task.seed, options=options)
        except Exception as exc:  # an env that cannot even start is an infra failure, not a zero
            record.outcome = Outcome(return_=0.0, success=False, terminated=False, truncated=False,
                                     infra_error=f"reset failed: {exc!r}", num_turns=0)  # type: ignore[call-arg]  # fmt: skip
            episodes.append(TokenEpisode(task=task, prompt_ids=[], infra_error=f"reset failed: {exc!r}"))
            records.append(record)
            contexts.append([])
            continue
        record.task = dict(info.get("task", {}))
        record.sandbox = info.get("sandbox")
        record.initial_observation = obs
        if record.task.get("difficulty") is not None:
            record.difficulty = float(record.task["difficulty"])
        messages = policy.initial_messages(obs) if hasattr(policy, "initial_messages") else [
            {"role": "user", "content": obs}
        ]  # fmt: skip
        prompt = policy.encode_prompt(messages, info.get("tools"))
        episodes.append(TokenEpisode(task=task, prompt_ids=prompt))
        records.append(record)
        contexts.append(list(prompt))
        live.append(i)

    while live:
        samples = policy.sample([contexts[i] for i in live])
        still: list[int] = []
        for i, sample in zip(live, samples, strict=True):
            ep, record = episodes[i], records[i]
            started = time.perf_counter()
            try:
                obs, reward, terminated, truncated, info = envs[i].step(sample.text)
            except Exception as exc:  # the env or its sandbox broke: drop the episode from training
                ep.infra_error = f"step raised {exc!r}"
                ep.turns.append(TokenTurn(sample.token_ids, sample.logprobs, [], 0.0, sample.stopped))
                continue
            ep.return_ += float(reward)
            ep.success = bool(info.get("solved", False))
            if info.get("infra_error"):
                ep.infra_error = str(info["infra_error"])
            shown = cfg.hidden_text if cfg.hide_feedback else obs
            done = terminated or truncated or ep.infra_error is not None
            obs_ids: list[int] = []
            if not done:
                obs_ids = policy.encode_observation(shown, sample.stopped)
                too_long = len(contexts[i]) + len(sample.token_ids) + len(obs_ids) > cfg.max_context_tokens
                if too_long or (cfg.max_turns is not None and len(ep.turns) + 1 >= cfg.max_turns):
                    truncated, done, obs_ids = True, True, []
            ep.truncated = bool(truncated and not terminated)
            ep.turns.append(TokenTurn(sample.token_ids, sample.logprobs, obs_ids, float(reward), sample.stopped))
            record.turns.append(
                Turn(
                    index=len(record.turns), action=sample.text, tool_call=info.get("tool_call"), observation=shown,
                    reward=float(reward), terminated=bool(terminated), truncated=ep.truncated,
                    feedback=info.get("feedback", {}), reward_components=info.get("reward_components", {}),
                    commands=[CommandRecord.model_validate(c) for c in info.get("commands", [])],
                    duration_s=time.perf_counter() - started,
                    extra={"action_tokens": len(sample.token_ids), "obs_tokens": len(obs_ids),
                           "logprob_sum": float(sum(sample.logprobs)), "stopped": sample.stopped},
                )
            )  # fmt: skip
            if done:
                continue
            contexts[i] += sample.token_ids + obs_ids
            still.append(i)
        live = still

    for ep, record in zip(episodes, records, strict=True):
        if record.outcome is None:
            record.outcome = Outcome(  # type: ignore[call-arg]
                return_=ep.return_, success=ep.success, terminated=not ep.truncated and ep.infra_error is None,
                truncated=ep.truncated, infra_error=ep.infra_error, num_turns=len(ep.turns),
            )  # fmt: skip
        record.finished_at = datetime.now(UTC).isoformat()
        ep.record = record
        if writer is not None:
            writer.write(record)
    return episodes


def rollout_text(
    policy: Policy,
    envs: Sequence[gym.Env],
    tasks: Sequence[TaskSpec],
    config: RolloutConfig | None = None,
    writer: EpisodeSink | None = None,
) -> list[Episode]:
    """Message-level rollout for policies without token access (e.g. `OpenAIPolicy`); evaluation only."""
    cfg = config or RolloutConfig()
    records: list[Episode] = []
    chats: list[list[Message]] = []
    tools: list[list[dict[str, Any]]] = []
    returns: list[float] = []
    live: list[int] = []
    for i, task in enumerate(tasks):
        env_id, version = _env_names(envs[i])
        options = task.reset_options()
        obs, info = envs[i].reset(seed=task.seed, options=options)
        task_info = dict(info.get("task", {}))
        records.append(
            Episode(env_id=env_id, env_version=version, task=task_info, seed=task.seed,
                    difficulty=task_info.get("difficulty", task.difficulty), options=options, policy=policy.name,
                    initial_observation=obs, sandbox=info.get("sandbox"))
        )  # fmt: skip
        make = getattr(policy, "initial_messages", None)
        chats.append(list(make(obs)) if make else [{"role": "user", "content": obs}])
        tools.append(list(info.get("tools", [])))
        returns.append(0.0)
        live.append(i)
    success = [False] * len(tasks)
    infra: list[str | None] = [None] * len(tasks)
    while live:
        actions = policy.act([chats[i] for i in live], [tools[i] for i in live])
        still = []
        for i, action in zip(live, actions, strict=True):
            started = time.perf_counter()
            obs, reward, terminated, truncated, info = envs[i].step(action.text)
            returns[i] += float(reward)
            success[i] = bool(info.get("solved", False))
            infra[i] = info.get("infra_error") or infra[i]
            capped = cfg.max_turns is not None and len(records[i].turns) + 1 >= cfg.max_turns
            truncated = bool(truncated or (capped and not terminated))
            shown = cfg.hidden_text if cfg.hide_feedback else obs
            records[i].turns.append(
                Turn(index=len(records[i].turns), action=action.text, tool_call=info.get("tool_call"),
                     observation=shown, reward=float(reward), terminated=bool(terminated), truncated=truncated,
                     feedback=info.get("feedback", {}), reward_components=info.get("reward_components", {}),
                     commands=[CommandRecord.model_validate(c) for c in info.get("commands", [])],
                     duration_s=time.perf_counter() - started, extra=dict(action.extra))
            )  # fmt: skip
            if terminated or truncated or infra[i]:
                records[i].outcome = Outcome(  # type: ignore[call-arg]
                    return_=returns[i], success=success[i], terminated=bool(terminated), truncated=truncated,
                    infra_error=infra[i], num_turns=len(records[i].turns),
                )  # fmt: skip
                records[i].finished_at = datetime.now(UTC).isoformat()
                if writer is not None:
                    writer.write(records[i])
                continue
            chats[i] += [{"role": "assistant", "content": action.text}, {"role": "user", "content": shown}]
            still.append(i)
        live = still
    return records
