"""The submitting side: build and check a bundle from a run dir, optionally re-grade a sample locally, upload.

Why re-grade locally: a submitter learns that a trajectory does not reproduce (nondeterministic agent tooling,
an edited file) before the server says so; the server's verified score is still the only one that counts.

Why every reply is read through `_exchange` and a pydantic model: the server is trusted, but a broken or
misconfigured one (or a proxy in front of it) may send any body. A reply that is too large, not JSON or not the
expected shape is a `SubmitError` with one line, never a traceback; every string taken from a reply is passed
through `envgym.terminal.visible` before it can reach the terminal.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from envgym.extras import needs_extra
from envgym.leaderboard.bundle import Bundle, BundleError, build_bundle, is_patch_env
from envgym.leaderboard.regrade import TaskVerdict, verify_prediction
from envgym.leaderboard.validate import validate_bundle
from envgym.terminal import visible
from envgym.trajectory import Episode
from envgym.validation import problems

TOKEN_ENV = "ENVGYM_TOKEN"
MAX_REPLY_BYTES = 16 * 1024 * 1024  # a status reply is kilobytes; more is a broken server, not a bigger score


class SubmitError(RuntimeError):
    """The server refused the bundle or could not be reached; the message is the server's reason."""


def _patch_extractor(episode: Episode) -> str:
    from envgym.leaderboard.swe_patch import patch_from_replay

    try:
        return patch_from_replay(episode)
    except Exception as exc:
        raise BundleError(f"could not recover the patch of SWE episode {episode.episode_id}: {exc}") from exc


def prepare(run_dir: Path, split: str, model: str | None) -> Bundle:
    """Build the bundle from `run_dir` and validate it exactly as the server will."""
    bundle = build_bundle(run_dir, split=split, model=model, patch_for=_patch_extractor)
    validate_bundle(bundle)
    return bundle


def regrade_sample(bundle: Bundle, count: int, seed: int | None = None) -> list[TaskVerdict]:
    """Re-grade `count` random predictions locally (patches in fresh sandboxes, answers by replay)."""
    predictions, episodes = validate_bundle(bundle)
    by_id = {ep.episode_id: ep for ep in episodes}
    sample = random.Random(seed).sample(predictions, min(count, len(predictions)))
    return [verify_prediction(p, by_id[p.episode_id], replay_trajectory=is_patch_env(p.env_id)) for p in sample]


class Uploaded(BaseModel):
    """The server's 202 reply to an upload."""

    model_config = ConfigDict(strict=True)

    id: int = Field(ge=0, lt=10**18)
    status_url: str = Field(max_length=2000)


class EnvScore(BaseModel):
    """One env's verified score in a status reply (the fields `envgym submit` prints)."""

    model_config = ConfigDict(strict=True)

    success_rate: float
    ci_low: float = 0.0
    ci_high: float = 1.0
    claimed_success_rate: float
    mean_return: float
    graded: int
    tasks: int
    diverged: int


Reply = TypeVar("Reply", bound=BaseModel)


class GradeStatus(BaseModel):
    """A status reply: `status` (queued, grading, graded, failed, ...) and the scores so far."""

    model_config = ConfigDict(strict=True)

    status: str = Field(max_length=200)
    scores: dict[str, EnvScore] = Field(default_factory=dict)


def _exchange(client: Any, method: str, url: str, **kwargs: Any) -> tuple[int, bytes]:
    """Send one request; the status code and at most `MAX_REPLY_BYTES` of body, or a `SubmitError`."""
    import httpx

    try:
        with client.stream(method, url, **kwargs) as response:
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_REPLY_BYTES:
                    raise SubmitError(
                        f"HTTP {response.status_code}: the server's reply is over {MAX_REPLY_BYTES >> 20} MiB"
                    )
            return response.status_code, bytes(body)
    except httpx.HTTPError as exc:
        raise SubmitError(f"could not reach {visible(url)}: {visible(exc)}") from exc


def _json(body: bytes) -> Any:
    """The JSON value of a reply body, or None when it is not JSON (deeply nested counts as not JSON)."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None


def _reply(body: bytes, model: type[Reply], what: str) -> Reply:
    """`body` parsed as `model`, or a `SubmitError` naming what was wrong with it (never the body's values)."""
    try:
        return model.model_validate(_json(body))
    except ValidationError as exc:
        raise SubmitError(f"{what} is not readable ({visible(problems(exc, 'body', 3))})") from None


def _reason(status_code: int, body: bytes) -> str:
    """The server's reason for a refusal: `{"error", "problems"}` when it sent that, else the body's text."""
    value = _json(body)
    words: list[Any] = []
    if isinstance(value, dict):
        problems = value.get("problems")
        words = problems if isinstance(problems, list) and problems else [value.get("error")]
    words = [w for w in words if w is not None and w != ""]
    if not words:  # not the documented error shape: show what came (a proxy's page, a list, ...)
        words = [body.decode("utf-8", errors="replace") or "(empty reply)"]
    return f"HTTP {status_code}: " + visible("; ".join(str(w) for w in words[:20]), 500)


def upload(bundle: Bundle, url: str, token: str, timeout: float = 60.0) -> Uploaded:
    """POST the bundle; the server's 202 reply, or a `SubmitError` with its reason (or why it is unreadable)."""
    with needs_extra("server"):
        import httpx

    with httpx.Client(timeout=timeout) as client:
        status_code, body = _exchange(
            client,
            "POST",
            url.rstrip("/") + "/api/submissions",
            content=bundle.pack(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/gzip"},
        )
    if status_code != 202:
        raise SubmitError(f"upload rejected: {_reason(status_code, body)}")
    return _reply(body, Uploaded, "the server accepted the upload (HTTP 202), but its reply")


def wait_for_grade(url: str, submission_id: int, timeout: float = 600.0, poll: float = 1.0) -> GradeStatus:
    """Poll the status endpoint until the submission is graded or failed (or `timeout` passes)."""
    with needs_extra("server"):
        import httpx

    deadline = time.monotonic() + timeout
    status = GradeStatus(status="unknown")
    with httpx.Client(timeout=30.0) as client:
        while time.monotonic() < deadline:
            status_code, body = _exchange(client, "GET", url.rstrip("/") + f"/api/submissions/{submission_id}")
            if status_code != 200:
                raise SubmitError(f"status of submission #{submission_id}: {_reason(status_code, body)}")
            status = _reply(body, GradeStatus, f"status of submission #{submission_id}: the reply (HTTP 200)")
            if status.status in ("graded", "failed"):
                return status
            time.sleep(poll)
    return status
