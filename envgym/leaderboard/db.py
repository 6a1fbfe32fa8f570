"""The leaderboard's storage: submitters' tokens, submissions with their bundles, grading jobs, per-task results.

Why a jobs table with states and a unique (submission, task) result row: grading runs in the background and the
server may die mid-job. On restart every `running` job goes back to `queued`, and a resumed job skips tasks
that already have a result, so nothing is lost and nothing is counted twice. SQLite by default; any SQLAlchemy
URL (e.g. postgresql+psycopg://...) works.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime
from typing import Any

from envgym.extras import needs_extra

with needs_extra("server"):  # a missing one names the extra to install
    from sqlalchemy import (
        JSON,
        Boolean,
        DateTime,
        Float,
        ForeignKey,
        Integer,
        LargeBinary,
        String,
        Text,
        UniqueConstraint,
        create_engine,
        event,
        select,
        update,
    )
    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class ApiToken(Base):
    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submitter: Mapped[str] = mapped_column(String(100), index=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class Submission(Base):
    __tablename__ = "submissions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submitter: Mapped[str] = mapped_column(String(100), index=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    model: Mapped[str] = mapped_column(String(200))
    agent: Mapped[str] = mapped_column(String(200))
    split: Mapped[str] = mapped_column(String(64), index=True)
    manifest: Mapped[dict[str, Any]] = mapped_column(JSON)
    bundle: Mapped[bytes] = mapped_column(LargeBinary)
    num_tasks: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="queued")  # queued | grading | graded | failed
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    graded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Job(Base):
    __tablename__ = "jobs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"), unique=True)
    state: Mapped[str] = mapped_column(String(16), default="queued", index=True)  # queued | running | done | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    replay_sample: Mapped[list[str]] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


class TaskResult(Base):
    __tablename__ = "task_results"
    __table_args__ = (UniqueConstraint("submission_id", "task_key", name="one_result_per_task"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"), index=True)
    task_key: Mapped[str] = mapped_column(String(300))
    env_id: Mapped[str] = mapped_column(String(100), index=True)
    seed: Mapped[int] = mapped_column(Integer)
    verified_return: Mapped[float] = mapped_column(Float)
    verified_success: Mapped[bool] = mapped_column(Boolean)
    claimed_return: Mapped[float] = mapped_column(Float)
    claimed_success: Mapped[bool] = mapped_column(Boolean)
    method: Mapped[str] = mapped_column(String(16))
    replayed: Mapped[bool] = mapped_column(Boolean, default=False)
    diverged: Mapped[bool] = mapped_column(Boolean, default=False)
    divergence: Mapped[str | None] = mapped_column(Text, nullable=True)
    infra_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    duration_s: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


def make_engine(url: str) -> Engine:
    """An engine with tables created; SQLite gets WAL and a busy timeout so the worker and the API coexist."""
    is_sqlite = url.startswith("sqlite")
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30} if is_sqlite else {})
    if is_sqlite:

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

    Base.metadata.create_all(engine)
    return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(session: Session, submitter: str) -> str:
    """A new API token for `submitter`; only its hash is stored, so it is shown once."""
    token = "egl_" + secrets.token_urlsafe(32)
    session.add(ApiToken(submitter=submitter, token_sha256=hash_token(token)))
    session.commit()
    return token


def submitter_for(session: Session, token: str) -> str | None:
    row = session.scalar(select(ApiToken).where(ApiToken.token_sha256 == hash_token(token), ~ApiToken.revoked))
    return row.submitter if row is not None else None


def revoke_tokens(session: Session, submitter: str) -> int:
    result = session.execute(update(ApiToken).where(ApiToken.submitter == submitter).values(revoked=True))
    session.commit()
    return int(getattr(result, "rowcount", 0) or 0)


def requeue_interrupted(session: Session) -> int:
    """Put jobs a dead server left `running` back in the queue (their finished tasks are kept)."""
    result = session.execute(update(Job).where(Job.state == "running").values(state="queued", updated_at=utcnow()))
    session.execute(update(Submission).where(Submission.status == "grading").values(status="queued"))
    session.commit()
    return int(getattr(result, "rowcount", 0) or 0)
