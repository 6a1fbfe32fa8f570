"""Batched multi-turn rollouts, token-in/token-out, every episode recorded as a trajectory.

Why token-level bookkeeping: each episode is one token sequence (prompt, then per turn the sampled action ids
followed by the observation ids), built by appending, never by re-rendering. What the model conditioned on at
turn k is therefore exactly a prefix of the sequence the trainer scores, and the action mask marks precisely
the sampled tokens.

Why envs step concurrently: sandbox envs spend a turn waiting on commands; stepping a batch in turn would leave
the model idle for the sum of those waits instead of the longest. Why a policy `session`: within one rollout
the weights are fixed, so a policy may keep its KV cache from one turn to the next.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Protocol

import gymnasium as gym
from pydantic import BaseModel, ConfigDict, Field

from envgym.agents.policies.base import TokenPolicy
from envgym.trajectory import Episode, Outcome, Turn


class EpisodeSink(Protocol):
    """Where finished episodes go: a `TrajectoryWriter` or a `BackgroundTrajectoryWriter`."""

    def write(self, episode: Episode) -> None: ...


class RolloutConfig(BaseModel):
    """Episode limits and observation handling for a rollout."""

    model_config = ConfigDict(extra="forbid")  # a misspelt key is an error, not a silent default

    max_turns: int | None = Field(default=None, ge=1, description="cap on turns (None: the env's own budget)")
    max_context_tokens: int = Field(default=4096, ge=8, description="stop an episode (truncated) beyond this")
    hide_feedback: bool = Field(default=False, description="control: replace every observation after an action")
    hidden_text: str = "?"
    parallel_steps: bool = Field(default=True, description="step a turn's envs concurrently (a thread per env)")
    parallel_min_step_s: float = Field(
        default=1e-3, ge=0.0, description="go parallel once a step takes this long (a thread hop costs more)"
    )


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
    """One episode as token ids; its outcome (return, success, truncation, infra error) lives in the
    trajectory record (`record.outcome`, set when the rollout finishes) and is read through properties, so
    the two can never disagree."""

    task: TaskSpec
    prompt_ids: list[int]
    record: Episode
    turns: list[TokenTurn] = field(default_factory=list)

    @property
    def outcome(self) -> Outcome:
        if self.record.outcome is None:
            raise RuntimeError("the episode's outcome is read before its rollout finished")
        return self.record.outcome

    @property
    def return_(self) -> float:
        return self.outcome.return_

    @property
    def success(self) -> bool:
        return self.outcome.success

    @property
    def truncated(self) -> bool:
        return self.outcome.truncated

    @property
    def infra_error(self) -> str | None:
        return self.outcome.infra_error

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


StepResult = tuple[str, float, bool, bool, dict[str, Any]]


def _timed_step(env: gym.Env, action: str) -> tuple[StepResult | Exception, float]:
    """env.step(action) and its duration; an exception is returned (an infra failure), never raised."""
    started = time.perf_counter()
    try:
        result: StepResult | Exception = env.step(action)  # type: ignore[assignment]
    except Exception as exc:  # the env or its sandbox broke: the episode is dropped from training
        result = exc
    return result, time.perf_counter() - started


class _EnvStepper:
    """Steps a turn's envs: in turn while steps are fast, on a thread pool (one thread per env, created on first
    need, owned and shut down here) once a step is seen to take `min_step_s` or more — a thread hop costs more
    than a toy env's step, while sandbox envs spend their steps waiting on commands."""

    def __init__(self, envs: Sequence[gym.Env], enabled: bool, min_step_s: float) -> None:
        self.envs, self.enabled, self.min_step_s = envs, enabled, min_step_s
        self.pool: ThreadPoolExecutor | None = None
        self.slow = False

    def step(self, live: Sequence[int], actions: Sequence[str]) -> list[tuple[StepResult | Exception, float]]:
        jobs = [(self.envs[i], text) for i, text in zip(live, actions, strict=True)]
        results: list[tuple[StepResult | Exception, float]] = []
        if self.enabled and not self.slow and len(jobs) > 1:  # probe: is one step slow enough to go parallel?
            results.append(_timed_step(*jobs[0]))
            jobs = jobs[1:]
            self.slow = results[0][1] >= self.min_step_s
        if self.enabled and self.slow and len(jobs) > 1:
            self.pool = self.pool or ThreadPoolExecutor(max_workers=len(self.envs))
            results += self.pool.map(lambda job: _timed_step(*job), jobs)
        else:
            results += [_timed_step(*job) for job in jobs]
        self.slow = max((seconds for _, seconds in results), default=0.0) >= self.min_step_s
        return results

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()


