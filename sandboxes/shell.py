"""The persistent sentinel shell both backends drive: one bash per sandbox, a byte channel to it, framing.

Why: a `docker exec` per command costs ~80 ms; a round trip to a shell that is already running costs well
under a millisecond. The in-sandbox half is `supervisor.sh`; this module starts it over a transport,
frames commands with a fresh random sentinel each, enforces timeouts from the host (asking the shell to
kill every process but itself), and respawns the shell if a command killed it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import select
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Protocol

from envgym.sandboxes.base import ExecResult, SandboxInfraError

log = logging.getLogger(__name__)

SUPERVISOR_SCRIPT = resources.files("envgym.sandboxes").joinpath("supervisor.sh").read_text()
# How long a shell gets to answer a kill or a ping before we declare it wedged and respawn it.
KILL_GRACE_S = 1.5
START_TIMEOUT_S = 60.0
TIMEOUT_EXIT_CODE = 124
SHELL_DIED_EXIT_CODE = -1
SHELL_DIED_NOTE = (
    "\n[envgym: the command killed the sandbox shell; a fresh shell was started, "
    "so the working directory and exported variables are back to their initial values]\n"
)


def readable(fd: int | socket.socket, timeout: float) -> bool:
    """Whether `fd` has data (or end of file) within `timeout` seconds. poll, not select: select cannot watch a
    descriptor numbered 1024 or more, which a process holding a few hundred sandboxes reaches."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(max(timeout, 0.0) * 1000.0))


class ShellDied(Exception):
    """The channel to the shell closed (EOF) before the expected answer."""


class Transport(Protocol):
    """A byte channel to a running `bash -c supervisor.sh`."""

    def send(self, data: bytes) -> None: ...
    def recv(self, timeout: float) -> bytes | None:
        """Some bytes; b"" at EOF; None if nothing arrived within `timeout` seconds."""
        ...

    def close(self) -> None: ...


class FdTransport:
    """A write fd and a (non-blocking) read fd to a supervisor: pipes to a local process, or FIFOs."""

    def __init__(self, write_fd: int, read_fd: int, initial: bytes = b"") -> None:
        self._in = write_fd
        self._out = read_fd
        self._initial = initial  # bytes read before the transport was built (the FIFO handshake)
        os.set_blocking(self._out, False)

    def send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                n = os.write(self._in, view)
            except (BrokenPipeError, OSError) as exc:
                raise ShellDied(str(exc)) from exc
            view = view[n:]

    def recv(self, timeout: float) -> bytes | None:
        if self._initial:
            data, self._initial = self._initial, b""
            return data
        if not readable(self._out, timeout):
            return None
        try:
            return os.read(self._out, 65536)
        except BlockingIOError:
            return None

    def close(self) -> None:
        for fd in (self._in, self._out):
            with contextlib.suppress(OSError):
                os.close(fd)


class PipeTransport(FdTransport):
    """Stdin/stdout pipes of a local process (a local shell, or `docker exec -i`)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdin is not None and proc.stdout is not None
        self.proc = proc
        super().__init__(proc.stdin.fileno(), proc.stdout.fileno())

    def close(self) -> None:
        for stream in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            log.warning("shell process %s did not exit after SIGKILL", self.proc.pid)


class FifoTransport(FdTransport):
    """Two FIFOs the supervisor opened (Docker: a host directory bind-mounted into the container), so commands
    and answers skip the engine's relay; `relay` is the exec's own attach stream, kept open for the exec's life
    and closed with the transport."""

    def __init__(self, write_fd: int, read_fd: int, initial: bytes, relay: Transport) -> None:
        super().__init__(write_fd, read_fd, initial)
        self._relay = relay

    def close(self) -> None:
        super().close()
        self._relay.close()


def split_docker_frames(raw: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """Docker's multiplexed exec stream cut into whole (stream, payload) frames (1 stdout, 2 stderr), plus the
    unfinished rest. Each frame: 8-byte header (stream, 3 zero bytes, big-endian size), then the payload."""
    frames: list[tuple[int, bytes]] = []
    start = 0
    while len(raw) - start >= 8:
        size = int.from_bytes(raw[start + 4 : start + 8], "big")
        end = start + 8 + size
        if end > len(raw):
            break
        frames.append((raw[start], raw[start + 8 : end]))
        start = end
    return frames, raw[start:]


class DockerSocketTransport:
    """The attached socket of a docker SDK exec: stdout frames are demultiplexed, stderr dropped."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.sock.setblocking(False)
        self._raw = b""
        self._eof = False

    def send(self, data: bytes) -> None:
        try:
            self.sock.setblocking(True)
            self.sock.sendall(data)
        except OSError as exc:
            raise ShellDied(str(exc)) from exc
        finally:
            self.sock.setblocking(False)

    def _demux(self) -> bytes:
        frames, self._raw = split_docker_frames(self._raw)
        return b"".join(payload for stream, payload in frames if stream == 1)

    def recv(self, timeout: float) -> bytes | None:
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            if self._eof:
                return b""
            if not readable(self.sock, deadline - time.monotonic()):
                return None
            try:
                chunk = self.sock.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                chunk = b""
            if not chunk:
                self._eof = True
                return b""
            self._raw += chunk
            data = self._demux()
            if data:
                return data

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


