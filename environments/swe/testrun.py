"""Run a project's pytest suite in a grading sandbox so that its verdict cannot be forged by the code it tests.

Why this design (issue 11, item 1): before, the suite wrote a JUnit file as the same uid that ran the tested
code, and a thread left behind by that code rewrote the file after pytest exited. Now:
- the suite runs in its own engine exec as TESTER_UID (neither the agent's uid nor root), so it can write no
  file of the grader's, the repository or the shell that prepared it;
- a root-owned, read-only plugin with a random module name (verdict_plugin.py) streams each test phase, signed
  with a per-run key, over the exec's stdout; pytest's own output goes to the exec's stderr;
- the host reads the stream as it arrives, takes the exit status from the engine (exec inspect), and then kills
  every TESTER_UID process (or, for a sandbox about to be removed, confirms the stream has ended), so nothing
  outlives the run to add evidence;
- verdict.py accepts only a complete, unbroken, signed stream consistent with that exit status.

Why staged (issue 14): `PreparedSuite` does everything that does not depend on the code under test ahead of
time, while the agent works: it uploads the plugin and, where the command is a plain `python -m pytest ...`,
starts the interpreter and imports pytest (suite_zygote.py), which then waits for `go`. `run_suite` is both
steps at once.
"""

from __future__ import annotations

import contextlib
import io
import re
import secrets
import shlex
import socket
import tarfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, Field

from envgym.environments.swe.verdict import TestOutcome, VerdictReader
from envgym.sandboxes import Sandbox, SandboxInfraError
from envgym.sandboxes.shell import readable, split_docker_frames
from envgym.text import truncate_middle

TESTER_UID = 2000
PLUGIN_SOURCE = Path(__file__).with_name("verdict_plugin.py")
ZYGOTE_SOURCE = Path(__file__).with_name("suite_zygote.py")
ZYGOTE_STATUS = b"ENVGYM-ZYGOTE "
OUTPUT_LIMIT = 20_000
EXIT_GRACE_S = 10.0
ZYGOTE_START_S = 120.0
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_PYTHON = re.compile(r"^(?:/[\w./+-]*/)?python[0-9.]*$")
_SHELL_SYNTAX = re.compile(r"[$`;&|<>*?~(){}\[\]!#\\\n'\"]")

__all__ = ["TESTER_UID", "PreparedSuite", "SuiteRun", "TestOutcome", "run_suite"]


class SuiteRun(BaseModel):
    """One run of the suite: outcomes by pytest node id, whether they form a verdict, and what the run cost."""

    outcomes: dict[str, TestOutcome] = Field(default_factory=dict, description="by pytest node id")
    exit_code: int | None = None
    timed_out: bool = False
    report_found: bool = Field(default=False, description="a complete, consistent, signed verdict arrived")
    problem: str | None = Field(default=None, description="why the stream is no verdict (tampering, crash, ...)")
    duration_s: float = 0.0
    output: str = Field(default="", description="pytest's own output (untrusted, for humans), capped")
    prestarted: bool = Field(default=False, description="pytest was imported before the run (suite_zygote.py)")

    def outcome(self, node_id: str) -> TestOutcome:
        found = self.outcomes.get(node_id) if self.report_found else None
        return found or TestOutcome(status="missing", message="test did not run (absent from the verdict)")

    def passed(self, node_id: str) -> bool:
        return self.outcome(node_id).status == "passed"


def _archive(directory: str, files: dict[str, bytes]) -> bytes:
    """Files as root-owned, read-only, in a root-owned directory (put_archive keeps owners)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        folder = tarfile.TarInfo(directory.strip("/"))
        folder.type, folder.mode, folder.uid, folder.gid = tarfile.DIRTYPE, 0o755, 0, 0
        tar.addfile(folder)
        for name, data in files.items():
            info = tarfile.TarInfo(f"{directory.strip('/')}/{name}")
            info.size, info.mode, info.uid, info.gid = len(data), 0o444, 0, 0
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _with_plugin_path(test_command: str, directory: str) -> str:
    """Make the plugin importable even where the command sets PYTHONPATH itself (e.g. `PYTHONPATH=. pytest`)."""
    return re.sub(r"(^|\s)PYTHONPATH=(\S*)", lambda m: f"{m.group(1)}PYTHONPATH={m.group(2)}:{directory}", test_command)


def zygote_command(test_command: str, script: str) -> str | None:
    """`[NAME=value ...] python -m pytest ARGS` as `[NAME=value ...] python SCRIPT ARGS` (same argv, same
    environment); None for any other shape (shell syntax, another runner), which then runs as written."""
    if _SHELL_SYNTAX.search(test_command):
        return None
    tokens = test_command.split()
    i = 0
    while i < len(tokens) and _ASSIGNMENT.match(tokens[i]):
        i += 1
    if tokens[i : i + 3][1:] != ["-m", "pytest"] or not _PYTHON.match(tokens[i] if i < len(tokens) else ""):
        return None
    return " ".join([*tokens[: i + 1], script, *tokens[i + 3 :]])  # plain words only: the shell's own split


def interpreter_of(test_command: str) -> str | None:
    """The Python a plain `[NAME=value ...] python -m pytest ...` command runs (None for other shapes)."""
    if _SHELL_SYNTAX.search(test_command):
        return None
    tokens = test_command.split()
    while tokens and _ASSIGNMENT.match(tokens[0]):
        tokens.pop(0)
    return tokens[0] if tokens[1:3] == ["-m", "pytest"] and _PYTHON.match(tokens[0]) else None


def _container(sandbox: Sandbox) -> Any:
    container = getattr(sandbox, "container", None)
    if container is None:
        raise SandboxInfraError("grading needs a Docker sandbox (the verdict travels over an engine exec)")
    return container


class _Sink(Protocol):
    def feed(self, data: bytes) -> None: ...


class _StatusLine:
    """Collects the zygote's one status line from the verdict channel; bytes after it are kept for the reader."""

    def __init__(self) -> None:
        self.data = b""

    def feed(self, data: bytes) -> None:
        self.data += data[: 4096 - len(self.data)]

    @property
    def line(self) -> bytes | None:
        head, newline, _ = self.data.partition(b"\n")
        return head if newline or len(self.data) >= 4096 else None


