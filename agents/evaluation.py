"""Success rates of any policy on any env: scripted (oracle, random), local HF models, OpenAI endpoints.

Why one function: `envgym eval`, the experiments and the README compare policies on the same task seeds,
recorded as trajectories, so the numbers are comparable and replayable.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import gymnasium as gym
from pydantic import BaseModel

from envgym.agents.policies.base import Message
from envgym.agents.policies.openai_policy import FAILURE_KEY
from envgym.run_dir import RunDir
from envgym.trajectory import Episode, TrajectoryWriter, Turn


class EvalResult(BaseModel):
    env_id: str
    policy: str
    difficulty: float | None
    episodes: int
    success_rate: float
    mean_return: float
    mean_turns: float
    infra_errors: int
    truncated: int = 0
    first_infra_error: str | None = None


def summarise(env_id: str, policy: str, difficulty: float | None, records: list[Episode]) -> EvalResult:
    """Rates over scored episodes: infra episodes (reset or step failures, failed requests) are counted apart."""
    done = [r for r in records if r.outcome is not None]
    valid = [r for r in done if not r.infra]
    n = max(len(valid), 1)
    infra = [r.outcome.infra_error for r in done if r.outcome is not None and r.outcome.infra_error]
    return EvalResult(
        env_id=env_id,
        policy=policy,
        difficulty=difficulty,
        episodes=len(done),
        success_rate=sum(bool(r.outcome and r.outcome.success) for r in valid) / n,
        mean_return=sum(r.outcome.return_ for r in valid if r.outcome) / n,
        mean_turns=sum(r.outcome.num_turns for r in valid if r.outcome) / n,
        infra_errors=len(done) - len(valid),
        truncated=sum(bool(r.outcome and r.outcome.truncated) for r in valid),
        first_infra_error=infra[0] if infra else None,
    )


def chat_episode(
    env: gym.Env,
    policy: Any,
    seed: int,
    options: dict[str, Any],
    max_turns: int | None = None,
    hide_feedback: bool = False,
    hidden_text: str = "?",
) -> Episode:
    """One episode of a message-level policy (`act` on chat messages, e.g. `OpenAIPolicy`).

    Never raises for the episode's own failures: a reset or step that raises is infra; an action that came
    back with `extra["failure"]` (a failed request) ends the episode as the policy classified it, infra or
    truncated, and the reason is kept (`outcome.infra_error`, or `extra["stop_reason"]` on the last turn). A
    truncation before any action (the task alone overflows the context) is infra: the agent never played.
    """
    try:
        obs, info = env.reset(seed=seed, options=options)
    except Exception as exc:  # the env could not start the task: infra, not a failure of the policy
        obs, info = "", {"infra_error": f"reset failed: {exc!r}"}
    name = str(getattr(policy, "name", type(policy).__name__))
    record = Episode.start(env, obs, info, policy=name, seed=seed, options=options)
    if record.done:
        return record
    make = getattr(policy, "initial_messages", None)
    chat: list[Message] = list(make(obs)) if make else [{"role": "user", "content": obs}]
    tools = list(info.get("tools") or [])
    solved = False
    while True:
        try:
            action = policy.act([chat], [tools])[0]
        except Exception as exc:  # a policy bug or an unclassified client error: this episode only
            return record.finish(success=False, terminated=False, truncated=False,
                                 infra_error=f"policy raised {exc!r}")  # fmt: skip
        stop = action.extra.get(FAILURE_KEY)
        if stop:
            reason = str(stop.get("reason") or "request failed")
            if stop.get("kind") == "truncated" and record.turns:
                record.turns[-1].extra["stop_reason"] = reason
                record.turns[-1].truncated = True
                return record.finish(success=False, terminated=False, truncated=True)
            # a truncation before the first action (the task itself does not fit) is no play: infra, not a 0
            prefix = "" if stop.get("kind") != "truncated" else "before the first action: "
            return record.finish(success=False, terminated=False, truncated=False, infra_error=prefix + reason)
        started = time.perf_counter()
        try:
            step = env.step(action.text)
        except Exception as exc:  # the env or its sandbox broke
            return record.finish(success=False, terminated=False, truncated=False,
                                 infra_error=f"step raised {exc!r}")  # fmt: skip
        observation, _, terminated, truncated, step_info = step
        solved = bool(step_info.get("solved", False))
        capped = max_turns is not None and len(record.turns) + 1 >= max_turns
        truncated = bool(truncated or (capped and not terminated))
        shown = hidden_text if hide_feedback else observation
        record.turns.append(Turn.from_step(len(record.turns), action.text, step, observation=shown,
                                           truncated=truncated, duration_s=time.perf_counter() - started,
                                           extra=_recordable(action.extra)))  # fmt: skip
        if terminated or truncated or record.turns[-1].infra_error:
            return record.finish(success=solved, terminated=bool(terminated), truncated=truncated)
        extend = getattr(policy, "extend", None)
        if extend is not None:
            extend(chat, action, shown)
        else:
            chat += [{"role": "assistant", "content": action.text}, {"role": "user", "content": shown}]


def _recordable(extra: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in extra.items() if k != "tool_call_message"}


def evaluate(
    env_factory: Callable[[], gym.Env],
    policy: Any,
    episodes: int = 32,
    difficulty: float | None = None,
    seed: int = 0,
    batch_size: int = 16,
    out: str | Path | RunDir | None = None,
    max_turns: int | None = None,
    hide_feedback: bool = False,
    on_done: Callable[[int], None] | None = None,
) -> EvalResult:
    """Run `episodes` tasks (seeds seed..seed+episodes-1) and summarise; records to OUT/trajectories.jsonl.
    `on_done(n)` is called as each batch (token policies) or episode (chat and scripted policies) of n
    episodes finishes (a progress bar). Every finished episode is written as it finishes.

    `out` as a `RunDir` (what `envgym eval` passes) resumes: seeds it already holds are not run again and
    count in the summary; a plain path appends to its trajectory file.

    Chat policies run `batch_size` episodes at once, each on its own env in its own thread: a slow or failed
    request holds up only its own episode."""
    done = on_done or (lambda n: None)
    from envgym.agents.rollout import RolloutConfig, TaskSpec, rollout
    from envgym.runner import run_episode

    wanted = range(seed, seed + episodes)
    kept = {e.seed: e for e in out.finished if e.seed in wanted} if isinstance(out, RunDir) else {}
    todo = [s for s in wanted if s not in kept]
    own = TrajectoryWriter(Path(out) / "trajectories.jsonl") if out and not isinstance(out, RunDir) else None
    writer = out if isinstance(out, RunDir) else own  # a RunDir is its caller's to close
    options = {"difficulty": difficulty} if difficulty is not None else {}
    records: list[Episode] = list(kept.values())
    try:
        if not todo:
            pass
        elif _is_batched(policy) and hasattr(policy, "sample"):
            cfg = RolloutConfig(max_turns=max_turns, hide_feedback=hide_feedback)
            envs = [env_factory() for _ in range(min(batch_size, len(todo)))]
            for start in range(0, len(todo), len(envs)):
                tasks = [TaskSpec(seed=s, difficulty=difficulty) for s in todo[start : start + len(envs)]]
                eps = rollout(policy, envs, tasks, cfg, writer)
                records += [e.record for e in eps if e.record is not None]
                done(len(tasks))
        elif _is_batched(policy):
            records += _evaluate_chat(env_factory, policy, todo, options, batch_size, max_turns,
                                      hide_feedback, writer, done)  # fmt: skip
        else:  # scripted step agents see the env itself
            env = env_factory()
            for task_seed in todo:
                record = run_episode(env, policy, seed=task_seed, options=options)
                if writer is not None:
                    writer.write(record)
                records.append(record)
                done(1)
    finally:
        if own is not None:
            own.close()
    records.sort(key=lambda e: e.seed if e.seed is not None else -1)
    env_id = records[0].env_id if records else "?"
    return summarise(env_id, str(getattr(policy, "name", type(policy).__name__)), difficulty, records)


def _evaluate_chat(
    env_factory: Callable[[], gym.Env],
    policy: Any,
    seeds: list[int],
    options: dict[str, Any],
    workers: int,
    max_turns: int | None,
    hide_feedback: bool,
    writer: RunDir | TrajectoryWriter | None,
    done: Callable[[int], None],
) -> list[Episode]:
    """Episodes on a pool of `workers` threads, one env per worker; records kept in seed order.

    On Ctrl-C the episodes not yet started are cancelled and those in flight finish and are written, so the
    run directory holds only whole episodes and a resumed run skips them."""
    workers = max(1, min(workers, len(seeds)))
    envs: queue.Queue[gym.Env] = queue.Queue()
    for _ in range(workers):
        envs.put(env_factory())
    lock = threading.Lock()

    def one(task_seed: int) -> Episode:
        env = envs.get()
        try:
            record = chat_episode(env, policy, task_seed, options, max_turns, hide_feedback)
        finally:
            envs.put(env)
        with lock:
            if writer is not None:
                writer.write(record)
            done(1)
        return record

    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        return list(pool.map(one, seeds))
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:  # the envs are ours: free their sandboxes
        pool.shutdown(wait=True)
        while not envs.empty():
            envs.get().close()


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
