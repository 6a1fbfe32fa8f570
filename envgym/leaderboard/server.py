"""The leaderboard server: accepts bundles from token holders, re-grades them in the background, ranks them.

Why this order of checks on upload: cheap rejections first (token, size, archive, manifest schema, hashes,
consistency, split), so a hostile upload costs little; only then is a bundle stored and a grading job queued.
Nothing a submitter sends is used as a score: the ranking reads only the grader's per-task results.
"""

from __future__ import annotations

import html
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from envgym.leaderboard.bundle import BundleError, unpack
from envgym.leaderboard.db import (
    Job,
    Submission,
    TaskResult,
    make_engine,
    requeue_interrupted,
    session_factory,
    submitter_for,
)
from envgym.leaderboard.ranking import leaderboard, submission_scores
from envgym.leaderboard.splits import DEFAULT_SPLITS, SplitSpec
from envgym.leaderboard.validate import BundleInvalid, validate_bundle
from envgym.leaderboard.worker import GradingWorker, draw_replay_sample


class ServerSettings(BaseModel):
    db_url: str = "sqlite:///leaderboard.db"
    max_bundle_bytes: int = 50 * 1024 * 1024
    max_unpacked_bytes: int = 256 * 1024 * 1024
    replay_fraction: float = 0.25
    task_pause_s: float = 0.0
    splits: dict[str, SplitSpec] = dict(DEFAULT_SPLITS)
    grade: bool = True


def _installed_version(env_id: str) -> str | None:
    import gymnasium as gym

    import envgym  # noqa: F401

    spec = gym.registry.get(env_id)
    if spec is None:
        return None
    entry = spec.entry_point
    if isinstance(entry, str):
        module, _, name = entry.partition(":")
        import importlib

        cls = getattr(importlib.import_module(module), name)
    else:
        cls = entry
    return str(getattr(cls, "version", ""))


def _error(status: int, message: str, problems: list[str] | None = None) -> HTTPException:
    return HTTPException(status_code=status, detail={"error": message, "problems": problems or [message]})


