"""The submission bundle: a versioned manifest, per-task predictions and the trajectories behind them.

Why this shape: the server must be able to re-grade every prediction from what it is sent, so a bundle carries
the exact env configuration (ids@versions, seeds, options, env kwargs, sandbox limits) and every action taken.
Every file is sha256-hashed in the manifest (tampering is detected) and the content digest of the parsed records
names the submission (re-uploads are detected, however the bytes are laid out). The packed form is a deterministic .tar.gz of three regular files.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from envgym.trajectory import Episode, json_line, read_episodes
from envgym.validation import problems

BUNDLE_FORMAT = "envgym-bundle"
BUNDLE_VERSION = 1
MANIFEST = "manifest.json"
PREDICTIONS = "predictions.jsonl"
TRAJECTORIES = "trajectories.jsonl"
FILE_NAMES = (MANIFEST, PREDICTIONS, TRAJECTORIES)
# Parsed records cost ~0.7 kB of memory per JSON object (pydantic models), whatever the bytes: 48 MiB of tiny
# turns took a server from 95 MiB to 2.3 GiB. So the objects a bundle file may hold are counted (every `{`,
# strings included: an upper bound) before anything is parsed. A run of 1,000 ten-turn episodes holds ~50k.
MAX_JSON_OBJECTS = 1_000_000


class BundleError(ValueError):
    """A bundle cannot be built, read or accepted; the message says what to fix."""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical_json(value: Any) -> bytes:
    """Key-sorted compact JSON: the bytes every hash in a bundle is taken over."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


# A name the board shows (model, agent): words of printable ASCII, one space between them. Why this strict: a NUL
# is refused by PostgreSQL's text columns (a 500 where a 400 is due), and control or format characters (bidi
# overrides, zero-width joiners), look-alike letters from other scripts or a trailing space would let one
# submission pose on the page as another's model.
BOARD_NAME = r"^[A-Za-z0-9._:/+()@#,=~-]+( [A-Za-z0-9._:/+()@#,=~-]+)*$"
PRINTABLE = r"^[ -~]*$"  # other free text of the manifest (versions, dates): printable ASCII


class FileEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    bytes: int = Field(ge=0)


class EnvSpec(BaseModel):
    """How one env was run: everything needed to rebuild its tasks exactly."""

    model_config = ConfigDict(extra="forbid")

    env_id: str
    version: str = Field(max_length=64, pattern=PRINTABLE)
    seeds: list[int]
    options: dict[str, Any] = Field(default_factory=dict)
    env_kwargs: dict[str, Any] = Field(default_factory=dict)
    sandbox_limits: dict[str, Any] | None = None


class Claimed(BaseModel):
    """What the submitter says it scored on one env. Shown next to the verified score; never trusted."""

    model_config = ConfigDict(extra="forbid")

    tasks: int = Field(ge=0)
    solved: int = Field(ge=0)
    mean_return: float


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: Literal["envgym-bundle"] = "envgym-bundle"
    format_version: Literal[1] = 1
    model: str = Field(min_length=1, max_length=200, pattern=BOARD_NAME)
    agent: str = Field(min_length=1, max_length=200, pattern=BOARD_NAME)
    envgym_version: str = Field(max_length=64, pattern=PRINTABLE)
    split: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    created_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(), max_length=64, pattern=PRINTABLE)
    envs: list[EnvSpec] = Field(min_length=1)
    config_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    files: dict[str, FileEntry]
    claimed: dict[str, Claimed] = Field(default_factory=dict)


class Prediction(BaseModel):
    """One task's answer: the SWE patch, or the final action for tools/puzzles, with what it claims to score."""

    model_config = ConfigDict(extra="forbid")

    task_key: str
    env_id: str
    env_version: str
    seed: int
    options: dict[str, Any] = Field(default_factory=dict)
    episode_id: str
    kind: Literal["patch", "answer"]
    patch: str | None = None
    answer: str | None = None
    claimed_return: float
    claimed_success: bool


