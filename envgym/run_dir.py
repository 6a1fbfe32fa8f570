"""Run directories that resume: the command that filled one is stored in it, and only that command continues it.

Why: re-running `envgym run ... --out DIR` used to append a second copy of every episode (and `submit` then
rejected the bundle). Now `DIR/run.json` records the command and its settings; the same command skips the
tasks whose episodes are already in `DIR/trajectories.jsonl`, and a different command is refused. Nothing is
written until the first episode finishes, so a command that fails on bad input leaves no half-made run behind.
"""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from envgym.trajectory import Episode, TrajectoryWriter, read_episodes, trim_torn_tail

MANIFEST = "run.json"
TRAJECTORIES = "trajectories.jsonl"


class RunConflict(ValueError):
    """The run directory holds a different run."""


class RunManifest(BaseModel):
    """What made a run directory: the command, the settings that decide which episodes it holds, the argv."""

    command: str
    config: dict[str, Any] = Field(description="settings that must match to resume (not the episode count)")
    argv: list[str] = Field(default_factory=list)
    resume: str = Field(description="the shell command that continues this run")
    created_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat())
    envgym_version: str = "0.1.0"


def shell_command(words: list[str]) -> str:
    """Words joined for a shell, quoted where needed."""
    return " ".join(shlex.quote(w) for w in words)


def invocation_words(ctx: Any, always: Collection[str] = (), prog: str = "envgym") -> list[str]:
    """The command line that reproduces a click/typer invocation: its path, arguments and the options that are
    not at their default, plus those named in `always` (what a reader needs to see, e.g. the env and --out).

    Why from the parsed values and not `sys.argv`: the command may come from a test or a wrapper, and the
    resume line must name every setting in a canonical spelling whatever abbreviation the user typed.
    """
    words = [prog, *ctx.command_path.split()[1:]]
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if param.param_type_name == "argument":
            words += [str(value)] if value is not None else []
            continue
        if value is None or (value == param.default and param.name not in always) or not param.opts:
            continue
        if getattr(param, "is_flag", False) and isinstance(value, bool):
            flag = param.opts[0] if value else (param.secondary_opts or [None])[0]
            words += [flag] if flag else []
        else:
            words += [param.opts[0], str(value)]
    return words


class RunDir:
    """One run directory: check it before a run (`open`), then write episodes lazily through it."""

    def __init__(self, out: Path, manifest: RunManifest, finished: list[Episode]) -> None:
        self.out = out
        self.manifest = manifest
        self.finished = finished
        self.written = 0
        self._writer: TrajectoryWriter | None = None

    @property
    def trajectories(self) -> Path:
        return self.out / TRAJECTORIES

    @classmethod
    def open(
        cls,
        out: Path,
        command: str,
        config: dict[str, Any],
        resume: str,
        same_run: Callable[[Episode], bool] | None = None,
    ) -> RunDir:
        """Check `out`: empty or missing starts fresh, the same command resumes, anything else is a `RunConflict`.

        `same_run` adopts a directory written before run.json existed: it resumes when every recorded episode
        passes it (same env, policy and options), instead of refusing a directory the same command made.
        """
        manifest = RunManifest(command=command, config=config, argv=list(sys.argv), resume=resume)
        if out.exists() and not out.is_dir():
            raise RunConflict(f"--out {out} is a file, not a run directory")
        if not out.exists() or not any(out.iterdir()):
            return cls(out, manifest, [])
        stored_path = out / MANIFEST
        if same_run is not None and {p.name for p in out.iterdir()} == {TRAJECTORIES}:
            trim_torn_tail(out / TRAJECTORIES)
            finished = list(read_episodes(out / TRAJECTORIES))
            if all(same_run(e) for e in finished):
                return cls(out, manifest, finished)
        if not stored_path.is_file():
            raise RunConflict(f"{out} is not empty and was not made by `envgym {command}`; choose another --out")
        try:
            stored = RunManifest.model_validate_json(stored_path.read_text(encoding="utf-8"))
        except ValidationError as exc:
            raise RunConflict(f"{stored_path} is not a run manifest ({exc.error_count()} problems)") from exc
        if (stored.command, stored.config) != (command, config):
            raise RunConflict(
                f"{out} holds a different run ({stored.resume}); use another --out or delete that directory"
            )
        trim_torn_tail(out / TRAJECTORIES)  # the episode in flight when the last run died is run again
        finished = list(read_episodes(out / TRAJECTORIES)) if (out / TRAJECTORIES).is_file() else []
        return cls(out, manifest, finished)

    def saved(self) -> int:
        """How many whole episodes the trajectory file holds now."""
        return sum(1 for _ in read_episodes(self.trajectories)) if self.trajectories.is_file() else 0

    def recorded(self, seeds: range) -> int:
        """How many of these task seeds already have a finished episode here."""
        return len({e.seed for e in self.finished if e.seed in seeds})

    def resuming_line(self, seeds: range) -> str | None:
        """What a resumed run says first (None for a fresh one)."""
        if not self.finished:
            return None
        return f"resuming {self.out}: {self.recorded(seeds)} of {len(seeds)} episodes already recorded"

    def interrupted_line(self, episodes: int) -> str:
        """What Ctrl-C says: episodes saved (read back: the signal may have landed between a write and any
        tally) and the command that continues."""
        return (
            f"interrupted: {self.saved()} of {episodes} episodes saved in {self.trajectories}; "
            f"resume with: {self.manifest.resume}"
        )

    def write(self, episode: Episode) -> None:
        """Append one finished episode; the first write creates the directory, the manifest and the file."""
        if self._writer is None:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / MANIFEST).write_text(json.dumps(self.manifest.model_dump(), indent=2) + "\n")
            self._writer = TrajectoryWriter(self.trajectories)
        self._writer.write(episode)
        self.written += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()

    def __enter__(self) -> RunDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
