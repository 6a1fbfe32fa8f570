"""Episode and Turn records, and the append-only JSONL store every envgym command writes.

Why append-only JSONL with one fsync'd line per finished episode: a crashed run loses at most the episode in
flight, files from many runs concatenate, and any tool reads them line by line. The reader tolerates a torn
last line (the crash case) and names the line of any other corruption.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

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


class Turn(BaseModel):
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


class TrajectoryWriter:
    """Appends finished episodes to a JSONL file, one fsync'd line each."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", encoding="utf-8")

    def write(self, episode: Episode) -> None:
        self._file.write(episode.model_dump_json(by_alias=True) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> TrajectoryWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
