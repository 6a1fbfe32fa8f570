"""Run a project's pytest suite in a grading sandbox so that its verdict cannot be forged by the code it tests.

Why this design (issue 11, item 1): before, the suite wrote a JUnit file as the same uid that ran the tested
code, and a thread left behind by that code rewrote the file after pytest exited. Now:
- the suite runs in its own engine exec as TESTER_UID (neither the agent's uid nor root), so it can write no
  file of the grader's, the repository or the shell that prepared it;
- a root-owned, read-only plugin with a random module name (verdict_plugin.py) streams each test phase, signed
  with a per-run key, over the exec's stdout; pytest's own output goes to the exec's stderr;
- the host reads the stream as it arrives, takes the exit status from the engine (exec inspect), and then kills
  every TESTER_UID process, so nothing outlives the run;
- verdict.py accepts only a complete, unbroken, signed stream consistent with that exit status.
"""

from __future__ import annotations

import contextlib
import io
import re
import secrets
import select
import shlex
import socket
import tarfile
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from envgym.environments.swe.verdict import TestOutcome, VerdictReader
from envgym.sandboxes import Sandbox, SandboxInfraError
from envgym.sandboxes.shell import split_docker_frames
from envgym.text import truncate_middle

TESTER_UID = 2000
PLUGIN_SOURCE = Path(__file__).with_name("verdict_plugin.py")
OUTPUT_LIMIT = 20_000
EXIT_GRACE_S = 10.0

__all__ = ["TESTER_UID", "SuiteRun", "TestOutcome", "run_suite"]


class SuiteRun(BaseModel):
    """One run of the suite: outcomes by pytest node id, whether they form a verdict, and what the run cost."""

    outcomes: dict[str, TestOutcome] = Field(default_factory=dict, description="by pytest node id")
    exit_code: int | None = None
    timed_out: bool = False
    report_found: bool = Field(default=False, description="a complete, consistent, signed verdict arrived")
    problem: str | None = Field(default=None, description="why the stream is no verdict (tampering, crash, ...)")
    duration_s: float = 0.0
    output: str = Field(default="", description="pytest's own output (untrusted, for humans), capped")

    def outcome(self, node_id: str) -> TestOutcome:
        found = self.outcomes.get(node_id) if self.report_found else None
        return found or TestOutcome(status="missing", message="test did not run (absent from the verdict)")

    def passed(self, node_id: str) -> bool:
        return self.outcome(node_id).status == "passed"


def _plugin_archive(directory: str, module: str) -> bytes:
    """The plugin as a root-owned, read-only file in a root-owned directory (put_archive keeps owners)."""
    data = PLUGIN_SOURCE.read_bytes()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        folder = tarfile.TarInfo(directory.strip("/"))
        folder.type, folder.mode, folder.uid, folder.gid = tarfile.DIRTYPE, 0o755, 0, 0
        tar.addfile(folder)
        info = tarfile.TarInfo(f"{directory.strip('/')}/{module}.py")
        info.size, info.mode, info.uid, info.gid = len(data), 0o444, 0, 0
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _with_plugin_path(test_command: str, directory: str) -> str:
    """Make the plugin importable even where the command sets PYTHONPATH itself (e.g. `PYTHONPATH=. pytest`)."""
    return re.sub(r"(^|\s)PYTHONPATH=(\S*)", lambda m: f"{m.group(1)}PYTHONPATH={m.group(2)}:{directory}", test_command)


def _container(sandbox: Sandbox) -> Any:
    container = getattr(sandbox, "container", None)
    if container is None:
        raise SandboxInfraError("grading needs a Docker sandbox (the verdict travels over an engine exec)")
    return container


