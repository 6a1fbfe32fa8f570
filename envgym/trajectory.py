"""Episode and Turn records, their constructors, and the append-only JSONL store every envgym command writes.

The classmethods here are the only constructors of step records: `CommandRecord.from_exec` (an `ExecResult`
→ the dict an env puts in `info["commands"]`), `Turn.from_step` (one `env.step` → a turn), `Episode.start`
(after `env.reset`) and `Episode.finish`. Runners, rollouts, evaluation, replay and the fleet all build
records through them, so one rule holds everywhere: an infra error at reset or at any step marks the episode
infra (`outcome.infra_error`), and infra episodes are excluded from success rates, never scored as a zero.

Why append-only JSONL with one fsync'd line per finished episode: a crashed run loses at most the episode in
flight, files from many runs concatenate, and any tool reads them line by line. The reader tolerates a torn
last line (the crash case) and names the line of any other corruption.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, SupportsFloat

from pydantic import BaseModel, Field, ValidationError
from pydantic_core import PydanticSerializationError

if TYPE_CHECKING:
    import gymnasium as gym

    from envgym.sandboxes.base import ExecResult

SCHEMA_VERSION = 1


class TrajectoryError(ValueError):
    """A trajectory file is corrupt or not a trajectory file."""


class CommandRecord(BaseModel):
    """One command a sandbox ran on the agent's behalf."""

    command: str
    exit_code: int | None = None
    output: str = ""
    truncated: bool = False
    timed_out: bool = False
    duration_s: float = 0.0

    @classmethod
    def from_exec(cls, command: str, result: ExecResult, max_command_chars: int | None = None) -> CommandRecord:
        """The record of `command` having produced `result`; `max_command_chars` caps a huge command's text."""
        if max_command_chars is not None and len(command) > max_command_chars:
            command = command[:max_command_chars] + "..."
        return cls(
            command=command,
            exit_code=result.exit_code,
            output=result.output,
            truncated=result.truncated,
            timed_out=result.timed_out,
            duration_s=result.duration_s,
        )


