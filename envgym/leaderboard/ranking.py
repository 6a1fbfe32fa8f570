"""Verified scores per submission and env, and the ranking per (env, split) built only from them.

Why here and separate from the API: the JSON endpoints, the HTML page and the client all show the same numbers,
and none of them may use a claimed score for anything but display next to the verified one.

Why an interval: 10 tasks pin a success rate down to about +-30 points, so every rate comes with its Wilson 95%
interval. Tasks whose grading hit an infrastructure failure are excluded from rates (and shown as a count): the
server's failure is not the agent's zero. Reference agents (the scripted oracle and random agent) are shown as
reference lines, not ranked: an oracle at the top of the board says nothing about models.
"""

from __future__ import annotations

import math

from pydantic import BaseModel, Field

from envgym.extras import needs_extra

with needs_extra("server"):  # a missing one names the extra to install
    from sqlalchemy import select
    from sqlalchemy.orm import Session

from envgym.leaderboard.db import Submission, TaskResult

REFERENCE_AGENTS = frozenset({"oracle", "random"})
Z_95 = 1.959963984540054


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of a success rate (95% by default); (0, 1) when there are no trials."""
    if trials <= 0:
        return 0.0, 1.0
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    low = 0.0 if successes <= 0 else max(0.0, centre - half)  # exact ends: no 0.99999... for 10/10
    high = 1.0 if successes >= trials else min(1.0, centre + half)
    return low, high


def is_reference(agent: str) -> bool:
    """Scripted reference agents (they read the env's state) are shown, never ranked."""
    return agent in REFERENCE_AGENTS


class EnvScore(BaseModel):
    env_id: str
    tasks: int
    graded: int
    solved: int
    success_rate: float = Field(description="solved / scored tasks (tasks minus infra failures)")
    ci_low: float
    ci_high: float
    mean_return: float
    claimed_success_rate: float
    diverged: int
    replayed: int
    infra_errors: int


class RankRow(BaseModel):
    rank: int | None = Field(description="None for reference agents (oracle, random): shown, not ranked")
    reference: bool = False
    submission_id: int
    submitter: str
    model: str
    agent: str
    split: str
    env_id: str
    success_rate: float
    ci_low: float
    ci_high: float
    mean_return: float
    claimed_success_rate: float
    tasks: int
    infra_errors: int
    diverged: int
    submitted_at: str
    date: str = Field(description="submission day, YYYY-MM-DD (UTC)")


def submission_scores(session: Session, submission: Submission) -> dict[str, EnvScore]:
    """Per-env verified scores of one submission (tasks not graded yet count as unsolved)."""
    rows = list(session.scalars(select(TaskResult).where(TaskResult.submission_id == submission.id)))
    totals = {env: int(c["tasks"]) for env, c in submission.manifest.get("claimed", {}).items()}
    claimed = {env: c["solved"] / max(int(c["tasks"]), 1) for env, c in submission.manifest.get("claimed", {}).items()}
    scores: dict[str, EnvScore] = {}
    for env_id, total in sorted(totals.items()):
        mine = [r for r in rows if r.env_id == env_id]
        infra = sum(r.infra_error is not None for r in mine)
        scored = max(total - infra, 0)  # ungraded tasks count as unsolved; infra ones are not the agent's
        solved = sum(r.verified_success and r.infra_error is None for r in mine)
        low, high = wilson_interval(solved, scored)
        scores[env_id] = EnvScore(
            env_id=env_id,
            tasks=total,
            graded=len(mine),
            solved=solved,
            success_rate=solved / scored if scored else 0.0,
            ci_low=low,
            ci_high=high,
            mean_return=sum(r.verified_return for r in mine if r.infra_error is None) / max(scored, 1),
            claimed_success_rate=claimed.get(env_id, 0.0),
            diverged=sum(r.diverged for r in mine),
            replayed=sum(r.replayed for r in mine),
            infra_errors=infra,
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
                    rank=None,
                    reference=is_reference(submission.agent),
                    submission_id=submission.id,
                    submitter=submission.submitter,
                    model=submission.model,
                    agent=submission.agent,
                    split=submission.split,
                    env_id=env,
                    success_rate=score.success_rate,
                    ci_low=score.ci_low,
                    ci_high=score.ci_high,
                    mean_return=score.mean_return,
                    claimed_success_rate=score.claimed_success_rate,
                    tasks=score.tasks,
                    infra_errors=score.infra_errors,
                    diverged=score.diverged,
                    submitted_at=submission.created_at.isoformat(),
                    date=submission.created_at.date().isoformat(),
                )
            )
    rows.sort(key=lambda r: (r.split, r.env_id, r.reference, -r.success_rate, -r.mean_return, r.submission_id))
    group: tuple[str, str] | None = None
    rank = 0
    for row in rows:
        if (row.split, row.env_id) != group:
            group, rank = (row.split, row.env_id), 0
        if not row.reference:
            rank += 1
            row.rank = rank
    return rows
