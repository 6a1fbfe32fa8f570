"""A read-only, budgeted SQLite connection for agent queries.

Why a module of its own: the agent's SQL runs in-process, so safety cannot rest on the agent's manners.
Three independent locks: `PRAGMA query_only`, an authorizer that denies every action except reading
(which also blocks PRAGMA, ATTACH and writes before they are prepared), and a progress handler plus
length/row caps that bound the time, memory and output of any one query.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

from pydantic import BaseModel

from envgym.environments.tools.answers import format_number

_ALLOWED_ACTIONS = frozenset(
    {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}
)
_DENIED_FUNCTIONS = frozenset(
    {"load_extension", "randomblob", "zeroblob", "readfile", "writefile", "edit", "printf", "format"}
)


class QueryResult(BaseModel):
    """Rows of one query, or the reason it failed."""

    columns: list[str] = []
    rows: list[tuple[object, ...]] = []
    more_rows: bool = False
    error: str | None = None
    denied: bool = False


def _authorizer(action: int, arg1: str | None, arg2: str | None, db: str | None, source: str | None) -> int:
    if action not in _ALLOWED_ACTIONS:
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() in _DENIED_FUNCTIONS:
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


class ReadOnlyDatabase:
    """Wraps a populated in-memory connection; after `seal()` nothing can change it."""

    def __init__(self, max_rows: int = 50, max_seconds: float = 1.0, max_steps: int = 20_000_000) -> None:
        self.conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        self.max_rows = max_rows
        self.max_seconds = max_seconds
        self.max_steps = max_steps
        self.sealed = False

    def build(self, statements: list[str], rows: dict[str, list[tuple[object, ...]]]) -> None:
        """Create tables and insert rows (only before `seal`)."""
        if self.sealed:
            raise RuntimeError("the database is sealed read-only")
        for statement in statements:
            self.conn.execute(statement)
        for table, values in rows.items():
            if values:
                marks = ", ".join("?" * len(values[0]))
                self.conn.executemany(f"INSERT INTO {table} VALUES ({marks})", values)

    def seal(self) -> None:
        """Make the connection read-only for good: query_only, a deny-by-default authorizer, size limits."""
        self.conn.execute("PRAGMA query_only = ON")
        self.conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 1_000_000)
        self.conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
        self.conn.set_authorizer(_authorizer)
        self.sealed = True

    def _budget(self) -> Callable[[], int]:
        started = time.perf_counter()
        calls = [0]
        step = 10_000

        def handler() -> int:
            calls[0] += 1
            too_long = time.perf_counter() - started > self.max_seconds
            return 1 if too_long or calls[0] * step > self.max_steps else 0

        self.conn.set_progress_handler(handler, step)
        return handler

    def query(self, sql: str) -> QueryResult:
        """Run one read-only statement within the time/row budget; never raises on agent input."""
        if not self.sealed:
            raise RuntimeError("seal() the database before running agent queries")
        self._budget()
        try:
            cursor = self.conn.execute(sql)
            fetched = cursor.fetchmany(self.max_rows + 1)
            columns = [d[0] for d in cursor.description or []]
            cursor.close()
        except sqlite3.DatabaseError as exc:
            message = str(exc)
            if "interrupted" in message:
                message = f"query stopped: it exceeded the budget of {self.max_seconds:g} s of work"
            denied = "not authorized" in message or "readonly" in message or "read-only" in message
            if denied:
                message += " (the database is read-only: only SELECT queries are allowed)"
            return QueryResult(error=message, denied=denied)
        except (sqlite3.Error, sqlite3.Warning, ValueError, OverflowError, MemoryError) as exc:
            return QueryResult(error=str(exc) or type(exc).__name__)
        finally:
            self.conn.set_progress_handler(None, 0)
        more = len(fetched) > self.max_rows
        return QueryResult(columns=columns, rows=[tuple(r) for r in fetched[: self.max_rows]], more_rows=more)

    def trusted_query(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        """The env's own queries (gold answers); still subject to the authorizer."""
        return [tuple(r) for r in self.conn.execute(sql, args).fetchall()]

    def close(self) -> None:
        self.conn.close()


def render_result(result: QueryResult) -> str:
    """A result table as pipe-separated text."""
    if not result.columns:
        return "(statement returned no columns)"
    lines = [" | ".join(result.columns)]
    for row in result.rows:
        lines.append(" | ".join(_cell(v) for v in row))
    if not result.rows:
        lines.append("(no rows)")
    if result.more_rows:
        lines.append(f"(only the first {len(result.rows)} rows are shown; aggregate or add LIMIT/WHERE)")
    return "\n".join(lines)


def _cell(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, float):
        return format_number(value)
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    text = str(value)
    return text if len(text) <= 200 else text[:200] + "..."