class Turn(BaseModel):
    """One action and what the env answered."""

    index: int
    action: str
    tool_call: dict[str, Any] | None = None
    observation: str
    reward: float
    terminated: bool
    truncated: bool
    feedback: dict[str, Any]
    reward_components: dict[str, float] = Field(default_factory=dict)
    commands: list[CommandRecord] = Field(default_factory=list)
    duration_s: float = 0.0
    extra: dict[str, Any] = Field(default_factory=dict, description="policy-specific data, e.g. token counts")
    infra_error: str | None = Field(default=None, description="the host or sandbox failed on this step")

    @classmethod
    def from_step(
        cls,
        index: int,
        action: str,
        step: tuple[Any, SupportsFloat, bool, bool, dict[str, Any]],
        *,
        duration_s: float = 0.0,
        observation: str | None = None,
        truncated: bool | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Turn:
        """The turn `action` made, from `env.step`'s 5-tuple. `observation`/`truncated` override what was
        recorded when the caller showed or ended differently (hidden feedback, a context cap)."""
        obs, reward, terminated, env_truncated, info = step
        return cls(
            index=index,
            action=action,
            tool_call=info.get("tool_call") or None,
            observation=obs if observation is None else observation,
            reward=float(reward),
            terminated=bool(terminated),
            truncated=bool(env_truncated if truncated is None else truncated),
            feedback=dict(info.get("feedback") or {}),
            reward_components=dict(info.get("reward_components") or {}),
            commands=[CommandRecord.model_validate(c) for c in info.get("commands") or []],
            duration_s=duration_s,
            # a patch-graded env (SWE) puts the diff its submit graded in info["patch"]: the record keeps it
            extra={**({"patch": info["patch"]} if info.get("patch") else {}), **(extra or {})},
            infra_error=str(info["infra_error"]) if info.get("infra_error") else None,
        )


class Outcome(BaseModel):
    return_: float = Field(alias="return")
    success: bool
    terminated: bool
    truncated: bool
    infra_error: str | None = None
    num_turns: int

    model_config = {"populate_by_name": True}


class Episode(BaseModel):
    schema_version: int = SCHEMA_VERSION
    episode_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    env_id: str
    env_version: str
    task: dict[str, Any]
    seed: int | None
    difficulty: float | None
    options: dict[str, Any] = Field(default_factory=dict)
    env_kwargs: dict[str, Any] = Field(default_factory=dict)
    sandbox: dict[str, Any] | None = Field(default=None, description="image digest and limits, when one was used")
    policy: str
    initial_observation: str
    turns: list[Turn] = Field(default_factory=list)
    outcome: Outcome | None = None
    started_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat())
    finished_at: str | None = None
    envgym_version: str = "0.1.0"

    @classmethod
    def start(
        cls,
        env: gym.Env | None,
        observation: str,
        info: dict[str, Any],
        *,
        policy: str,
        seed: int | None = None,
        options: dict[str, Any] | None = None,
        env_kwargs: dict[str, Any] | None = None,
    ) -> Episode:
        """The record of an episode whose `env.reset` returned `(observation, info)`.

        If the reset reported `info["infra_error"]` (or the caller passes one because reset raised), the
        episode is finished on the spot as infra: check `episode.done` before stepping.
        """
        task = dict(info.get("task") or {})
        env_id, version = _env_names(env)
        if task.get("env"):
            env_id, _, version = str(task["env"]).partition("@")
        difficulty = task.get("difficulty", (options or {}).get("difficulty"))
        episode = cls(
            env_id=env_id,
            env_version=version,
            task=task,
            seed=task.get("seed", seed),
            difficulty=None if difficulty is None else float(difficulty),
            options=dict(options or {}),
            env_kwargs=dict(env_kwargs or {}),
            sandbox=info.get("sandbox"),
            policy=policy,
            initial_observation=observation,
        )
        if info.get("infra_error"):
            episode.finish(success=False, terminated=False, truncated=False, infra_error=str(info["infra_error"]))
        return episode

    @property
    def done(self) -> bool:
        """Finished (has an outcome): either played out or stopped by an infra error."""
        return self.outcome is not None

    @property
    def infra(self) -> bool:
        """The host or sandbox failed: excluded from success rates."""
        return self.outcome is not None and self.outcome.infra_error is not None

    def finish(
        self,
        *,
        success: bool,
        terminated: bool | None = None,
        truncated: bool | None = None,
        infra_error: str | None = None,
    ) -> Episode:
        """Set the outcome: the return is the sum of turn rewards, `terminated`/`truncated` default to the
        last turn's, and an infra error given here or recorded on any turn marks the episode infra."""
        if self.outcome is not None:
            raise ValueError(f"episode {self.episode_id} is already finished")
        last = self.turns[-1] if self.turns else None
        infra_error = infra_error or next((t.infra_error for t in self.turns if t.infra_error), None)
        self.outcome = Outcome(  # type: ignore[call-arg]
            return_=sum(t.reward for t in self.turns),
            success=bool(success) and infra_error is None,
            terminated=bool(last.terminated if terminated is None and last else terminated),
            truncated=bool(last.truncated if truncated is None and last else truncated),
            infra_error=infra_error,
            num_turns=len(self.turns),
        )
        self.finished_at = datetime.now(UTC).isoformat()
        return self


def _env_names(env: gym.Env | None) -> tuple[str, str]:
    """(env id, version) of an env as recorded when its reset did not report a task."""
    if env is None:
        return "unknown", "0"
    base = env.unwrapped
    env_id = getattr(base, "env_id", None) or (env.spec.id if env.spec else type(base).__name__)
    return str(env_id), str(getattr(base, "version", "0"))


