"""The leaderboard server: accepts bundles from token holders, re-grades them in the background, ranks them.

Why this order of checks on upload (docs/leaderboard.md, "Verification steps"): cheap rejections first -- token,
size, archive and manifest schema, hashes, content consistency, duplicate, split and versions, isolation
boundary -- so a hostile upload costs little; only then is a bundle stored and a grading job queued. Hashes come
before the duplicate check so a tampered re-upload is answered 400 (tampered), not 409; the duplicate check
follows the content check because it compares parsed content (bundle.content_digest), not bytes. Every request is bounded: body size,
header and query lengths, and path ids (anything that is not a stored submission id is a 404, never a 500).
Nothing a submitter sends is used as a score: the ranking reads only the grader's per-task results.
"""

from __future__ import annotations

import html
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel

from envgym.extras import needs_extra

with needs_extra("server", also=("starlette",)):  # a missing one names the extra to install
    from fastapi import FastAPI, HTTPException, Query, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import HTMLResponse, JSONResponse
    from sqlalchemy import func, select
    from sqlalchemy.exc import IntegrityError
    from starlette.concurrency import run_in_threadpool

from envgym.leaderboard.boundary import Boundary, BoundaryChoice, probe
from envgym.leaderboard.bundle import Bundle, BundleError, unpack
from envgym.leaderboard.db import (
    Job,
    Submission,
    TaskResult,
    make_engine,
    requeue_interrupted,
    session_factory,
    submitter_for,
)
from envgym.leaderboard.ranking import is_reference, leaderboard, submission_scores
from envgym.leaderboard.splits import DEFAULT_SPLITS, SplitSpec
from envgym.leaderboard.validate import BundleInvalid, check_hashes, validate_bundle
from envgym.leaderboard.worker import GradingWorker, draw_replay_sample
from envgym.validation import error_list


class ServerSettings(BaseModel):
    db_url: str = "sqlite:///leaderboard.db"
    max_bundle_bytes: int = 50 * 1024 * 1024
    max_unpacked_bytes: int = 256 * 1024 * 1024
    replay_fraction: float = 0.25
    task_pause_s: float = 0.0
    splits: dict[str, SplitSpec] = dict(DEFAULT_SPLITS)
    grade: bool = True
    sandbox: BoundaryChoice = "auto"


def _installed_version(env_id: str) -> str | None:
    """The version this server grades `env_id` at, or None when it is not one of envgym's own envs.

    envgym's registry, not gymnasium's: any other gymnasium id (CartPole-v1, or one whose module cannot even be
    imported here) is not an env this server can replay or grade, and must be a 422, never a 500."""
    from envgym.registry import entry

    try:
        return str(getattr(entry(env_id).load_class(), "version", ""))
    except (KeyError, ImportError, AttributeError):
        return None