# The framer's own files in its control directory (supervisor.sh). The backends create them, agent-owned, in a
# directory the agent cannot add to, remove from or rename in: the agent may write their contents (its commands
# do), but cannot swap one for a FIFO, a symlink or a device, which would hang or mislead the framer for good.
FRAMER_FILES = ("out", "state", "next", "start", "end", "names")


@dataclass(frozen=True)
class ShellConfig:
    """What the supervisor needs to know about its sandbox."""

    control_dir: str
    workspace: str
    max_output_bytes: int
    # "all": `kill -9 -1` from the shell reaches every other sandbox process and nothing outside
    # (Docker: the agent uid; local: a PID namespace). "none": the host kills them instead.
    kill_mode: str
    restore_snippet: str
    limits_snippet: str = ""
    state_dir: str = ""  # tmpfs for the per-command state file; defaults to control_dir
    shell_binary: str = "bash"  # an execute-only copy makes the framer non-dumpable (see supervisor.sh)

    def argv(self, ready: str, pending: str = "") -> list[str]:
        return [
            self.shell_binary,
            "--noprofile",
            "--norc",
            "-c",
            SUPERVISOR_SCRIPT,
            "envgym-shell",
            ready,
            self.control_dir,
            self.workspace,
            str(self.max_output_bytes),
            self.kill_mode,
            self.restore_snippet,
            self.limits_snippet,
            pending,
            self.state_dir or self.control_dir,
        ]


class ChannelReader:
    """Accumulates channel bytes and pulls out framed answers, keeping host memory bounded (also used by the
    Docker backend's root restorer, which answers in lines)."""

    def __init__(self, transport: Transport, max_payload: int) -> None:
        self.t = transport
        self.buf = bytearray()
        self.max_payload = max_payload

    def _fill(self, deadline: float) -> bool:
        chunk = self.t.recv(deadline - time.monotonic())
        if chunk is None:
            return False
        if chunk == b"":
            raise ShellDied("EOF from shell")
        self.buf += chunk
        return True

    def wait_line(self, prefix: bytes, deadline: float) -> bytes | None:
        """Bytes of the line starting with `prefix` (a sentinel), discarding anything before it."""
        while True:
            idx = self.buf.find(prefix)
            if idx >= 0:
                end = self.buf.find(b"\n", idx)
                if end >= 0:
                    line = bytes(self.buf[idx:end])
                    del self.buf[: end + 1]
                    return line
            elif len(self.buf) > len(prefix) + 64:
                # Junk nobody asked for (e.g. a process writing to the shell's stdout): drop it.
                del self.buf[: len(self.buf) - len(prefix) - 64]
            if not self._fill(deadline) and time.monotonic() >= deadline:
                return None

    def read_exact(self, n: int, deadline: float) -> bytes | None:
        while len(self.buf) < n:
            if not self._fill(deadline) and time.monotonic() >= deadline:
                return None
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data


def _header(op: bytes, sentinel: bytes, size: int = 0) -> bytes:
    """A request header for supervisor.sh: fixed-size (46 bytes), so the framer reads it with one read()."""
    header = b"%s %s %010d\n" % (op, sentinel, size)
    if len(sentinel) != 32 or len(header) != 46:
        raise ValueError(f"bad request header {header!r}")
    return header


_BEGIN = re.compile(rb" BEGIN (\d+)$")
_END = re.compile(rb" END (-?\d+) ([01])$")