class RateSummary(BaseModel):
    """Success over the episodes that ran: infra episodes are counted apart, never as failures."""

    episodes: int = 0
    infra_errors: int = 0
    successes: int = 0
    scored_turns: int = 0

    @classmethod
    def of(cls, episodes: Iterable[Episode]) -> RateSummary:
        summary = cls()
        for episode in episodes:
            summary.add(episode)
        return summary

    def add(self, episode: Episode) -> None:
        """Count one finished episode (unfinished ones are ignored)."""
        if episode.outcome is None:
            return
        self.episodes += 1
        if episode.outcome.infra_error is not None:
            self.infra_errors += 1
            return
        self.successes += bool(episode.outcome.success)
        self.scored_turns += episode.outcome.num_turns

    @property
    def scored(self) -> int:
        return self.episodes - self.infra_errors

    @property
    def success_rate(self) -> float | None:
        return self.successes / self.scored if self.scored else None

    @property
    def mean_turns(self) -> float | None:
        return self.scored_turns / self.scored if self.scored else None

    def short(self) -> str:
        """e.g. `ok 50% · 3.0 turns · 1 infra`: fits beside a progress bar on an 80-column terminal."""
        text = (
            "-"
            if not self.scored
            else f"ok {self.successes / self.scored:.0%} · {self.scored_turns / self.scored:.1f} turns"
        )
        return text + (f" · {self.infra_errors} infra" if self.infra_errors else "")

    def line(self) -> str:
        """e.g. `success rate 50.0% (1/2), mean turns 3.0, infra errors 1 (excluded)`."""
        text = "no scored episodes"
        if self.scored:
            text = f"success rate {self.successes / self.scored:.1%} ({self.successes}/{self.scored}), "
            text += f"mean turns {self.scored_turns / self.scored:.1f}"
        return text + (f", infra errors {self.infra_errors} (excluded)" if self.infra_errors else "")


_SURROGATE_PAIR = re.compile("[\ud800-\udbff][\udc00-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def json_line(record: BaseModel) -> str:
    """`record` as one line of JSON (aliases on), to append to a JSONL file.

    Why the fallback: a lone surrogate (a JSON "\\ud800" escape in an API's answer or in a client's action
    decodes to one) has no UTF-8 form, and pydantic refuses the whole record. It is kept, with U+FFFD in that
    character's place, instead of being lost with the episode. The usual record takes the fast path."""
    try:
        return record.model_dump_json(by_alias=True)
    except PydanticSerializationError:
        data = _valid_unicode(record.model_dump(mode="json", by_alias=True))
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def _valid_unicode(value: Any) -> Any:
    if isinstance(value, str):  # a surrogate pair spelled as two code points joins; a lone one becomes U+FFFD
        value = _SURROGATE_PAIR.sub(lambda m: m.group().encode("utf-16", "surrogatepass").decode("utf-16"), value)
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_valid_unicode(k): _valid_unicode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_valid_unicode(v) for v in value]
    return value


class TrajectoryWriter:
    """Appends finished episodes to a JSONL file, one fsync'd line each."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", encoding="utf-8")

    def write(self, episode: Episode) -> None:
        self._file.write(json_line(episode) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> TrajectoryWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def trim_torn_tail(path: str | os.PathLike[str]) -> bool:
    """Cut a torn last line (a run killed mid-write) so appending can continue; True if one was cut.

    Only for a file no other process is writing: run it before resuming, never beside a live writer.
    """
    p = Path(path)
    if not p.is_file():
        return False
    data = p.read_bytes()
    if not data or data.endswith(b"\n"):
        return False
    with p.open("r+b") as f:
        f.truncate(data.rfind(b"\n") + 1)
    return True


def read_episodes(path: str | os.PathLike[str], strict: bool = False) -> Iterator[Episode]:
    """Yield the episodes of a trajectory file.

    A torn final line (a run killed mid-write) is skipped unless `strict`; corruption anywhere else raises
    `TrajectoryError` naming the line.
    """
    p = Path(path)
    if not p.is_file():
        raise TrajectoryError(f"no trajectory file at {p}")
    lines = p.read_text(encoding="utf-8", errors="replace").split("\n")
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield Episode.model_validate(json.loads(line))
        except (json.JSONDecodeError, ValidationError) as exc:
            torn_tail = number - 1 == last and not p.read_bytes().endswith(b"\n")
            if torn_tail and not strict:
                return
            raise TrajectoryError(f"{p}:{number}: not a valid episode record ({str(exc)[:300]})") from exc
