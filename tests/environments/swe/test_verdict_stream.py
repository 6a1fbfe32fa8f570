"""The verdict stream reader: only an unbroken, signed, well-ordered stream consistent with the exit code counts."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from envgym.environments.swe.verdict import MAX_LINE_BYTES, VerdictReader

KEY = b"k" * 64


class Stream:
    def __init__(self, key: bytes = KEY) -> None:
        self.key, self.seq, self.lines = key, 0, []

    def add(self, kind: str, seq: int | None = None, **fields: Any) -> Stream:
        self.seq += 1
        body = json.dumps({"seq": self.seq if seq is None else seq, "kind": kind, **fields}, sort_keys=True)
        mac = hmac.new(self.key, body.encode(), hashlib.sha256).hexdigest()
        self.lines.append(f"{mac} {body}\n".encode())
        return self

    def test(self, nodeid: str, *outcomes: str) -> Stream:
        for when, outcome in zip(("setup", "call", "teardown"), outcomes, strict=False):
            self.add("report", nodeid=nodeid, when=when, outcome=outcome, message="boom" if outcome != "passed" else "")
        return self

    def data(self) -> bytes:
        return b"".join(self.lines)


def read(data: bytes, chunk: int = 7) -> VerdictReader:
    reader = VerdictReader(KEY)
    for i in range(0, len(data), chunk):  # arbitrary chunking, as frames arrive
        reader.feed(data[i : i + chunk])
    reader.close()
    return reader


def honest() -> Stream:
    stream = Stream().add("hello", pid=1).add("collected", count=3)
    stream.test("t.py::a", "passed", "passed", "passed").test("t.py::b", "passed", "failed", "passed")
    stream.test("t.py::c", "failed", "passed")  # a setup error, then its teardown
    return stream


def test_honest_stream_gives_outcomes() -> None:
    reader = read(honest().add("finish", exitstatus=1, collected=3).data())
    assert reader.problem(exit_code=1) is None
    outcomes = reader.outcomes()
    assert outcomes["t.py::a"].status == "passed"
    assert outcomes["t.py::b"].status == "failed" and outcomes["t.py::b"].message == "boom"
    assert outcomes["t.py::c"].status == "error"


def test_unsigned_or_wrongly_signed_records_are_tampering() -> None:
    forged = Stream(key=b"guess").add("report", nodeid="t.py::b", when="call", outcome="passed")
    data = honest().data().replace(honest().lines[3], forged.lines[0])
    assert "did not sign" in (read(data).problem(exit_code=0) or "")
    garbage = honest().data() + b"PASSED t.py::b\n"
    assert read(garbage).tamper is not None


def test_duplicates_out_of_order_and_late_records_are_tampering() -> None:
    dup = honest().add("report", nodeid="t.py::b", when="call", outcome="passed")
    assert "second call record" in (read(dup.data()).tamper or "")
    disorder = Stream().add("hello").add("collected", count=1)
    disorder.add("report", nodeid="t.py::a", when="call", outcome="passed")
    disorder.add("report", nodeid="t.py::a", when="setup", outcome="passed")
    assert "out of order" in (read(disorder.data()).tamper or "")
    late = honest().add("finish", exitstatus=1, collected=3).add("report", nodeid="x", when="setup", outcome="passed")
    assert "after pytest finished" in (read(late.data()).tamper or "")


def test_a_replayed_or_skipped_sequence_number_is_tampering() -> None:
    replay = honest()
    replay.lines.append(replay.lines[2])  # a valid record, sent again
    assert "out of sequence" in (read(replay.data()).tamper or "")
    gap = honest().add("finish", seq=99, exitstatus=0, collected=3)
    assert "out of sequence" in (read(gap.data()).tamper or "")


def test_stream_must_open_with_the_greeting() -> None:
    stream = Stream().add("collected", count=0)
    assert "greeting" in (read(stream.data()).tamper or "")


def test_missing_finish_or_wrong_exit_status_is_no_verdict() -> None:
    assert "ended before pytest finished" in (read(honest().data()).problem(exit_code=0) or "")
    finished = honest().add("finish", exitstatus=0, collected=3).data()
    assert "exited with 137" in (read(finished).problem(exit_code=137) or "")


def test_truncated_and_oversized_records_are_tampering() -> None:
    data = honest().data()
    assert "truncated" in (read(data[:-5]).tamper or "")
    assert read(b"x" * (MAX_LINE_BYTES + 10)).tamper is not None


def test_more_tests_reported_than_collected_is_no_verdict() -> None:
    stream = Stream().add("hello").add("collected", count=1)
    stream.test("t.py::a", "passed", "passed", "passed").test("t.py::b", "passed", "passed", "passed")
    reader = read(stream.add("finish", exitstatus=0, collected=1).data())
    assert "only 1 collected" in (reader.problem(exit_code=0) or "")


def test_a_test_without_all_phases_is_not_a_pass() -> None:
    stream = Stream().add("hello").add("collected", count=1).test("t.py::a", "passed", "passed")
    reader = read(stream.add("finish", exitstatus=0, collected=1).data())
    assert reader.outcomes()["t.py::a"].status == "missing"
