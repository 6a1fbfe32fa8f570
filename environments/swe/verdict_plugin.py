"""The pytest plugin the grader uploads (root-owned, read-only, random module name) into a grading sandbox.

Why: the verdict must travel through a channel the code under test cannot write after the fact. pytest loads
this module with `-p` before any project code (conftest files and the library are imported later), so at
import it takes the MAC key from stdin and the channel fd (3, the engine's exec stream back to the host) and
keeps both only in a closure: stdin is replaced by /dev/null, fd 3 by a non-inheritable copy. Each test phase
is sent as it happens as one line `hmac json`, numbered; the host accepts only an unbroken, correctly signed
sequence (see verdict.py). Code in the test process could still reach the closure by walking objects; the AST
audit rejects patches that add such walking. Stdlib only: it runs on the project image's interpreter.
Inactive unless ENVGYM_VERDICT_FD is set, so importing it anywhere else does nothing.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

MESSAGE_LIMIT = 2000
TEXT_LIMIT = 4000


def _stdlib_import(name: str) -> Any:
    """Import a stdlib module with the working directory off sys.path (a repo file must not shadow it)."""
    saved = list(sys.path)
    cwd = os.getcwd()
    sys.path[:] = [p for p in saved if p not in ("", ".") and not os.path.abspath(p).startswith(cwd)]
    try:
        return __import__(name)
    finally:
        sys.path[:] = saved


def _channel() -> Callable[..., None]:
    hashlib, hmac, json = _stdlib_import("hashlib"), _stdlib_import("hmac"), _stdlib_import("json")
    fd_number = int(os.environ.pop("ENVGYM_VERDICT_FD"))
    key = b""
    while not key.endswith(b"\n") and len(key) < 256:
        byte = os.read(0, 1)
        if not byte:
            break
        key += byte
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    fd = os.dup(fd_number)  # non-inheritable: programs the tests start do not get it
    os.close(fd_number)
    secret = key.strip()
    seq = [0]

    def emit(kind: str, **fields: Any) -> None:
        seq[0] += 1
        body = json.dumps({"seq": seq[0], "kind": kind, **fields}, separators=(",", ":"), sort_keys=True)
        mac = hmac.new(secret, body.encode(), hashlib.sha256).hexdigest()
        data = f"{mac} {body}\n".encode()
        while data:
            data = data[os.write(fd, data) :]

    return emit


_emit: Callable[..., None] | None = _channel() if os.environ.get("ENVGYM_VERDICT_FD") else None
if _emit is not None:
    _emit("hello", pid=os.getpid())


def _message(report: Any) -> str:
    crash = getattr(getattr(report, "longrepr", None), "reprcrash", None)
    text = getattr(crash, "message", None) or getattr(report, "longreprtext", "") or ""
    return str(text)[:MESSAGE_LIMIT]


def pytest_collection_finish(session: Any) -> None:
    if _emit is not None:
        _emit("collected", count=len(session.items))


def pytest_runtest_logreport(report: Any) -> None:
    if _emit is not None:
        _emit(
            "report",
            nodeid=report.nodeid,
            when=report.when,
            outcome=report.outcome,
            message=_message(report) if report.outcome != "passed" else "",
            text=str(getattr(report, "longreprtext", "") or "")[:TEXT_LIMIT] if report.outcome == "failed" else "",
        )


def pytest_sessionfinish(session: Any, exitstatus: Any) -> None:
    if _emit is not None:
        _emit("finish", exitstatus=int(exitstatus), collected=int(session.testscollected))