MAX_TOKEN_CHARS = 200
MAX_ID_DIGITS = 18  # below 2**63: any SQL integer column holds it
SplitQuery = Annotated[str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
EnvQuery = Annotated[str | None, Query(max_length=100, pattern=r"^[A-Za-z0-9_./-]+$")]


def _stored(session: Any, submission_id: str) -> Submission:
    """The submission a path id names, or 404: absent, overlong or non-numeric ids are all simply not there."""
    shown = submission_id if len(submission_id) <= 30 else submission_id[:27] + "..."
    if not (submission_id.isascii() and submission_id.isdigit() and len(submission_id) <= MAX_ID_DIGITS):
        raise _error(404, f"no submission #{shown}")
    submission = session.get(Submission, int(submission_id))
    if submission is None:
        raise _error(404, f"no submission #{shown}")
    return submission  # type: ignore[no-any-return]


def _error(status: int, message: str, problems: list[str] | None = None) -> HTTPException:
    return HTTPException(status_code=status, detail={"error": message, "problems": problems or [message]})


def create_app(settings: ServerSettings) -> FastAPI:
    engine = make_engine(settings.db_url)
    sessions = session_factory(engine)
    worker = GradingWorker(sessions, task_pause_s=settings.task_pause_s)
    boundary = Boundary(kind=None, docker=False, problems={"all": "not probed yet (the server is starting)"})

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        nonlocal boundary
        boundary = await run_in_threadpool(probe, settings.sandbox)
        worker.sandbox = boundary.kind
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
        if len(token) > MAX_TOKEN_CHARS:
            raise _error(401, "invalid or revoked API token; ask the leaderboard admin for one")
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

    @app.exception_handler(RequestValidationError)
    async def _bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [line[:200] for line in error_list(exc.errors(), "body", 10)]
        return JSONResponse(status_code=422, content={"error": "invalid request", "problems": problems})

    @app.exception_handler(HTTPException)
    async def _http_error(_: Request, exc: HTTPException) -> JSONResponse:
        detail = (
            exc.detail if isinstance(exc.detail, dict) else {"error": str(exc.detail), "problems": [str(exc.detail)]}
        )
        return JSONResponse(status_code=exc.status_code, content=detail)

    parsing = threading.BoundedSemaphore(1)

    @app.get("/api/health")
    def health() -> dict[str, Any]:
        return {"ok": True, "splits": sorted(settings.splits)}

    def check_upload(data: bytes) -> tuple[Bundle, list[Any], str]:
        """Checks 3-8 of the documented order; raises the HTTP error of the first that fails."""
        try:
            bundle = unpack(data, settings.max_unpacked_bytes)  # archive + manifest schema
        except BundleError as exc:
            raise _error(400, str(exc)) from exc
        tampered = check_hashes(bundle)
        if tampered:
            raise _error(400, f"invalid bundle: {'; '.join(tampered)[:600]}", tampered)
        with parsing:  # one bundle parsed at a time: each may take up to MAX_JSON_OBJECTS objects of memory
            try:
                predictions, episodes = validate_bundle(bundle)
            except BundleInvalid as exc:
                raise _error(400, str(exc), exc.problems) from exc
            except BundleError as exc:
                raise _error(400, str(exc)) from exc
            digest = bundle.content_digest(predictions, episodes)
            del episodes
        with sessions() as session:
            existing = session.scalar(select(Submission.id).where(Submission.digest == digest))
        if existing is not None:
            raise _error(409, f"duplicate submission: this run was already submitted as #{existing}")
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
        refusals = [why for spec in manifest.envs if (why := boundary.refusal(spec.env_id))]
        if refusals:
            raise _error(422, refusals[0], refusals)
        return bundle, predictions, digest

    @app.post("/api/submissions", status_code=202)
    async def submit(request: Request) -> dict[str, Any]:
        submitter = authenticate(request)
        data = await read_body(request)
        bundle, predictions, digest = await run_in_threadpool(check_upload, data)
        manifest = bundle.manifest
        with sessions() as session:
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
            except IntegrityError as exc:  # the same bundle raced in between the check and here
                session.rollback()
                raise _error(409, "duplicate submission: this bundle was already submitted") from exc
            submission_id = submission.id
        worker.wake()
        return {"id": submission_id, "status": "queued", "status_url": f"/api/submissions/{submission_id}"}

    @app.get("/api/submissions/{submission_id}")
    def status(submission_id: str) -> dict[str, Any]:
        with sessions() as session:
            submission = _stored(session, submission_id)
            job = session.scalar(select(Job).where(Job.submission_id == submission.id))
            graded = session.scalar(
                select(func.count()).select_from(TaskResult).where(TaskResult.submission_id == submission.id)
            )
            flagged = [
                {"task_key": r.task_key, "divergence": r.divergence}
                for r in session.scalars(
                    select(TaskResult).where(TaskResult.submission_id == submission.id, TaskResult.diverged)
                )
            ]
            return {
                "id": submission.id,
                "submitter": submission.submitter,
                "model": submission.model,
                "agent": submission.agent,
                "reference": is_reference(submission.agent),
                "date": submission.created_at.date().isoformat(),
                "split": submission.split,
                "status": submission.status,
                "error": submission.error,
                "job": {"state": job.state, "attempts": job.attempts} if job is not None else None,
                "progress": {"graded": int(graded or 0), "total": submission.num_tasks},
                "scores": {k: v.model_dump() for k, v in submission_scores(session, submission).items()},
                "divergences": flagged,
            }

    @app.get("/api/submissions/{submission_id}/tasks")
    def tasks(submission_id: str) -> list[dict[str, Any]]:
        with sessions() as session:
            submission = _stored(session, submission_id)
            rows = session.scalars(
                select(TaskResult).where(TaskResult.submission_id == submission.id).order_by(TaskResult.id)
            )
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
    def ranking(split: SplitQuery = None, env: EnvQuery = None) -> list[dict[str, Any]]:
        with sessions() as session:
            return [row.model_dump() for row in leaderboard(session, split, env)]

    @app.get("/submissions/{submission_id}", response_class=HTMLResponse)
    def submission_page(submission_id: str) -> str:
        return render_submission(status(submission_id), tasks(submission_id))

    @app.get("/", response_class=HTMLResponse)
    def page(split: SplitQuery = None) -> str:
        with sessions() as session:
            rows = leaderboard(session, split)
        return render_page(rows)

    return app


PAGE_CSS = """body{font-family:system-ui,sans-serif;margin:2rem;color:#222}h2{margin-top:2rem}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}
th{background:#f3f3f3}.num{text-align:right}.warn{color:#b45309}tr.reference{color:#666;font-style:italic}
.ci{color:#666;font-size:.85em}"""
HEAD = "<!doctype html><html><head><meta charset='utf-8'><title>{title}</title><style>{css}</style></head><body>"


def _rate(rate: float, low: float, high: float) -> str:
    return f"{rate:.1%} <span class='ci'>[{low:.0%}&ndash;{high:.0%}]</span>"


def render_page(rows: list[Any]) -> str:
    """The HTML leaderboard: one table per (split, env), verified scores only (claims shown for contrast).

    Each rate carries its Wilson 95% interval; reference agents are listed below the ranked rows, unranked.
    """
    esc = html.escape
    groups: dict[tuple[str, str], list[Any]] = {}
    for row in rows:
        groups.setdefault((row.split, row.env_id), []).append(row)
    parts = [
        HEAD.format(title="envgym leaderboard", css=PAGE_CSS),
        "<h1>envgym leaderboard</h1>",
        "<p>Scores are re-graded by this server in fresh environments and sandboxes; claimed scores are shown only "
        "for comparison. Brackets give the 95% (Wilson) interval of the success rate; tasks whose grading failed on "
        "the server's side (infra) are left out of rates. Reference agents (the scripted oracle and random agent) "
        "are shown in italics and not ranked.</p>",
    ]
    if not groups:
        parts.append("<p id='empty'>No graded submissions yet.</p>")
    for (split, env_id), members in sorted(groups.items()):
        parts.append(f"<h2>{esc(env_id)} <small>split {esc(split)}</small></h2>")
        parts.append(
            f"<table class='board' data-env='{esc(env_id)}' data-split='{esc(split)}'><thead><tr><th>rank</th>"
            "<th>model</th><th>agent</th><th>submitter</th><th>verified success [95% CI]</th><th>mean return</th>"
            "<th>claimed success</th><th>tasks</th><th>infra</th><th>diverged</th><th>date</th><th>submission</th>"
            "</tr></thead><tbody>"
        )
        for r in members:
            flag = " class='warn'" if r.diverged else ""
            rank = "reference" if r.reference else str(r.rank)
            css = " class='reference'" if r.reference else ""
            parts.append(
                f"<tr data-submission='{r.submission_id}'{css}><td class='num'>{rank}</td><td>{esc(r.model)}</td>"
                f"<td>{esc(r.agent)}</td><td>{esc(r.submitter)}</td>"
                f"<td class='num verified'>{_rate(r.success_rate, r.ci_low, r.ci_high)}</td>"
                f"<td class='num'>{r.mean_return:.3f}</td>"
                f"<td class='num'>{r.claimed_success_rate:.1%}</td><td class='num'>{r.tasks}</td>"
                f"<td class='num'>{r.infra_errors}</td><td class='num'{flag}>{r.diverged}</td>"
                f"<td>{esc(r.date)}</td><td><a href='/submissions/{r.submission_id}'>#{r.submission_id}</a></td></tr>"
            )
        parts.append("</tbody></table>")
    parts.append("</body></html>")
    return "".join(parts)


def render_submission(status: dict[str, Any], tasks: list[dict[str, Any]]) -> str:
    """One submission's page: who, when, per-env verified scores with intervals, and every task's verdict."""
    esc = html.escape
    sid = status["id"]
    parts = [
        HEAD.format(title=f"envgym submission #{sid}", css=PAGE_CSS),
        f"<h1>Submission #{sid}: {esc(status['model'])}</h1>",
        f"<p>agent {esc(status['agent'])}{' (reference agent, not ranked)' if status['reference'] else ''}, "
        f"submitted by {esc(status['submitter'])} on {esc(status['date'])}, split {esc(status['split'])}, "
        f"status <b>{esc(status['status'])}</b>"
        + (f" ({esc(status['error'] or '')})" if status.get("error") else "")
        + f"; graded {status['progress']['graded']}/{status['progress']['total']}.</p>",
        "<table class='scores'><thead><tr><th>env</th><th>verified success [95% CI]</th><th>mean return</th>"
        "<th>claimed success</th><th>tasks</th><th>infra</th><th>diverged</th></tr></thead><tbody>",
    ]
    for env_id, s in status["scores"].items():
        parts.append(
            f"<tr><td>{esc(env_id)}</td><td class='num verified'>{_rate(s['success_rate'], s['ci_low'], s['ci_high'])}"
            f"</td><td class='num'>{s['mean_return']:.3f}</td><td class='num'>{s['claimed_success_rate']:.1%}</td>"
            f"<td class='num'>{s['tasks']}</td><td class='num'>{s['infra_errors']}</td>"
            f"<td class='num'>{s['diverged']}</td></tr>"
        )
    parts.append(
        "</tbody></table><h2>Tasks</h2><table class='tasks'><thead><tr><th>task</th><th>verified</th>"
        "<th>claimed</th><th>method</th><th>note</th></tr></thead><tbody>"
    )
    for t in tasks:
        note = f"infra: {t['infra_error']}" if t["infra_error"] else t["divergence"] or ""
        parts.append(
            f"<tr><td>{esc(t['task_key'])}</td><td>{'solved' if t['verified_success'] else 'not solved'}</td>"
            f"<td>{'solved' if t['claimed_success'] else 'not solved'}</td><td>{esc(t['method'])}</td>"
            f"<td>{esc(str(note)[:300])}</td></tr>"
        )
    parts.append("</tbody></table><p><a href='/'>back to the leaderboard</a></p></body></html>")
    return "".join(parts)


def serve(settings: ServerSettings, host: str = "127.0.0.1", port: int = 8000) -> None:
    import uvicorn

    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")


def settings_from(db: str, splits_file: Path | None, **kwargs: Any) -> ServerSettings:
    from envgym.leaderboard.splits import load_splits

    return ServerSettings(db_url=db, splits=load_splits(splits_file), **kwargs)
