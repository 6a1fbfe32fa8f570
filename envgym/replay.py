"""Re-execute a recorded episode in a fresh env and say whether, and where, it diverges from the recording.

Why: a trajectory is only evidence if it can be reproduced. Every env is deterministic given (env id, env
kwargs, seed, options), so replaying the recorded actions must give back the recorded observations, rewards,
end flags and command exit codes. Volatile text (durations, temp paths, container ids, timestamps) is
normalised away by default so honest replays compare equal; `strict=True` compares raw text.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field

from envgym.trajectory import Episode, Turn

# (pattern, replacement): applied in order to every compared string unless strict.
VOLATILE_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)?"), "<TIMESTAMP>"),
    (re.compile(r"(?:/private)?/(?:tmp|var/folders|var/tmp)/[^\s'\":,)\]]+"), "<TMPPATH>"),
    (re.compile(r"\b[0-9a-f]{12}(?:[0-9a-f]{52})?\b"), "<HEXID>"),
    (re.compile(r"\bsha256:[0-9a-f]{64}\b"), "<DIGEST>"),
    (re.compile(r"\b\d+(?:\.\d+)?\s?(?:s|ms|us|µs|sec|seconds)\b"), "<DURATION>"),
    (re.compile(r"\bin \d+(?:\.\d+)?s\b"), "in <DURATION>"),  # pytest's "1 passed in 0.03s"
)


def normalise(text: str) -> str:
    """Replace volatile substrings (timings, temp paths, ids, timestamps) with stable placeholders."""
    for pattern, replacement in VOLATILE_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class FieldDiff(BaseModel):
    """One compared field that differs between the recording and the replay."""

    field: str
    recorded: Any
    replayed: Any

    def unified(self) -> str:
        """A difflib unified diff of the two values (as text)."""
        a, b = str(self.recorded).splitlines(keepends=True), str(self.replayed).splitlines(keepends=True)
        lines = difflib.unified_diff(a, b, fromfile=f"recorded {self.field}", tofile=f"replayed {self.field}")
        out = "".join(line if line.endswith("\n") else line + "\n" for line in lines)
        return out or f"recorded {self.field}: {self.recorded!r}\nreplayed {self.field}: {self.replayed!r}\n"


class TurnCheck(BaseModel):
    """The comparison of one turn (index -1 is the reset observation)."""

    index: int
    action: str
    recorded_reward: float | None = None
    replayed_reward: float | None = None
    exit_codes: list[int | None] = Field(default_factory=list)
    replayed_exit_codes: list[int | None] = Field(default_factory=list)
    terminated: bool = False
    truncated: bool = False
    diffs: list[FieldDiff] = Field(default_factory=list)

    @property
    def diverged(self) -> bool:
        return bool(self.diffs)


class ReplayReport(BaseModel):
    """The whole comparison of one episode."""

    episode_id: str
    env_id: str
    recorded_version: str
    current_version: str
    turns: list[TurnCheck] = Field(default_factory=list)
    recorded_return: float = 0.0
    replayed_return: float = 0.0
    replayed_success: bool = False
    replayed_terminated: bool = False
    replayed_truncated: bool = False
    replayed_infra_error: str | None = None
    stopped_at: int | None = Field(default=None, description="turn index replay stopped after (--until)")
    notes: list[str] = Field(default_factory=list)

    @property
    def first_divergence(self) -> TurnCheck | None:
        return next((t for t in self.turns if t.diverged), None)

    @property
    def diverged(self) -> bool:
        return self.first_divergence is not None or self.recorded_version != self.current_version


class ReplayError(RuntimeError):
    """The episode cannot be replayed at all (unknown env id, env failed to build)."""


def make_env(episode: Episode) -> Any:
    """Build the env exactly as recorded: `gym.make(env_id, **env_kwargs)`."""
    import gymnasium as gym

    import envgym  # noqa: F401  (registers ids)

    try:
        return gym.make(episode.env_id, **episode.env_kwargs)
    except gym.error.Error as exc:
        raise ReplayError(f"cannot rebuild {episode.env_id}: {exc}") from exc


def _text(value: str, strict: bool) -> str:
    return value if strict else normalise(value)


def _compare_turn(turn: Turn, result: tuple[str, float, bool, bool, dict[str, Any]], strict: bool) -> TurnCheck:
    observation, reward, terminated, truncated, info = result
    commands = info.get("commands", []) or []
    check = TurnCheck(
        index=turn.index,
        action=turn.action,
        recorded_reward=turn.reward,
        replayed_reward=float(reward),
        exit_codes=[c.exit_code for c in turn.commands],
        replayed_exit_codes=[c.get("exit_code") for c in commands],
        terminated=bool(terminated),
        truncated=bool(truncated),
    )
    if _text(turn.observation, strict) != _text(observation, strict):
        check.diffs.append(FieldDiff(field="observation", recorded=turn.observation, replayed=observation))
    if abs(turn.reward - float(reward)) > 1e-9:
        check.diffs.append(FieldDiff(field="reward", recorded=turn.reward, replayed=float(reward)))
    if turn.terminated != bool(terminated):
        check.diffs.append(FieldDiff(field="terminated", recorded=turn.terminated, replayed=bool(terminated)))
    if turn.truncated != bool(truncated):
        check.diffs.append(FieldDiff(field="truncated", recorded=turn.truncated, replayed=bool(truncated)))
    if check.exit_codes != check.replayed_exit_codes:
        check.diffs.append(FieldDiff(field="exit_codes", recorded=check.exit_codes, replayed=check.replayed_exit_codes))
    return check


def replay_episode(
    episode: Episode,
    strict: bool = False,
    until: int | None = None,
    on_turn: Callable[[TurnCheck], bool] | None = None,
    keep_env: bool = False,
) -> tuple[ReplayReport, Any]:
    """Replay `episode` in a fresh env; returns the report and (if `keep_env`, else None) the live env.

    `until`: stop after that turn index (the env is left in that state). `on_turn` sees each check as it is
    made and returns False to stop early (the `--step` walk).
    """
    env = make_env(episode)
    current_version = str(getattr(env.unwrapped, "version", episode.env_version))
    report = ReplayReport(
        episode_id=episode.episode_id,
        env_id=episode.env_id,
        recorded_version=episode.env_version,
        current_version=current_version,
        recorded_return=sum(t.reward for t in episode.turns),
    )
    if current_version != episode.env_version:
        report.notes.append(
            f"recorded with {episode.env_id}@{episode.env_version}, replayed with @{current_version}: tasks may differ"
        )

    def add(check: TurnCheck) -> bool:
        report.turns.append(check)
        return on_turn is None or on_turn(check)

    try:
        observation, info = env.reset(seed=episode.seed, options=dict(episode.options))
        reset_check = TurnCheck(index=-1, action="(reset)")
        if _text(episode.initial_observation, strict) != _text(observation, strict):
            reset_check.diffs.append(
                FieldDiff(field="initial observation", recorded=episode.initial_observation, replayed=observation)
            )
        replayed_task = info.get("task") or {}
        if replayed_task and (replayed_task.get("id"), replayed_task.get("params")) != (
            episode.task.get("id"),
            episode.task.get("params"),
        ):
            report.notes.append(
                f"the env built a different task: recorded {episode.task.get('id')} {episode.task.get('params')}, "
                f"replayed {replayed_task.get('id')} {replayed_task.get('params')} (task data changed?)"
            )
            reset_check.diffs.append(FieldDiff(field="task", recorded=episode.task, replayed=replayed_task))
        add(reset_check)
        if info.get("infra_error"):
            report.replayed_infra_error = str(info["infra_error"])
        done = False
        for turn in episode.turns:
            if done:
                check = TurnCheck(index=turn.index, action=turn.action, recorded_reward=turn.reward)
                check.diffs.append(
                    FieldDiff(field="episode end", recorded="episode still running", replayed="episode already over")
                )
                add(check)
                break
            result = env.step(turn.action)
            check = _compare_turn(turn, result, strict)
            report.replayed_return += float(result[1])
            report.replayed_terminated, report.replayed_truncated = bool(result[2]), bool(result[3])
            report.replayed_success = bool(result[4].get("solved", False))
            report.replayed_infra_error = result[4].get("infra_error") or report.replayed_infra_error
            done = bool(result[2] or result[3])
            if not add(check):
                report.stopped_at = turn.index
                break
            if until is not None and turn.index >= until:
                report.stopped_at = turn.index
                break
        else:
            if not done and episode.outcome is not None and (episode.outcome.terminated or episode.outcome.truncated):
                add(
                    TurnCheck(
                        index=len(episode.turns),
                        action="(end of recording)",
                        diffs=[
                            FieldDiff(field="episode end", recorded="episode over", replayed="episode still running")
                        ],
                    )
                )
    except BaseException:
        env.close()
        raise
    if keep_env:
        return report, env
    env.close()
    return report, None


def find_sandbox(env: Any) -> Any:
    """The sandbox an env's commands run in, if any (looks through mixture envs' current sub-env)."""
    from envgym.sandboxes import Sandbox

    seen: set[int] = set()
    stack = [getattr(env, "unwrapped", env)]
    while stack:
        obj = stack.pop()
        if obj is None or id(obj) in seen:
            continue
        seen.add(id(obj))
        for name in ("sandbox", "box"):
            candidate = getattr(obj, name, None)
            if isinstance(candidate, Sandbox):
                return candidate
        stack.extend(getattr(obj, name, None) for name in ("sub", "current_env", "env"))
    return None
