"""Re-execute a recorded episode in a fresh env and say whether, and where, it diverges from the recording.

Why: a trajectory is only evidence if it can be reproduced. Every env is deterministic given (env id, env
kwargs, seed, options), so replaying the recorded actions must give back the recorded observations, rewards,
end flags and command exit codes. Volatile text (durations, temp paths, container ids, timestamps) is
normalised away by default so honest replays compare equal; `strict=True` compares raw text.

Why the record is rebuilt through `env_kwargs_from`: a trajectory file is untrusted (anyone can write one, and
the leaderboard replays strangers' files). It may only name an envgym id from our registry (never a module
path, which `gym.make` would import), and only task-shaping kwargs (difficulty, turn budget, params, mixture
families). Sandbox backend and options, task sources and paths are the replaying host's choice: the recorded
ones are ignored (noted) or refused, so a file can neither pick a backend nor point a sandbox at host paths.
Agent commands then run only where the env's sandbox runs them, a boundary or a refusal (docs/security.md).
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from envgym.trajectory import Episode, TrajectoryError, Turn
from envgym.validation import problems

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
    observation: str = Field(default="", description="the replayed observation (what `replay --step` shows)")
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
    recorded_infra_error: str | None = None
    stopped_at: int | None = Field(default=None, description="turn index replay stopped after (--until)")
    notes: list[str] = Field(default_factory=list)

    @property
    def first_divergence(self) -> TurnCheck | None:
        return next((t for t in self.turns if t.diverged), None)

    @property
    def infra(self) -> bool:
        """The host failed during the replay: neither a match nor a divergence, excluded from rates.

        A recording marked infra that replays without one is compared like any other (and usually diverges):
        a file cannot hide a divergence by claiming infra.
        """
        return self.replayed_infra_error is not None

    @property
    def diverged(self) -> bool:
        if self.infra:
            return False
        return self.first_divergence is not None or self.recorded_version != self.current_version

    @property
    def status(self) -> Literal["ok", "diverged", "infra"]:
        return "infra" if self.infra else "diverged" if self.diverged else "ok"


class ReplayError(RuntimeError):
    """The episode cannot be replayed at all (unknown env id, env failed to build)."""


MAX_NAME_CHARS = 200  # episode id, env id, env version: envgym writes a uuid, a registry id, a short version


class DamagedLine(BaseModel):
    """A line of a trajectory file that is not a replayable episode record (`where` is `path:line`)."""

    where: str
    reason: str


def _names_problem(episode: Episode) -> str | None:
    """Why the record's names cannot identify it, or None.

    The names are printed on every replay line and passed on (the leaderboard stores them), so each must be
    short, printable text: a lone surrogate (`\\ud800`, legal JSON) cannot even be encoded as UTF-8, and
    control characters would reach the terminal.
    """
    for field in ("episode_id", "env_id", "env_version"):
        value = getattr(episode, field)
        if len(value) > MAX_NAME_CHARS:
            return f"{field} is {len(value)} characters long (at most {MAX_NAME_CHARS})"
        if not value.isprintable():
            bad = next(ch for ch in value if not ch.isprintable())
            return f"{field} holds a non-printable character (U+{ord(bad):04X}: a control or a lone surrogate)"
    return None


def read_records(path: str | os.PathLike[str]) -> Iterator[Episode | DamagedLine]:
    """Each non-blank line of a trajectory file: its episode, or a `DamagedLine` saying why it is not one.

    Why not `read_episodes(strict=True)`: that stops at the first bad line, and the good records after it would
    be lost. Here a damaged line (not JSON, not an episode, unusable names, a torn last line) costs only itself.
    A missing file is a `TrajectoryError`; an unreadable one an `OSError`.
    """
    p = Path(path)
    if not p.is_file():
        raise TrajectoryError(f"no trajectory file at {p}")
    data = p.read_bytes()
    lines = data.decode("utf-8", errors="replace").split("\n")
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{p}:{number}"
        try:
            episode = Episode.model_validate(json.loads(line))
        except (ValueError, RecursionError) as exc:  # JSONDecodeError and ValidationError are ValueErrors
            torn = number - 1 == last and not data.endswith(b"\n")
            problem = problems(exc, "record", 3) if isinstance(exc, ValidationError) else str(exc)[:200]
            reason = "torn last line (a run killed mid-write?)" if torn else "not a valid episode record"
            yield DamagedLine(where=where, reason=f"{reason} ({problem or type(exc).__name__})")
            continue
        names = _names_problem(episode)
        if names is not None:
            yield DamagedLine(where=where, reason=f"not a replayable episode record: {names}")
        else:
            yield episode


class FileEnvKwargs(BaseModel):
    """The env kwargs a trajectory file may set: they shape the task, never where or how code runs."""

    model_config = ConfigDict(extra="forbid")

    difficulty: float | None = Field(default=None, ge=0.0, le=1.0)
    max_turns: int | None = Field(default=None, ge=1, le=10_000)
    params: dict[str, Any] | None = None
    families: list[str] | None = Field(default=None, max_length=64)
    weights: dict[str, float] | None = None
    render_mode: Literal["ansi"] | None = None


HOST_CHOSEN_KWARGS = ("sandbox", "sandbox_options")


def env_kwargs_from(episode: Episode) -> tuple[dict[str, Any], list[str]]:
    """The kwargs a replay takes from an untrusted record, and notes on what it ignored.

    Sandbox settings are dropped (the host chooses); anything else outside `FileEnvKwargs` (task files, pool
    sizes, timeouts, unknown keys) is refused with a `ReplayError` naming it.
    """
    kwargs = dict(episode.env_kwargs)
    notes = []
    ignored = {k: kwargs.pop(k) for k in HOST_CHOSEN_KWARGS if k in kwargs}
    if ignored:
        notes.append(
            f"recorded sandbox settings {sorted(ignored)} ignored: the replaying host chooses the sandbox "
            "(--sandbox), a trajectory file never does"
        )
    try:
        checked = FileEnvKwargs.model_validate(kwargs)
    except ValidationError as exc:
        raise ReplayError(
            f"the trajectory's env kwargs are not replayable ({problems(exc, 'env_kwargs')[:400]}); a file may set only "
            f"{', '.join(FileEnvKwargs.model_fields)}"
        ) from exc
    return checked.model_dump(exclude_unset=True), notes


def registered_entry(env_id: str) -> Any:
    """envgym's own registry entry for `env_id`, or a `ReplayError` (no module paths, no foreign ids)."""
    from envgym.registry import entry

    try:
        return entry(env_id)
    except KeyError:
        shown = env_id if len(env_id) <= 80 else env_id[:77] + "..."
        raise ReplayError(
            f"{shown!r} is not an envgym env id; replay only rebuilds ids listed by `envgym list`"
        ) from None


