"""The submitting side: build and check a bundle from a run dir, optionally re-grade a sample locally, upload.

Why re-grade locally: a submitter learns that a trajectory does not reproduce (nondeterministic agent tooling,
an edited file) before the server says so; the server's verified score is still the only one that counts.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from envgym.extras import needs_extra
from envgym.leaderboard.bundle import Bundle, BundleError, build_bundle, is_patch_env
from envgym.leaderboard.regrade import TaskVerdict, verify_prediction
from envgym.leaderboard.validate import validate_bundle
from envgym.trajectory import Episode

TOKEN_ENV = "ENVGYM_TOKEN"


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
    id: int
    status_url: str


def upload(bundle: Bundle, url: str, token: str, timeout: float = 60.0) -> Uploaded:
    with needs_extra("server"):
        import httpx

    data = bundle.pack()
    try:
        response = httpx.post(
            url.rstrip("/") + "/api/submissions",
            content=data,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/gzip"},
            timeout=timeout,
        )
    except httpx.HTTPError as exc:
        raise SubmitError(f"could not reach {url}: {exc}") from exc
    if response.status_code != 202:
        raise SubmitError(_reason(response))
    body = response.json()
    return Uploaded(id=int(body["id"]), status_url=str(body["status_url"]))


def _reason(response: Any) -> str:
    try:
        body = response.json()
        problems = body.get("problems") or [body.get("error")]
        return f"HTTP {response.status_code}: " + "; ".join(str(p) for p in problems)
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:500]}"


def wait_for_grade(url: str, submission_id: int, timeout: float = 600.0, poll: float = 1.0) -> dict[str, Any]:
    """Poll the status endpoint until the submission is graded or failed (or `timeout` passes)."""
    with needs_extra("server"):
        import httpx

    deadline = time.monotonic() + timeout
    status: dict[str, Any] = {}
    with httpx.Client(timeout=30.0) as client:
        while time.monotonic() < deadline:
            response = client.get(url.rstrip("/") + f"/api/submissions/{submission_id}")
            if response.status_code != 200:
                raise SubmitError(_reason(response))
            status = response.json()
            if status["status"] in ("graded", "failed"):
                return status
            time.sleep(poll)
    return status
