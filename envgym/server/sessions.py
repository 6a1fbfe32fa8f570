"""Sessions of `envgym serve`: one env per connection, a hard session limit, and closing that always happens.

Why a thread pool: env steps are blocking calls (a Docker exec, a test run), so they run off the event loop,
one operation per session at a time, while the loop keeps reading every other client. Envs are created and
closed in the same pool, so a slow sandbox start never stalls the server.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import gymnasium as gym

log = logging.getLogger("envgym.server")
T = TypeVar("T")


class CapacityReached(RuntimeError):
    """All session slots are taken."""


@dataclass
class Session:
    """One client's env and its bookkeeping."""

    id: str
    env: gym.Env
    created: float = field(default_factory=time.monotonic)
    last_active: float = field(default_factory=time.monotonic)
    episode_id: str | None = None
    step_count: int = 0
    last_info: dict[str, Any] = field(default_factory=dict)
    task: dict[str, Any] | None = None
    tools: list[dict[str, Any]] = field(default_factory=list)
    done: bool = True


class Metrics:
    """Counters and gauges for `/metrics` (Prometheus text format: no extra dependency for a dozen numbers)."""

    def __init__(self) -> None:
        self.counters: Counter[str] = Counter()
        self.step_seconds = 0.0

    def render(self, active: int, limit: int) -> str:
        lines = [
            "# TYPE envgym_sessions_active gauge",
            f"envgym_sessions_active {active}",
            "# TYPE envgym_sessions_max gauge",
            f"envgym_sessions_max {limit}",
            "# TYPE envgym_step_seconds_total counter",
            f"envgym_step_seconds_total {self.step_seconds:.6f}",
        ]
        for name in sorted(self.counters):  # "metric" or "metric|label=value"
            metric, _, label = name.partition("|")
            key, _, value = label.partition("=")
            labels = f'{{{key}="{value}"}}' if label else ""
            lines.append(f"envgym_{metric}_total{labels} {self.counters[name]}")
        return "\n".join(lines) + "\n"


class SessionManager:
    """Opens envs up to `max_sessions`, runs their calls in a pool, and closes them exactly once."""

    def __init__(self, make_env: Callable[[], gym.Env], max_sessions: int) -> None:
        if max_sessions < 1:
            raise ValueError("max_sessions must be at least 1")
        self.make_env = make_env
        self.max_sessions = max_sessions
        self.sessions: dict[str, Session] = {}
        self._reserved = 0
        self.metrics = Metrics()
        # one op in flight per session, and room for a session that left mid-step: its step still runs while
        # its close waits, and the slot already serves a new session
        self.pool = ThreadPoolExecutor(max_workers=2 * max_sessions + 4, thread_name_prefix="envgym-session")
        self._ids = itertools.count()

    @property
    def active(self) -> int:
        return len(self.sessions) + self._reserved

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    async def open(self) -> Session:
        """A new session with its own env; raises `CapacityReached` when every slot is taken."""
        if self.active >= self.max_sessions:
            self.metrics.counters["sessions_refused"] += 1
            raise CapacityReached(
                f"server at capacity ({self.max_sessions} sessions); retry later or start it with more --max-sessions"
            )
        self._reserved += 1  # hold the slot while the env is made off-loop
        try:
            env = await self.call(self.make_env)
        finally:
            self._reserved -= 1
        session = Session(id=f"{next(self._ids)}-{uuid.uuid4().hex[:8]}", env=env)
        self.sessions[session.id] = session
        self.metrics.counters["sessions_opened"] += 1
        return session

    async def close(self, session: Session, reason: str) -> None:
        """Close the session's env (in the pool) and free its slot; safe to call twice."""
        if self.sessions.pop(session.id, None) is None:
            return
        self.metrics.counters[f"sessions_closed|reason={reason}"] += 1
        try:
            await self.call(session.env.close)
        except Exception:  # a failing close must not keep the slot or crash the server
            log.exception("closing env of session %s failed", session.id)
            self.metrics.counters["close_errors"] += 1

    async def close_all(self) -> None:
        for session in list(self.sessions.values()):
            await self.close(session, "shutdown")
        self.pool.shutdown(wait=False, cancel_futures=True)
