"""Verified scores: Wilson intervals, infra failures left out of rates, reference agents unranked."""

from __future__ import annotations

from pathlib import Path

import pytest

from envgym.leaderboard.db import Submission, TaskResult, make_engine, session_factory
from envgym.leaderboard.ranking import leaderboard, submission_scores, wilson_interval


def test_wilson_interval() -> None:
    low, high = wilson_interval(10, 10)
    assert high == 1.0 and low == pytest.approx(0.7225, abs=1e-4)
    low, high = wilson_interval(5, 10)
    assert low == pytest.approx(1 - high) and low == pytest.approx(0.2366, abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    assert wilson_interval(0, 3)[0] == 0.0


def _submission(session: object, agent: str, results: list[tuple[bool, str | None]], digest: str) -> Submission:
    manifest = {"claimed": {"envgym/X-v0": {"tasks": len(results), "solved": len(results), "mean_return": 1.0}}}
    sub = Submission(
        submitter="s", digest=digest, model=agent, agent=agent, split="dev", manifest=manifest, bundle=b"", num_tasks=3
    )
    sub.status = "graded"
    session.add(sub)  # type: ignore[attr-defined]
    session.flush()  # type: ignore[attr-defined]
    for i, (solved, infra) in enumerate(results):
        session.add(  # type: ignore[attr-defined]
            TaskResult(
                submission_id=sub.id,
                task_key=f"t{i}",
                env_id="envgym/X-v0",
                seed=i,
                verified_return=float(solved),
                verified_success=solved,
                claimed_return=1.0,
                claimed_success=True,
                method="replay",
                replayed=True,
                diverged=False,
                divergence=None,
                infra_error=infra,
                duration_s=0.0,
            )
        )
    session.commit()  # type: ignore[attr-defined]
    return sub


def test_infra_is_excluded_from_rates_and_references_are_not_ranked(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'b.db'}")
    with session_factory(engine)() as session:
        model = _submission(session, "model-a", [(True, None), (False, "sandbox died"), (True, None)], "a" * 64)
        weaker = _submission(session, "model-b", [(True, None), (False, None), (False, None)], "b" * 64)
        _submission(session, "oracle", [(True, None)] * 3, "c" * 64)
        score = submission_scores(session, model)["envgym/X-v0"]
        assert (score.solved, score.infra_errors, score.success_rate) == (2, 1, 1.0)  # 2 of 2 scored tasks
        assert (score.ci_low, score.ci_high) == pytest.approx(wilson_interval(2, 2))
        assert submission_scores(session, weaker)["envgym/X-v0"].success_rate == pytest.approx(1 / 3)
        rows = leaderboard(session)
    engine.dispose()
    assert [(r.model, r.rank, r.reference) for r in rows] == [
        ("model-a", 1, False),
        ("model-b", 2, False),
        ("oracle", None, True),
    ]