def run_suite(
    sandbox: Sandbox,
    test_command: str,
    workdir: str,
    selection: list[str] | None = None,
    timeout: float = 300.0,
) -> SuiteRun:
    """Run `test_command` (+ selection) in `workdir` as TESTER_UID and collect its signed verdict."""
    import docker.errors

    from envgym.sandboxes.docker_client import docker_client

    container = _container(sandbox)
    api = docker_client().api
    nonce = secrets.token_hex(8)
    directory, module = f"/var/lib/envgym-grader-{nonce}", f"envgym_verdict_{nonce}"
    key = secrets.token_hex(32).encode()
    selected = " ".join(shlex.quote(s) for s in selection or [])
    command = _with_plugin_path(test_command, directory)
    script = f"cd {shlex.quote(workdir)} && {command} -p {module} {selected} 3>&1 1>&2"
    env = {"PYTHONPATH": directory, "ENVGYM_VERDICT_FD": "3", "HOME": "/tmp", "PYTHONDONTWRITEBYTECODE": "1"}
    started = time.perf_counter()
    try:
        container.put_archive("/", _plugin_archive(directory, module))
        exec_id = api.exec_create(
            container.id,
            ["sh", "-c", script],
            stdin=True,
            stdout=True,
            stderr=True,
            tty=False,
            user=f"{TESTER_UID}:{TESTER_UID}",
            environment=env,
            workdir="/",
        )["Id"]
        sock = api.exec_start(exec_id, socket=True)
    except docker.errors.APIError as exc:
        raise SandboxInfraError(f"could not start the test suite in the grading sandbox: {exc}") from exc
    reader = VerdictReader(key)
    stream = _DemuxedStream(getattr(sock, "_sock", sock))
    try:
        stream.send(key + b"\n")
        timed_out = not stream.pump(reader, time.monotonic() + timeout, until_finish=True)
        if not timed_out:
            _wait_exit(api, exec_id, time.monotonic() + EXIT_GRACE_S)
        _kill_tester(container)
        _wait_exit(api, exec_id, time.monotonic() + EXIT_GRACE_S)
        stream.pump(reader, time.monotonic() + 1.0, until_finish=False)
    except OSError as exc:
        raise SandboxInfraError(f"the test suite's stream broke: {exc}") from exc
    finally:
        stream.close()
    reader.close()
    exit_code = _exit_code(api, exec_id)
    if not reader.hello and not timed_out:
        raise SandboxInfraError(f"the grading plugin never started (exit code {exit_code}): {stream.output()[-1500:]}")
    problem = "the test suite timed out" if timed_out else reader.problem(exit_code)
    return SuiteRun(
        outcomes=reader.outcomes(),
        exit_code=exit_code,
        timed_out=timed_out,
        report_found=problem is None,
        problem=problem,
        duration_s=round(time.perf_counter() - started, 3),
        output=stream.output(),
    )


class _DemuxedStream:
    """The exec's attached socket: stdout frames (the plugin's records) go to the reader, stderr frames
    (pytest's own output) are kept capped, head and tail."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._raw = b""
        self._head = bytearray()
        self._tail = b""

    def send(self, data: bytes) -> None:
        self.sock.setblocking(True)
        self.sock.sendall(data)
        self.sock.setblocking(False)

    def pump(self, reader: VerdictReader, deadline: float, until_finish: bool) -> bool:
        """Read until EOF (or, with `until_finish`, the finish record); False if the deadline passed first."""
        while not (until_finish and reader.finish is not None):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            ready, _, _ = select.select([self.sock], [], [], min(remaining, 1.0))
            if not ready:
                continue
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                return True
            self._demux(data, reader)
        return True

    def _demux(self, data: bytes, reader: VerdictReader) -> None:
        frames, self._raw = split_docker_frames(self._raw + data)
        for kind, frame in frames:
            if kind == 1:
                reader.feed(frame)
            else:
                self._keep(frame)

    def _keep(self, data: bytes) -> None:
        room = OUTPUT_LIMIT // 2 - len(self._head)
        if room > 0:
            self._head += data[:room]
            data = data[room:]
        self._tail = (self._tail + data)[-OUTPUT_LIMIT // 2 :]

    def output(self) -> str:
        return truncate_middle((bytes(self._head) + self._tail).decode("utf-8", errors="replace"), OUTPUT_LIMIT)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def _wait_exit(api: Any, exec_id: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            if not api.exec_inspect(exec_id).get("Running"):
                return
        except Exception:
            return
        time.sleep(0.02)


def _exit_code(api: Any, exec_id: str) -> int | None:
    try:
        state = api.exec_inspect(exec_id)
    except Exception as exc:
        raise SandboxInfraError(f"could not read the test suite's exit status: {exc}") from exc
    code = state.get("ExitCode")
    return None if state.get("Running") or code is None else int(code)


def _kill_tester(container: Any) -> None:
    """SIGKILL every TESTER_UID process (daemonized children and lingering threads' processes included)."""
    import docker.errors

    try:
        container.exec_run(["sh", "-c", "kill -9 -1; kill -9 -1; true"], user=f"{TESTER_UID}:{TESTER_UID}")
    except docker.errors.APIError as exc:
        raise SandboxInfraError(f"could not stop the test processes: {exc}") from exc
