"""Read the verdict plugin's signed record stream into per-test outcomes, and refuse any stream that was tampered.

Why strict: the stream is the grader's only evidence. A record counts only if its HMAC (key known to the host
and the plugin alone) is valid and its number is the next one; each (test, phase) may appear once, in
setup -> call -> teardown order, all before the final `finish` record. Anything else is tampering by the code
under test: the reward is 0 and the feedback says why. A test passes only with all three phases present and
passed; a test that is absent is not a pass (SWE-smith #24).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any, Literal

from pydantic import BaseModel, Field

Status = Literal["passed", "failed", "error", "skipped", "missing"]
PHASES = ("setup", "call", "teardown")
MAX_LINE_BYTES = 64 * 1024
MAX_RECORDS = 400_000


class TestOutcome(BaseModel):
    status: Status
    message: str = Field(default="", description="failure message (assertion text), capped")
    text: str = Field(default="", description="failure traceback as pytest wrote it, capped")


class VerdictReader:
    """Incremental parser of the plugin's `hmac json` lines; `tamper` says what broke the stream, if anything."""

    def __init__(self, key: bytes) -> None:
        self.key = key
        self.tamper: str | None = None
        self.hello = False
        self.collected: int | None = None
        self.finish: dict[str, Any] | None = None
        self.phases: dict[str, dict[str, tuple[str, str, str]]] = {}
        self._seq = 0
        self._buffer = b""

    def feed(self, data: bytes) -> None:
        if self.tamper is not None:
            return
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            self._line(line)
            if self.tamper is not None:
                return
        if len(self._buffer) > MAX_LINE_BYTES:
            self._fail("a verdict record longer than the plugin ever writes")

    def close(self) -> None:
        """End of stream: a partial last line is a record the plugin did not finish (or did not write)."""
        if self._buffer and self.tamper is None:
            self._fail("a truncated verdict record")

    def _fail(self, why: str) -> None:
        self.tamper = why

    def _line(self, line: bytes) -> None:
        mac, _, body = line.partition(b" ")
        expected = hmac.new(self.key, body, hashlib.sha256).hexdigest().encode()
        if not hmac.compare_digest(mac, expected):
            return self._fail("a verdict record the grader's plugin did not sign")
        try:
            record = json.loads(body)
        except ValueError:
            return self._fail("an unreadable verdict record")
        if not isinstance(record, dict):
            return self._fail("an unreadable verdict record")
        self._seq += 1
        if record.get("seq") != self._seq or self._seq > MAX_RECORDS:
            return self._fail("verdict records out of sequence")
        if self.finish is not None:
            return self._fail("a verdict record after pytest finished")
        self._record(record)

    def _record(self, record: dict[str, Any]) -> None:
        kind = record.get("kind")
        if not self.hello:
            if kind != "hello":
                self._fail("the verdict stream does not start with the plugin's greeting")
            self.hello = True
            return
        if kind == "collected":
            if self.collected is not None:
                return self._fail("two collection records")
            self.collected = int(record.get("count", 0))
        elif kind == "report":
            self._report(record)
        elif kind == "finish":
            self.finish = record
        else:
            self._fail(f"an unknown verdict record kind {str(kind)[:40]!r}")

    def _report(self, record: dict[str, Any]) -> None:
        nodeid, when = str(record.get("nodeid", "")), record.get("when")
        if when not in PHASES:
            return self._fail(f"an unknown test phase {str(when)[:40]!r}")
        seen = self.phases.setdefault(nodeid, {})
        if when in seen:
            return self._fail(f"a second {when} record for {nodeid}")
        if any(PHASES.index(earlier) > PHASES.index(when) for earlier in seen):
            return self._fail(f"the {when} record of {nodeid} arrived out of order")
        seen[when] = (str(record.get("outcome")), str(record.get("message", "")), str(record.get("text", "")))

    def outcomes(self) -> dict[str, TestOutcome]:
        """Per test id: passed only if setup, call and teardown were all reported and passed."""
        result: dict[str, TestOutcome] = {}
        for nodeid, seen in self.phases.items():
            failed = next((w for w in PHASES if w in seen and seen[w][0] == "failed"), None)
            if failed is not None:
                status: Status = "failed" if failed == "call" else "error"
                result[nodeid] = TestOutcome(status=status, message=seen[failed][1], text=seen[failed][2])
            elif any(seen.get(w, ("",))[0] == "skipped" for w in ("setup", "call")):
                result[nodeid] = TestOutcome(
                    status="skipped", message=seen.get("call", seen.get("setup", ("",) * 3))[1]
                )
            elif all(seen.get(w, ("",))[0] == "passed" for w in PHASES):
                result[nodeid] = TestOutcome(status="passed")
            else:
                result[nodeid] = TestOutcome(status="missing", message="the test's run was not reported in full")
        return result

    def problem(self, exit_code: int | None) -> str | None:
        """Why this stream cannot be a verdict (None: complete and consistent with pytest's exit status)."""
        if self.tamper is not None:
            return self.tamper
        if self.finish is None:
            return f"the test run ended before pytest finished (exit code {exit_code})"
        status = self.finish.get("exitstatus")
        if exit_code != status:
            return f"pytest reported exit status {status} but its process exited with {exit_code}"
        if self.collected is not None and len(self.phases) > self.collected:
            return f"{len(self.phases)} tests reported but only {self.collected} collected"
        return None