def create_app(settings: ServerSettings) -> FastAPI:
    engine = make_engine(settings.db_url)
    sessions = session_factory(engine)
    worker = GradingWorker(sessions, task_pause_s=settings.task_pause_s)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        with sessions() as session:
            requeue_interrupted(session)
        if settings.grade:
            worker.start()
        yield
        worker.stop()
        engine.dispose()

    app = FastAPI(title="envgym leaderboard", lifespan=lifespan)
    app.state.worker, app.state.sessions = worker, sessions

    def authenticate(request: Request) -> str:
        header = request.headers.get("authorization", "")
        token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
        if not token:
            raise _error(
                401, "missing API token: send 'Authorization: Bearer <token>' (ENVGYM_TOKEN for envgym submit)"
            )
        with sessions() as session:
            submitter = submitter_for(session, token)
        if submitter is None:
            raise _error(401, "invalid or revoked API token; ask the leaderboard admin for one")
        return submitter

    async def read_body(request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > settings.max_bundle_bytes:
            raise _error(413, f"bundle of {int(declared)} bytes exceeds the {settings.max_bundle_bytes}-byte limit")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > settings.max_bundle_bytes:
                raise _error(413, f"bundle exceeds the {settings.max_bundle_bytes}-byte limit")
            chunks.append(chunk)
        return b"".join(chunks)

    @app.exception_handler(HTTPException)
    async def _http_error(_: Request, exc: HTTPException) -> JSONResponse:
        detail = (
            exc.detail if isinstance(exc.detail, dict) else {"error": str(exc.detail), "problems": [str(exc.detail)]}
        )
        return JSONResponse(status_code=exc.status_code, content=detail)

    @app.get("/api/health")
    def health() -> dict[str, Any]:
        return {"ok": True, "splits": sorted(settings.splits)}

    @app.post("/api/submissions", status_code=202)
    async def submit(request: Request) -> dict[str, Any]:
        submitter = authenticate(request)
        data = await read_body(request)
        try:
            bundle = await run_in_threadpool(unpack, data, settings.max_unpacked_bytes)
            predictions, _ = await run_in_threadpool(validate_bundle, bundle)
        except BundleInvalid as exc:
            raise _error(400, str(exc), exc.problems) from exc
        except BundleError as exc:
            raise _error(400, str(exc)) from exc
        manifest = bundle.manifest
        split = settings.splits.get(manifest.split)
        if split is None:
            raise _error(422, f"unknown split {manifest.split!r}; this server ranks {sorted(settings.splits)}")
        problems = [p for spec in manifest.envs for p in split.check(spec)]
        for spec in manifest.envs:
            installed = _installed_version(spec.env_id)
            if installed is None:
                problems.append(f"{spec.env_id} is not an env this server can grade")
            elif installed != spec.version:
                problems.append(f"{spec.env_id}@{spec.version}: this server grades @{installed}; re-run with it")
        if problems:
            raise _error(422, "the bundle does not match its split", problems)
        digest = manifest.digest()
        with sessions() as session:
            existing = session.scalar(select(Submission).where(Submission.digest == digest))
            if existing is not None:
                raise _error(409, f"duplicate submission: this bundle was already submitted as #{existing.id}")
            submission = Submission(
                submitter=submitter,
                digest=digest,
                model=manifest.model,
                agent=manifest.agent,
                split=manifest.split,
                manifest=manifest.model_dump(mode="json"),
                bundle=data,
                num_tasks=len(predictions),
            )
            session.add(submission)
            try:
                session.flush()
                session.add(
                    Job(
                        submission_id=submission.id,
                        replay_sample=draw_replay_sample(predictions, settings.replay_fraction),
                    )
                )
                session.commit()
            except IntegrityError as exc:
                session.rollback()
                raise _error(409, "duplicate submission: this bundle was already submitted") from exc
            submission_id = submission.id
        worker.wake()
        return {"id": submission_id, "status": "queued", "status_url": f"/api/submissions/{submission_id}"}

    @app.get("/api/submissions/{submission_id}")
    def status(submission_id: int) -> dict[str, Any]:
        with sessions() as session:
            submission = session.get(Submission, submission_id)
            if submission is None:
                raise _error(404, f"no submission #{submission_id}")
            job = session.scalar(select(Job).where(Job.submission_id == submission_id))
            graded = session.scalar(
                select(func.count()).select_from(TaskResult).where(TaskResult.submission_id == submission_id)
            )
            flagged = [
                {"task_key": r.task_key, "divergence": r.divergence}
                for r in session.scalars(
                    select(TaskResult).where(TaskResult.submission_id == submission_id, TaskResult.diverged)
                )
            ]
            return {
                "id": submission.id,
                "submitter": submission.submitter,
                "model": submission.model,
                "split": submission.split,
                "status": submission.status,
                "error": submission.error,
                "job": {"state": job.state, "attempts": job.attempts} if job is not None else None,
                "progress": {"graded": int(graded or 0), "total": submission.num_tasks},
                "scores": {k: v.model_dump() for k, v in submission_scores(session, submission).items()},
                "divergences": flagged,
            }

    @app.get("/api/submissions/{submission_id}/tasks")
    def tasks(submission_id: int) -> list[dict[str, Any]]:
        with sessions() as session:
            rows = session.scalars(select(TaskResult).where(TaskResult.submission_id == submission_id))
            return [
                {
                    c: getattr(r, c)
                    for c in (
                        "task_key",
                        "env_id",
                        "seed",
                        "verified_return",
                        "verified_success",
                        "claimed_return",
                        "claimed_success",
                        "method",
                        "replayed",
                        "diverged",
                        "divergence",
                        "infra_error",
                        "duration_s",
                    )
                }
                for r in rows
            ]

    @app.get("/api/leaderboard")
    def ranking(split: str | None = None, env: str | None = None) -> list[dict[str, Any]]:
        with sessions() as session:
            return [row.model_dump() for row in leaderboard(session, split, env)]

    @app.get("/", response_class=HTMLResponse)
    def page(split: str | None = None) -> str:
        with sessions() as session:
            rows = leaderboard(session, split)
        return render_page(rows)

    return app


PAGE_CSS = """body{font-family:system-ui,sans-serif;margin:2rem;color:#222}h2{margin-top:2rem}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}
th{background:#f3f3f3}.num{text-align:right}.warn{color:#b45309}"""


def render_page(rows: list[Any]) -> str:
    """The HTML leaderboard: one table per (split, env), verified scores only (claims shown for contrast)."""
    groups: dict[tuple[str, str], list[Any]] = {}
    for row in rows:
        groups.setdefault((row.split, row.env_id), []).append(row)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>envgym leaderboard</title>",
        f"<style>{PAGE_CSS}</style></head><body><h1>envgym leaderboard</h1>",
        "<p>Scores are re-graded by this server in fresh environments and sandboxes; claimed scores are shown only "
        "for comparison.</p>",
    ]
    if not groups:
        parts.append("<p id='empty'>No graded submissions yet.</p>")
    for (split, env_id), members in sorted(groups.items()):
        esc = html.escape
        parts.append(f"<h2>{esc(env_id)} <small>split {esc(split)}</small></h2>")
        parts.append(
            f"<table class='board' data-env='{esc(env_id)}' data-split='{esc(split)}'><thead><tr><th>rank</th>"
            "<th>model</th><th>agent</th><th>submitter</th><th>verified success</th><th>mean return</th>"
            "<th>claimed success</th><th>tasks</th><th>diverged</th><th>submission</th></tr></thead><tbody>"
        )
        for r in members:
            flag = " class='warn'" if r.diverged else ""
            parts.append(
                f"<tr data-submission='{r.submission_id}'><td class='num'>{r.rank}</td><td>{esc(r.model)}</td>"
                f"<td>{esc(r.agent)}</td><td>{esc(r.submitter)}</td>"
                f"<td class='num verified'>{r.success_rate:.1%}</td><td class='num'>{r.mean_return:.3f}</td>"
                f"<td class='num'>{r.claimed_success_rate:.1%}</td><td class='num'>{r.tasks}</td>"
                f"<td class='num'{flag}>{r.diverged}</td><td>#{r.submission_id}</td></tr>"
            )
        parts.append("</tbody></table>")
    parts.append("</body></html>")
    return "".join(parts)


def serve(settings: ServerSettings, host: str = "127.0.0.1", port: int = 8000) -> None:
    import uvicorn

    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")


def settings_from(db: str, splits_file: Path | None, **kwargs: Any) -> ServerSettings:
    from envgym.leaderboard.splits import load_splits

    return ServerSettings(db_url=db, splits=load_splits(splits_file), **kwargs)