def _start(env: gym.Env, task: TaskSpec, policy_name: str) -> tuple[Episode, str, dict[str, Any]]:
    """Reset `env` for `task`; a reset that raises or reports `infra_error` gives a finished infra record."""
    options = task.reset_options()
    try:
        obs, info = env.reset(seed=task.seed, options=options)
    except Exception as exc:  # an env that cannot even start is an infra failure, not a zero
        obs, info = "", {"infra_error": f"reset failed: {exc!r}"}
    return Episode.start(env, obs, info, policy=policy_name, seed=task.seed, options=options), obs, info


def _session(policy: Any) -> AbstractContextManager[Any]:
    session = getattr(policy, "session", None)
    return session() if callable(session) else nullcontext()


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
    states: list[_Progress] = []
    live: list[int] = []
    for i, task in enumerate(tasks):
        record, obs, info = _start(envs[i], task, policy.name)
        states.append(_Progress())
        if record.outcome is not None:  # infra error at reset: the record is already finished
            episodes.append(TokenEpisode(task=task, prompt_ids=[], record=record))
            contexts.append([])
            continue
        messages = policy.initial_messages(obs) if hasattr(policy, "initial_messages") else [
            {"role": "user", "content": obs}
        ]  # fmt: skip
        prompt = policy.encode_prompt(messages, info.get("tools"))
        episodes.append(TokenEpisode(task=task, prompt_ids=prompt, record=record))
        contexts.append(list(prompt))
        live.append(i)

    stepper = _EnvStepper(envs, cfg.parallel_steps, cfg.parallel_min_step_s)
    try:
        with _session(policy):
            while live:
                samples = policy.sample([contexts[i] for i in live])
                results = stepper.step(live, [s.text for s in samples])
                still = []
                for i, sample, (result, seconds) in zip(live, samples, results, strict=True):
                    if _record_step(episodes[i], states[i], contexts[i], sample, result, seconds, policy, cfg):
                        still.append(i)
                live = still
    finally:
        stepper.close()

    for ep, st in zip(episodes, states, strict=True):
        if ep.record.outcome is None:
            ep.record.finish(success=st.success, terminated=not st.truncated and st.infra_error is None,
                             truncated=st.truncated, infra_error=st.infra_error)  # fmt: skip
        if writer is not None:
            writer.write(ep.record)
    return episodes


@dataclass
class _Progress:
    """An episode's outcome while it runs (the record's `outcome` is written once, at the end; its return
    is the sum of the recorded turns' rewards)."""

    success: bool = False
    truncated: bool = False
    infra_error: str | None = None


def _record_step(
    ep: TokenEpisode,
    st: _Progress,
    context: list[int],
    sample: Any,
    result: StepResult | Exception,
    seconds: float,
    policy: TokenPolicy,
    cfg: RolloutConfig,
) -> bool:
    """Book one step into the token episode and its record; extend `context`; True while the episode goes on."""
    if isinstance(result, Exception):
        st.infra_error = f"step raised {result!r}"
        ep.turns.append(TokenTurn(sample.token_ids, sample.logprobs, [], 0.0, sample.stopped))
        return False
    obs, reward, terminated, truncated, info = result
    st.success = bool(info.get("solved", False))
    if info.get("infra_error"):
        st.infra_error = str(info["infra_error"])
    shown = cfg.hidden_text if cfg.hide_feedback else obs
    done = terminated or truncated or st.infra_error is not None
    obs_ids: list[int] = []
    if not done:
        obs_ids = policy.encode_observation(shown, sample.stopped)
        too_long = len(context) + len(sample.token_ids) + len(obs_ids) > cfg.max_context_tokens
        if too_long or (cfg.max_turns is not None and len(ep.turns) + 1 >= cfg.max_turns):
            truncated, done, obs_ids = True, True, []
    st.truncated = bool(truncated and not terminated)
    ep.turns.append(TokenTurn(sample.token_ids, sample.logprobs, obs_ids, float(reward), sample.stopped))
    extra = {"action_tokens": len(sample.token_ids), "obs_tokens": len(obs_ids),
             "logprob_sum": float(sum(sample.logprobs)), "stopped": sample.stopped}  # fmt: skip
    ep.record.turns.append(
        Turn.from_step(len(ep.record.turns), sample.text, result, duration_s=seconds, observation=shown,
                       truncated=st.truncated, extra=extra)
    )  # fmt: skip
    if done:
        return False
    context += sample.token_ids + obs_ids
    return True