class PersistentShell:
    """One supervisor bash reached over a transport; `run` is thread-safe (one command at a time).

    The backend supplies `spawn(argv) -> Transport` (start a supervisor), `kill_others(pid)` (kill every
    sandbox process except the supervisor `pid`: the timeout path) and `kill_all()` (kill every sandbox
    process including the supervisor: the last resort when it stops answering).
    """

    def __init__(
        self,
        spawn: Callable[[list[str]], Transport],
        config: ShellConfig,
        kill_others: Callable[[int], None],
        kill_all: Callable[[], None],
    ) -> None:
        self._spawn = spawn
        self.config = config
        self._kill_others = kill_others
        self._kill_all = kill_all
        self._lock = threading.RLock()
        self._transport: Transport | None = None
        self._reader: ChannelReader | None = None
        self.pid = -1
        self.respawns = 0

    @property
    def lock(self) -> threading.RLock:
        """Held while a command or a reset is in flight; a backend holds it across a multi-step reset."""
        return self._lock

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self, pending: str = "") -> tuple[str, int, bool] | None:
        """Start a supervisor; with `pending`, return its report on that command (output so far, rc)."""
        with self._lock:
            ready = secrets.token_hex(16)
            transport = self._spawn(self.config.argv(ready, pending))
            reader = ChannelReader(transport, self.config.max_output_bytes)
            deadline = time.monotonic() + START_TIMEOUT_S
            try:
                line = reader.wait_line(ready.encode() + b" READY ", deadline)
                if line is None:
                    raise ShellDied(f"no answer within {START_TIMEOUT_S:.0f} s")
                self.pid = int(line.rsplit(b" ", 1)[1])
                self._transport, self._reader = transport, reader
                return self._read_frame(pending.encode(), deadline) if pending else None
            except (ShellDied, ValueError) as exc:
                transport.close()
                self._transport = self._reader = None
                raise SandboxInfraError(f"the sandbox shell did not start ({exc})") from exc

    def close(self) -> None:
        with self._lock:
            if self._transport is not None:
                self._transport.close()
            self._transport = self._reader = None

    def _respawn(self, pending: str = "") -> tuple[str, int, bool] | None:
        self.close()
        self._kill_all()
        self.respawns += 1
        return self.start(pending)

    # -- commands ----------------------------------------------------------------------------------

    def run(self, command: str, timeout: float) -> ExecResult:
        with self._lock:
            start = time.monotonic()
            if self._transport is None:
                self.start()
            # bash cannot hold a NUL, and the framer's `read -N` skips NULs without counting them (one would make
            # it read into the next request)
            payload = command.encode("utf-8", errors="replace").replace(b"\0", b"")
            sentinel = secrets.token_hex(16)
            message = _header(b"R", sentinel.encode(), len(payload)) + payload
            try:
                assert self._transport is not None
                self._transport.send(message)
            except ShellDied:
                # The shell was already gone, so the command never started: respawn and send it again.
                self._respawn()
                assert self._transport is not None
                self._transport.send(message)
            return self._collect(sentinel, start, start + timeout)

    def _collect(self, sentinel: str, start: float, deadline: float) -> ExecResult:
        prefix = sentinel.encode()
        timed_out = False
        died = False
        try:
            frame = self._read_frame(prefix, deadline)
            if frame is None:
                timed_out = True
                self._kill_others(self.pid)
                frame = self._read_frame(prefix, time.monotonic() + KILL_GRACE_S)
                if frame is None:  # the command is a loop inside the shell itself
                    log.info("sandbox shell still busy after its children were killed; respawning it")
                    frame = self._respawn(sentinel)
        except ShellDied:
            died = True
            frame = self._respawn(sentinel)
        output, exit_code, truncated = frame or ("", SHELL_DIED_EXIT_CODE, False)
        if timed_out:
            exit_code = TIMEOUT_EXIT_CODE
            output += f"\n[envgym: command timed out after {deadline - start:.1f} s; its processes were killed]"
        elif died:
            output += SHELL_DIED_NOTE
        return ExecResult(
            exit_code=exit_code,
            output=output,
            truncated=truncated,
            timed_out=timed_out,
            duration_s=time.monotonic() - start,
        )

    def _read_frame(self, prefix: bytes, deadline: float) -> tuple[str, int, bool] | None:
        assert self._reader is not None
        header = self._reader.wait_line(prefix + b" BEGIN ", deadline)
        if header is None:
            return None
        match = _BEGIN.search(header)
        if match is None:
            raise ShellDied(f"malformed frame header {header[:80]!r}")
        size = int(match.group(1))
        if size > self.config.max_output_bytes + 512:
            raise ShellDied(f"frame of {size} bytes exceeds the output cap")
        body = self._reader.read_exact(size, deadline)
        if body is None:
            return None
        trailer = self._reader.wait_line(prefix + b" END ", deadline)
        if trailer is None:
            return None
        end = _END.search(trailer)
        if end is None:
            raise ShellDied(f"malformed frame trailer {trailer[:80]!r}")
        return body.decode("utf-8", errors="replace"), int(end.group(1)), end.group(2) == b"1"

    def ping(self, grace: float = KILL_GRACE_S) -> bool:
        with self._lock:
            if self._transport is None or self._reader is None:
                return False
            sentinel = secrets.token_hex(16).encode()
            try:
                self._transport.send(_header(b"P", sentinel))
                return self._reader.wait_line(sentinel + b" PONG", time.monotonic() + grace) is not None
            except ShellDied:
                return False

    def reset(self, timeout: float = 120.0) -> ExecResult:
        """Kill everything else, restore the workspace, forget cwd/env (respawning the shell if needed)."""
        with self._lock:
            start = time.monotonic()
            if self._transport is None:
                self.start()
            if self.config.kill_mode != "all":
                self._kill_others(self.pid)
            sentinel = secrets.token_hex(16)
            try:
                assert self._transport is not None
                self._transport.send(_header(b"Z", sentinel.encode()))
                frame = self._read_frame(sentinel.encode(), start + timeout)
            except ShellDied:
                self._respawn()
                return self.reset(timeout)
            if frame is None:
                self._respawn()
                raise SandboxInfraError(f"sandbox reset did not finish within {timeout:.0f} s")
            output, code, _ = frame
            return ExecResult(exit_code=code, output=output, duration_s=time.monotonic() - start)
