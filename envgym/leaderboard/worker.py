"""The background grader: takes queued jobs, re-grades every prediction, stores one result per task.

Why idempotent per task: a job may be interrupted at any point (crash, restart). Claiming a job is a
conditional update (`queued` -> `running`), a resumed job skips tasks that already have a result row, and the
unique (submission, task) constraint makes a duplicate insert a no-op, so a restart neither loses nor double
counts work. The replay sample is drawn when the job is created (from the OS RNG, unknowable to submitters)
and stored with it, so a resumed job replays the same sample.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable

from envgym.extras import needs_extra

with needs_extra("server"):  # a missing one names the extra to install
    from sqlalchemy import select, update
    from sqlalchemy.exc import IntegrityError
    from sqlalchemy.orm import Session, sessionmaker

from envgym.leaderboard.bundle import Prediction, unpack
from envgym.leaderboard.db import Job, Submission, TaskResult, utcnow
from envgym.leaderboard.regrade import TaskVerdict, verify_prediction
from envgym.leaderboard.validate import validate_bundle

log = logging.getLogger("envgym.leaderboard")
INFRA_RETRIES = 2


def draw_replay_sample(predictions: list[Prediction], fraction: float) -> list[str]:
    """Task keys of patch predictions whose trajectories are also replayed (at least one if any)."""
    patches = [p.task_key for p in predictions if p.kind == "patch"]
    if not patches or fraction <= 0:
        return []
    count = max(1, round(fraction * len(patches)))
    rng = secrets.SystemRandom()
    return sorted(rng.sample(patches, min(count, len(patches))))


class GradingWorker:
    """One thread that grades queued jobs until stopped."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        task_pause_s: float = 0.0,
        poll_s: float = 0.5,
        verify: Callable[..., TaskVerdict] = verify_prediction,
        sandbox: str | None = None,
    ) -> None:
        self.sessions = sessions
        self.sandbox = sandbox  # the boundary backend re-grading runs agent commands in (boundary.probe)
        self.task_pause_s = task_pause_s
        self.poll_s = poll_s
        self.verify = verify
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="envgym-grader", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def wake(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                worked = self.run_once()
            except Exception:  # keep the grader alive; the job is marked failed inside run_once
                log.exception("grading loop error")
                worked = False
            if not worked:
                self._wake.wait(self.poll_s)
                self._wake.clear()

    def claim(self) -> int | None:
        """Atomically move the oldest queued job to `running`; its id, or None when the queue is empty."""
        with self.sessions() as session:
            for job_id in session.scalars(select(Job.id).where(Job.state == "queued").order_by(Job.id).limit(5)):
                result = session.execute(
                    update(Job)
                    .where(Job.id == job_id, Job.state == "queued")
                    .values(state="running", attempts=Job.attempts + 1, updated_at=utcnow())
                )
                if getattr(result, "rowcount", 0) == 1:
                    job = session.get(Job, job_id)
                    assert job is not None
                    session.execute(
                        update(Submission).where(Submission.id == job.submission_id).values(status="grading")
                    )
                    session.commit()
                    return job_id
            session.commit()
        return None

    def run_once(self) -> bool:
        job_id = self.claim()
        if job_id is None:
            return False
        try:
            self.grade_job(job_id)
        except Exception as exc:
            log.exception("job %s failed", job_id)
            with self.sessions() as session:
                job = session.get(Job, job_id)
                if job is not None:
                    job.state, job.error = "failed", f"{type(exc).__name__}: {exc}"
                    submission = session.get(Submission, job.submission_id)
                    if submission is not None:
                        submission.status, submission.error = "failed", job.error
                session.commit()
        return True

    def grade_job(self, job_id: int) -> None:
        with self.sessions() as session:
            job = session.get(Job, job_id)
            assert job is not None
            submission = session.get(Submission, job.submission_id)
            assert submission is not None
            submission_id, sample = submission.id, set(job.replay_sample or [])
            predictions, episodes = validate_bundle(unpack(submission.bundle))
            done = set(session.scalars(select(TaskResult.task_key).where(TaskResult.submission_id == submission_id)))
        by_episode = {ep.episode_id: ep for ep in episodes}
        for prediction in predictions:
            if self._stop.is_set():
                return  # left `running`; a restart re-queues it and resumes here
            if prediction.task_key in done:
                continue
            episode = by_episode[prediction.episode_id]
            verdict = self.verify(prediction, episode, prediction.task_key in sample, sandbox=self.sandbox)
            for _ in range(INFRA_RETRIES):
                if verdict.infra_error is None:
                    break
                verdict = self.verify(prediction, episode, prediction.task_key in sample, sandbox=self.sandbox)
            self._store(submission_id, verdict)
            if self.task_pause_s:
                time.sleep(self.task_pause_s)
        with self.sessions() as session:
            job = session.get(Job, job_id)
            submission = session.get(Submission, submission_id)
            assert job is not None and submission is not None
            job.state, job.updated_at = "done", utcnow()
            submission.status, submission.graded_at = "graded", utcnow()
            session.commit()

    def _store(self, submission_id: int, verdict: TaskVerdict) -> None:
        with self.sessions() as session:
            session.add(TaskResult(submission_id=submission_id, **verdict.model_dump()))
            try:
                session.commit()
            except IntegrityError:  # already stored by an earlier attempt: keep the first result
                session.rollback()