def make_env(
    episode: Episode,
    env_kwargs: dict[str, Any] | None = None,
    sandbox: str | None = None,
    notes: list[str] | None = None,
) -> Any:
    """Build the env of a record: `gym.make(env_id, **kwargs)` with kwargs the file may set (see module doc).

    `env_kwargs` replaces the file's kwargs when the caller trusts its own (the leaderboard's split).
    `sandbox` is the host's backend choice for envs that run commands; envs without one ignore it.
    What was ignored from the file is appended to `notes`.
    """
    import inspect

    import gymnasium as gym

    import envgym  # noqa: F401  (registers ids)

    entry = registered_entry(episode.env_id)
    if env_kwargs is None:
        kwargs, ignored = env_kwargs_from(episode)
        if notes is not None:
            notes.extend(ignored)
    else:
        kwargs = dict(env_kwargs)
    if sandbox is not None and "sandbox" in inspect.signature(entry.load_class()).parameters:
        kwargs["sandbox"] = sandbox
    try:
        return gym.make(entry.id, **kwargs)
    except (gym.error.Error, ValueError, TypeError) as exc:
        raise ReplayError(f"cannot rebuild {entry.id}: {' '.join(str(exc).split())[:300]}") from exc


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
        observation=observation,
    )
    if _text(turn.observation, strict) != _text(observation, strict):
        check.diffs.append(FieldDiff(field="observation", recorded=turn.observation, replayed=observation))
    if not abs(turn.reward - float(reward)) <= 1e-9:  # a recorded NaN differs from every reward
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
    env_kwargs: dict[str, Any] | None = None,
    sandbox: str | None = None,
) -> tuple[ReplayReport, Any]:
    """Replay `episode` in a fresh env; returns the report and (if `keep_env`, else None) the live env.

    `until`: stop after that turn index (the env is left in that state). `on_turn` sees each check as it is
    made and returns False to stop early (the `--step` walk). `env_kwargs` / `sandbox`: see `make_env`.
    A reset that reports `infra_error` stops the replay there: the report says infra, not divergence.
    """
    notes: list[str] = []
    env = make_env(episode, env_kwargs=env_kwargs, sandbox=sandbox, notes=notes)
    current_version = str(getattr(env.unwrapped, "version", episode.env_version))
    report = ReplayReport(
        episode_id=episode.episode_id,
        env_id=episode.env_id,
        recorded_version=episode.env_version,
        current_version=current_version,
        recorded_return=sum(t.reward for t in episode.turns),
        recorded_infra_error=episode.outcome.infra_error if episode.outcome is not None else None,
        notes=notes,
    )
    if current_version != episode.env_version:
        report.notes.append(
            f"recorded with {episode.env_id}@{episode.env_version}, replayed with @{current_version}: tasks may differ"
        )

    def add(check: TurnCheck) -> bool:
        report.turns.append(check)
        return on_turn is None or on_turn(check)

    try:
        try:
            observation, info = env.reset(seed=episode.seed, options=dict(episode.options))
        except (ValueError, TypeError, OverflowError) as exc:  # the file's seed/options, not our bug
            raise ReplayError(
                f"the recorded seed/options do not build a task: {' '.join(str(exc).split())[:300]}"
            ) from exc
        if info.get("infra_error"):  # nothing to compare against: the host failed before the task existed
            report.replayed_infra_error = str(info["infra_error"])
            add(TurnCheck(index=-1, action="(reset)"))
            env.close()
            return report, None
        reset_check = TurnCheck(index=-1, action="(reset)", observation=observation)
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
