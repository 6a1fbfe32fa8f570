"""Re-grade one prediction from scratch: the only source of a leaderboard score.

Why: a submitted reward is a claim. For tools and puzzles the prediction is the episode's actions, so we
replay them in a fresh env built from the task's own seed and options and take the env's reward. For SWE the
prediction is a source patch, graded by SWE-v0's own grader in a fresh sandbox; a sample of SWE trajectories
is also replayed so a trajectory that does not reproduce is flagged. The recorded rewards are never read.
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel

from envgym.leaderboard.bundle import Prediction
from envgym.trajectory import Episode


class TaskVerdict(BaseModel):
    """The verified result of one task, stored once per (submission, task)."""

    task_key: str
    env_id: str
    seed: int
    verified_return: float = 0.0
    verified_success: bool = False
    claimed_return: float
    claimed_success: bool
    method: str
    replayed: bool = False
    diverged: bool = False
    divergence: str | None = None
    infra_error: str | None = None
    duration_s: float = 0.0


def _divergence_text(report: Any) -> str | None:
    first = report.first_divergence
    if first is None:
        return "; ".join(report.notes) or None
    where = "reset" if first.index < 0 else f"turn {first.index}"
    return f"{where}: {', '.join(d.field for d in first.diffs)}"


def _replay(episode: Episode, sandbox: str | None = None) -> Any:
    from envgym.replay import replay_episode

    report, _ = replay_episode(episode, sandbox=sandbox)  # the server's boundary, never one the file names
    return report


def swe_task_for(episode: Episode) -> Any:
    """The SWE task the env itself picks for this seed and these options (never the recorded task id)."""
    from envgym.environments.swe.env import SWEEnv

    return SWEEnv(**episode.env_kwargs).task_for(int(episode.seed or 0), dict(episode.options))


def verify_prediction(
    prediction: Prediction, episode: Episode, replay_trajectory: bool = False, sandbox: str | None = None
) -> TaskVerdict:
    """Grade one prediction in fresh envs/sandboxes. `replay_trajectory` also replays a SWE trajectory;
    `sandbox` is the backend the grading host chose for envs that run commands (leaderboard/boundary.py)."""
    started = time.perf_counter()
    verdict = TaskVerdict(
        task_key=prediction.task_key,
        env_id=prediction.env_id,
        seed=prediction.seed,
        claimed_return=prediction.claimed_return,
        claimed_success=prediction.claimed_success,
        method="replay" if prediction.kind == "answer" else "patch",
    )
    try:
        if prediction.kind == "answer":
            report = _replay(episode, sandbox)
            verdict.replayed = True
            verdict.verified_return, verdict.verified_success = report.replayed_return, report.replayed_success
            verdict.diverged, verdict.divergence = report.diverged, _divergence_text(report)
            verdict.infra_error = report.replayed_infra_error
        else:
            from envgym.environments.swe.grading import grade_patch

            task = swe_task_for(episode)
            recorded = episode.task.get("params", {}).get("instance_id")
            if recorded is not None and recorded != task.instance_id:
                verdict.diverged = True
                verdict.divergence = f"trajectory is for {recorded}, the seed gives {task.instance_id} here"
            result = grade_patch(task, prediction.patch or "")
            verdict.verified_return, verdict.verified_success = result.reward, result.resolved
            verdict.infra_error = result.infra_error
            if replay_trajectory and not result.infra_error and not verdict.diverged:
                report = _replay(episode, sandbox)
                verdict.replayed = True
                verdict.diverged, verdict.divergence = report.diverged, _divergence_text(report)
                if not report.replayed_infra_error and report.replayed_success != result.resolved:
                    verdict.diverged = True
                    verdict.divergence = (
                        f"replaying the trajectory gives success={report.replayed_success}, "
                        f"the submitted patch gives resolved={result.resolved}"
                    )
    except Exception as exc:  # a crash while grading is the grader's problem, never a silent zero
        verdict.infra_error = f"{type(exc).__name__}: {exc}"
        verdict.verified_return, verdict.verified_success = 0.0, False
    verdict.duration_s = round(time.perf_counter() - started, 3)
    return verdict