class Bundle(BaseModel):
    """A bundle in memory: the manifest and the raw bytes of its files."""

    manifest: Manifest
    files: dict[str, bytes]

    def predictions(self) -> list[Prediction]:
        text = self._bounded_text(PREDICTIONS)
        return [Prediction.model_validate_json(line) for line in text.splitlines() if line.strip()]

    def episodes(self) -> list[Episode]:
        text = self._bounded_text(TRAJECTORIES)
        return [Episode.model_validate_json(line) for line in text.splitlines() if line.strip()]

    def _bounded_text(self, name: str) -> str:
        """The file's text, or a `BundleError` when parsing it could hold more than MAX_JSON_OBJECTS objects."""
        data = self.files[name]
        objects = data.count(b"{")
        if objects > MAX_JSON_OBJECTS:
            raise BundleError(
                f"{name} holds up to {objects:,} JSON objects; a bundle may hold at most {MAX_JSON_OBJECTS:,} "
                "(split the run into several bundles)"
            )
        return data.decode("utf-8")

    def content_digest(self, predictions: list[Prediction], episodes: list[Episode]) -> str:
        """Names the submission by what it says, not how its bytes are laid out: the manifest's configuration
        (without `created_at` and the file hashes) and every parsed record, in order. A blank line, CRLF line
        ends, another key order or number format make other bytes but the same content: a duplicate."""
        manifest = self.manifest.model_dump(mode="json", exclude={"created_at", "files"})
        content = {
            "manifest": manifest,
            "predictions": [p.model_dump(mode="json") for p in predictions],
            "episodes": [e.model_dump(mode="json") for e in episodes],
        }
        return sha256_hex(canonical_json(content))

    def pack(self) -> bytes:
        """A deterministic .tar.gz (fixed mtimes, sorted names) of the manifest and the files."""
        members = {MANIFEST: self.manifest.model_dump_json(indent=1).encode("utf-8"), **self.files}
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
            for name in sorted(members):
                info = tarfile.TarInfo(name)
                info.size, info.mtime, info.mode = len(members[name]), 0, 0o644
                tar.addfile(info, io.BytesIO(members[name]))
        return buffer.getvalue()

    def write_dir(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        (path / MANIFEST).write_text(self.manifest.model_dump_json(indent=1), encoding="utf-8")
        for name, data in self.files.items():
            (path / name).write_bytes(data)


# ----- reading ---------------------------------------------------------------------------------------------------
def unpack(data: bytes, max_unpacked_bytes: int = 256 * 1024 * 1024) -> Bundle:
    """Read a packed bundle without touching disk; only the three known regular files are accepted."""
    raw: dict[str, bytes] = {}
    total = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for member in tar:
                if member.name not in FILE_NAMES or not member.isreg():
                    raise BundleError(f"unexpected member {member.name!r} in the bundle; allowed: {FILE_NAMES}")
                if member.name in raw:
                    raise BundleError(f"the bundle holds {member.name} twice")
                total += member.size
                if total > max_unpacked_bytes:
                    raise BundleError(f"the bundle unpacks to more than {max_unpacked_bytes} bytes")
                handle = tar.extractfile(member)
                raw[member.name] = handle.read(member.size + 1) if handle is not None else b""
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise BundleError(f"not a bundle (.tar.gz): {exc}") from exc
    missing = [n for n in FILE_NAMES if n not in raw]
    if missing:
        raise BundleError(f"the bundle lacks {', '.join(missing)}")
    try:
        manifest = Manifest.model_validate_json(raw.pop(MANIFEST))
    except ValidationError as exc:  # fields and messages, never the submitted values
        raise BundleError(f"malformed manifest: {problems(exc, 'manifest')[:600]}") from None
    return Bundle(manifest=manifest, files=raw)


# ----- building --------------------------------------------------------------------------------------------------
def task_key(env_id: str, version: str, seed: int | None, options: dict[str, Any]) -> str:
    """One task's identity: env id@version, seed and a hash of the reset options."""
    return f"{env_id}@{version}#{seed}#{sha256_hex(canonical_json(options))[:12]}"


def is_patch_env(env_id: str) -> bool:
    """Envs whose prediction is a source patch (graded in a fresh sandbox) rather than a final action: the env
    class says so with `grades_patches = True` (unknown ids are not)."""
    from envgym.registry import entry

    try:
        env_class = entry(env_id).load_class()
    except KeyError:
        return False
    return bool(getattr(env_class, "grades_patches", False))


def config_hash(split: str, envs: list[EnvSpec]) -> str:
    """Hash of everything that decides which tasks were faced and under what limits."""
    specs = sorted((e.model_dump(mode="json") for e in envs), key=lambda s: s["env_id"])
    return sha256_hex(canonical_json({"split": split, "envs": specs}))


def env_specs(episodes: list[Episode]) -> list[EnvSpec]:
    """Per-env configuration derived from the trajectories (raises if one env was run two different ways)."""
    specs: dict[str, EnvSpec] = {}
    for ep in episodes:
        limits = (ep.sandbox or {}).get("limits")
        seen = specs.get(ep.env_id)
        if seen is None:
            specs[ep.env_id] = EnvSpec(
                env_id=ep.env_id,
                version=ep.env_version,
                seeds=[],
                options=ep.options,
                env_kwargs=ep.env_kwargs,
                sandbox_limits=limits,
            )
            seen = specs[ep.env_id]
        for field, mine, theirs in (
            ("version", seen.version, ep.env_version),
            ("options", seen.options, ep.options),
            ("env_kwargs", seen.env_kwargs, ep.env_kwargs),
        ):
            if mine != theirs:
                raise BundleError(f"{ep.env_id} was run with two different {field}: {mine!r} and {theirs!r}")
        if limits is not None and seen.sandbox_limits is not None and limits != seen.sandbox_limits:
            raise BundleError(f"{ep.env_id} was run under two different sandbox limits")
        if ep.seed is None:
            raise BundleError(f"episode {ep.episode_id} has no seed; leaderboard tasks must be seeded")
        seen.seeds.append(ep.seed)
    for spec in specs.values():
        spec.seeds.sort()
    return sorted(specs.values(), key=lambda s: s.env_id)


def claimed_scores(predictions: list[Prediction]) -> dict[str, Claimed]:
    out: dict[str, Claimed] = {}
    for env_id in sorted({p.env_id for p in predictions}):
        mine = [p for p in predictions if p.env_id == env_id]
        out[env_id] = Claimed(
            tasks=len(mine),
            solved=sum(p.claimed_success for p in mine),
            mean_return=sum(p.claimed_return for p in mine) / len(mine),
        )
    return out


def prediction_for(episode: Episode, patch_for: Callable[[Episode], str] | None = None) -> Prediction:
    """The prediction an episode makes: its final action, or (SWE) the source patch it submitted."""
    outcome = episode.outcome
    if outcome is None:
        raise BundleError(f"episode {episode.episode_id} never finished (no outcome)")
    if episode.seed is None:
        raise BundleError(f"episode {episode.episode_id} has no seed")
    patch_kind = is_patch_env(episode.env_id)
    patch: str | None = None
    if patch_kind:
        if patch_for is None:
            raise BundleError(f"{episode.env_id} predictions are patches; building them needs a patch extractor")
        patch = patch_for(episode)
    return Prediction(
        task_key=task_key(episode.env_id, episode.env_version, episode.seed, episode.options),
        env_id=episode.env_id,
        env_version=episode.env_version,
        seed=episode.seed,
        options=episode.options,
        episode_id=episode.episode_id,
        kind="patch" if patch_kind else "answer",
        patch=patch,
        answer=None if patch_kind else (episode.turns[-1].action if episode.turns else ""),
        claimed_return=outcome.return_,
        claimed_success=outcome.success,
    )


def find_trajectories(run_dir: Path) -> list[Path]:
    """`RUN_DIR/trajectories.jsonl` and any `trajectories.jsonl` below it (one run dir per env is fine)."""
    if run_dir.is_file():
        return [run_dir]
    paths = sorted(run_dir.rglob("trajectories.jsonl"))
    if not paths:
        raise BundleError(f"no trajectories.jsonl under {run_dir}; run `envgym run ... --out {run_dir}` first")
    return paths


def build_bundle(
    run_dir: Path,
    split: str = "dev",
    model: str | None = None,
    patch_for: Callable[[Episode], str] | None = None,
) -> Bundle:
    """Build a bundle from a run directory written by `envgym run` (or any trajectories.jsonl)."""
    episodes = [ep for path in find_trajectories(run_dir) for ep in read_episodes(path, strict=True)]
    if not episodes:
        raise BundleError(f"no episodes under {run_dir}")
    policies = Counter(ep.policy for ep in episodes)
    if len(policies) != 1:
        raise BundleError(f"a bundle holds one model's episodes; found policies {dict(policies)}")
    agent = next(iter(policies))
    predictions = [prediction_for(ep, patch_for) for ep in episodes]
    specs = env_specs(episodes)
    files = {
        PREDICTIONS: "".join(json_line(p) + "\n" for p in predictions).encode("utf-8"),
        TRAJECTORIES: "".join(json_line(ep) + "\n" for ep in episodes).encode("utf-8"),
    }
    from envgym import __version__

    try:
        manifest = Manifest(
            model=model or agent,
            agent=agent,
            envgym_version=__version__,
            split=split,
            envs=specs,
            config_hash=config_hash(split, specs),
            files={name: FileEntry(sha256=sha256_hex(data), bytes=len(data)) for name, data in files.items()},
            claimed=claimed_scores(predictions),
        )
    except ValidationError as exc:
        raise BundleError(
            f"cannot describe this run in a bundle ({problems(exc, 'manifest', 3)}); model and agent names are "
            "words of printable ASCII (letters, digits, ._:/+()@#,=~-) with single spaces between them"
        ) from None
    return Bundle(manifest=manifest, files=files)