class PreparedSuite:
    """One test run staged in a grading sandbox before the code under test is in place; `run()` once.

    Staging uploads the plugin (random module name) and, for a plain `python -m pytest` command, starts
    suite_zygote.py as TESTER_UID in `workdir`: it imports pytest and waits. `run()` sends `go` and the MAC key
    and reads the signed stream. Anything the zygote cannot do (another command shape, pytest not importable,
    a project module imported with pytest) falls back to starting the command fresh at `run()`."""

    def __init__(self, sandbox: Sandbox, test_command: str, workdir: str, selection: list[str] | None = None) -> None:
        import docker.errors

        from envgym.sandboxes.docker_client import docker_client

        self.container = _container(sandbox)
        self.api = docker_client().api
        self.workdir = workdir
        nonce = secrets.token_hex(8)
        self.directory, self.module = f"/var/lib/envgym-grader-{nonce}", f"envgym_verdict_{nonce}"
        zygote = f"envgym_zygote_{nonce}.py"
        self.key = secrets.token_hex(32).encode()
        selected = " ".join(shlex.quote(s) for s in selection or [])
        command = _with_plugin_path(test_command, self.directory)
        self._plain = f"cd {shlex.quote(workdir)} && {command} -p {self.module} {selected} 3>&1 1>&2"
        fast = zygote_command(command, f"{self.directory}/{zygote}")
        self.env = {
            "PYTHONPATH": self.directory,
            "ENVGYM_VERDICT_FD": "3",
            "HOME": "/tmp",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        self._exec_id: str | None = None
        self._stream: _DemuxedStream | None = None
        self._used = False
        files = {f"{self.module}.py": PLUGIN_SOURCE.read_bytes(), zygote: ZYGOTE_SOURCE.read_bytes()}
        try:
            self.container.put_archive("/", _archive(self.directory, files))
        except docker.errors.APIError as exc:
            raise SandboxInfraError(f"could not upload the grading plugin: {exc}") from exc
        if fast is not None:
            self._start_zygote(f"cd {shlex.quote(workdir)} && {fast} -p {self.module} {selected} 3>&1 1>&2")

    @property
    def prestarted(self) -> bool:
        return self._stream is not None

    def _exec(self, script: str) -> tuple[str, _DemuxedStream]:
        import docker.errors

        try:
            exec_id = self.api.exec_create(
                self.container.id,
                ["sh", "-c", script],
                stdin=True,
                stdout=True,
                stderr=True,
                tty=False,
                user=f"{TESTER_UID}:{TESTER_UID}",
                environment=self.env,
                workdir="/",
            )["Id"]
            sock = self.api.exec_start(exec_id, socket=True)
        except docker.errors.APIError as exc:
            raise SandboxInfraError(f"could not start the test suite in the grading sandbox: {exc}") from exc
        return exec_id, _DemuxedStream(getattr(sock, "_sock", sock))

    def _start_zygote(self, script: str) -> None:
        exec_id, stream = self._exec(script)
        status = _StatusLine()
        with contextlib.suppress(OSError):
            stream.pump(status, time.monotonic() + ZYGOTE_START_S, lambda: status.line is not None)
        if status.line == ZYGOTE_STATUS + b"ready":
            self._exec_id, self._stream = exec_id, stream
            return
        stream.close()  # tainted, failed or silent: the run starts the command fresh
        _kill_tester(self.container)
        _wait_exit(self.api, exec_id, time.monotonic() + EXIT_GRACE_S)

    def abandon(self) -> None:
        """Stop a staged run that will not be used (its sandbox is being discarded anyway)."""
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    def run(self, timeout: float = 300.0, disposable: bool = False) -> SuiteRun:
        """Start the tests and collect the signed verdict. `disposable`: the sandbox is removed right after, so
        when the stream has ended and pytest has exited, stray test processes are left to the removal."""
        if self._used:
            raise RuntimeError("a PreparedSuite runs once")
        self._used = True
        started = time.perf_counter()
        prestarted = self._stream is not None
        if self._exec_id is not None and self._stream is not None:
            exec_id, stream, go = self._exec_id, self._stream, b"go\n"
        else:
            (exec_id, stream), go = self._exec(self._plain), b""
        reader = VerdictReader(self.key)
        try:
            stream.send(go + self.key + b"\n")
            deadline = time.monotonic() + timeout
            timed_out = not stream.pump(reader, deadline, lambda: reader.finish is not None)
            ended = not timed_out and _await_end(self.api, exec_id, stream, reader)
            if not (ended and disposable):
                _kill_tester(self.container)
                _wait_exit(self.api, exec_id, time.monotonic() + EXIT_GRACE_S)
                stream.pump(reader, time.monotonic() + 1.0, lambda: False)
        except OSError as exc:
            raise SandboxInfraError(f"the test suite's stream broke: {exc}") from exc
        finally:
            stream.close()
            self._stream = None
        reader.close()
        exit_code = _exit_code(self.api, exec_id)
        if not reader.hello and not timed_out:
            raise SandboxInfraError(
                f"the grading plugin never started (exit code {exit_code}): {stream.output()[-1500:]}"
            )
        problem = "the test suite timed out" if timed_out else reader.problem(exit_code)
        return SuiteRun(
            outcomes=reader.outcomes(),
            exit_code=exit_code,
            timed_out=timed_out,
            report_found=problem is None,
            problem=problem,
            duration_s=round(time.perf_counter() - started, 3),
            output=stream.output(),
            prestarted=prestarted,
        )


def run_suite(
    sandbox: Sandbox,
    test_command: str,
    workdir: str,
    selection: list[str] | None = None,
    timeout: float = 300.0,
) -> SuiteRun:
    """Run `test_command` (+ selection) in `workdir` as TESTER_UID and collect its signed verdict."""
    return PreparedSuite(sandbox, test_command, workdir, selection).run(timeout)


class _DemuxedStream:
    """The exec's attached socket: stdout frames (the plugin's records) go to the reader, stderr frames
    (pytest's own output) are kept capped, head and tail."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._raw = b""
        self._head = bytearray()
        self._tail = b""
        self._pending = b""  # verdict-channel bytes read before a sink was attached

    def send(self, data: bytes) -> None:
        self.sock.setblocking(True)
        self.sock.sendall(data)
        self.sock.setblocking(False)

    def pump(self, sink: _Sink, deadline: float, done: Callable[[], bool]) -> bool:
        """Read until EOF (True) or `done()` (True); False if the deadline passed first."""
        if self._pending:
            data, self._pending = self._pending, b""
            sink.feed(data)
        self.sock.setblocking(False)
        while not done():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if not readable(self.sock, min(remaining, 1.0)):
                continue
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                return True
            self._demux(data, sink)
        return True

    def _demux(self, data: bytes, sink: _Sink) -> None:
        frames, self._raw = split_docker_frames(self._raw + data)
        for kind, frame in frames:
            if kind != 1:
                self._keep(frame)
            elif isinstance(sink, _StatusLine) and sink.line is not None:
                self._pending += frame  # after the status line: the verdict reader's
            else:
                if isinstance(sink, _StatusLine):
                    head, newline, rest = frame.partition(b"\n")
                    sink.feed(head + newline)
                    if newline:
                        self._pending += rest
                    continue
                sink.feed(frame)

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


def _await_end(api: Any, exec_id: str, stream: _DemuxedStream, reader: VerdictReader) -> bool:
    """After pytest's finish record: wait for its process to exit and its stream to end (True), reading what
    still arrives. False if either takes longer than EXIT_GRACE_S, or the stream outlives the process by more
    than a moment (something the tests started still holds it): the caller then kills the test uid."""
    deadline = time.monotonic() + EXIT_GRACE_S
    while time.monotonic() < deadline:
        if stream.pump(reader, min(deadline, time.monotonic() + 0.05), lambda: False):
            return _wait_exit(api, exec_id, deadline)  # EOF: every writer is gone
        if _wait_exit(api, exec_id, 0.0):
            return stream.pump(reader, time.monotonic() + 0.2, lambda: False)
    return False


def _wait_exit(api: Any, exec_id: str, deadline: float) -> bool:
    """Poll until the exec has exited (True) or the deadline passed (False)."""
    delay = 0.005
    while True:
        try:
            if not api.exec_inspect(exec_id).get("Running"):
                return True
        except Exception:
            return False
        if time.monotonic() >= deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


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
