"""Verified scores per submission and env, and the ranking per (env, split) built only from them.

Why here and separate from the API: the JSON endpoints, the HTML page and the client all show the same numbers,
and none of them may use a claimed score for anything but display next to the verified one.
"""

from __future__ import annotations

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from envgym.leaderboard.db import Submission, TaskResult


class EnvScore(BaseModel):
    env_id: str
    tasks: int
    graded: int
    solved: int
    success_rate: float
    mean_return: float
    claimed_success_rate: float
    diverged: int
    replayed: int
    infra_errors: int


class RankRow(BaseModel):
    rank: int
    submission_id: int
    submitter: str
    model: str
    agent: str
    split: str
    env_id: str
    success_rate: float
    mean_return: float
    claimed_success_rate: float
    tasks: int
    diverged: int
    submitted_at: str


def submission_scores(session: Session, submission: Submission) -> dict[str, EnvScore]:
    """Per-env verified scores of one submission (tasks not graded yet count as unsolved)."""
    rows = list(session.scalars(select(TaskResult).where(TaskResult.submission_id == submission.id)))
    totals = {env: int(c["tasks"]) for env, c in submission.manifest.get("claimed", {}).items()}
    claimed = {env: c["solved"] / max(int(c["tasks"]), 1) for env, c in submission.manifest.get("claimed", {}).items()}
    scores: dict[str, EnvScore] = {}
    for env_id, total in sorted(totals.items()):
        mine = [r for r in rows if r.env_id == env_id]
        scores[env_id] = EnvScore(
            env_id=env_id,
            tasks=total,
            graded=len(mine),
            solved=sum(r.verified_success for r in mine),
            success_rate=sum(r.verified_success for r in mine) / max(total, 1),
            mean_return=sum(r.verified_return for r in mine) / max(total, 1),
            claimed_success_rate=claimed.get(env_id, 0.0),
            diverged=sum(r.diverged for r in mine),
            replayed=sum(r.replayed for r in mine),
            infra_errors=sum(r.infra_error is not None for r in mine),
        )
    return scores


def leaderboard(session: Session, split: str | None = None, env_id: str | None = None) -> list[RankRow]:
    """Graded submissions ranked per (split, env) by verified success rate, then mean return, then age."""
    query = select(Submission).where(Submission.status == "graded")
    if split:
        query = query.where(Submission.split == split)
    rows: list[RankRow] = []
    for submission in session.scalars(query.order_by(Submission.id)):
        for env, score in submission_scores(session, submission).items():
            if env_id and env != env_id:
                continue
            rows.append(
                RankRow(
                    rank=0,
                    submission_id=submission.id,
                    submitter=submission.submitter,
                    model=submission.model,
                    agent=submission.agent,
                    split=submission.split,
                    env_id=env,
                    success_rate=score.success_rate,
                    mean_return=score.mean_return,
                    claimed_success_rate=score.claimed_success_rate,
                    tasks=score.tasks,
                    diverged=score.diverged,
                    submitted_at=submission.created_at.isoformat(),
                )
            )
    rows.sort(key=lambda r: (r.split, r.env_id, -r.success_rate, -r.mean_return, r.submission_id))
    group: tuple[str, str] | None = None
    rank = 0
    for row in rows:
        if (row.split, row.env_id) != group:
            group, rank = (row.split, row.env_id), 0
        rank += 1
        row.rank = rank
    return rows
