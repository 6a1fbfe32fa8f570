"""Trajectory recording off the sampling thread.

Why: `TrajectoryWriter` fsyncs every episode (~5 ms here); a batched rollout finishes dozens of episodes at
once, and doing those fsyncs inline stalls sampling. This wrapper hands finished episodes to one writer
thread (file I/O releases the GIL, so it overlaps with model compute). Same `write`/`close` interface; a
crash loses at most the episodes still queued (one rollout batch), and `close()` drains the queue.
"""

from __future__ import annotations

import os
import queue
import threading

from envgym.trajectory import Episode, TrajectoryWriter


class BackgroundTrajectoryWriter:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._writer = TrajectoryWriter(path)
        self.path = self._writer.path
        self._queue: queue.Queue[Episode | None] = queue.Queue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="trajectory-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            episode = self._queue.get()
            try:
                if episode is None:
                    return
                self._writer.write(episode)
            except BaseException as exc:  # surfaced on the next write/flush/close
                self._error = exc
            finally:
                self._queue.task_done()

    def write(self, episode: Episode) -> None:
        if self._error is not None:
            raise RuntimeError(f"trajectory writer failed: {self._error!r}") from self._error
        self._queue.put(episode)

    def flush(self) -> None:
        """Block until every queued episode is on disk (a checkpoint records the file's length after this)."""
        if self._thread.is_alive():
            self._queue.join()
        if self._error is not None:
            raise RuntimeError(f"trajectory writer failed: {self._error!r}") from self._error

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        self._writer.close()
        if self._error is not None:
            raise RuntimeError(f"trajectory writer failed: {self._error!r}") from self._error

    def __enter__(self) -> BackgroundTrajectoryWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
