"""The Docker framer's channel through FIFOs in a host directory, so commands skip the engine's relay.

Why: through `docker exec`'s attach stream every byte passes dockerd and the runtime's shim, which cost
~0.3 ms per round trip and ~0.35-0.6 ms of the engine's CPU per command (benchmarks/sandbox.py); a FIFO is
a kernel pipe between the host process and the framer, like the local jail's. Only for an engine on this
machine (a bind mount of a host directory must reach the container); elsewhere the relay stays.

Who can reach the FIFOs: the directory is mounted read-only (no agent can create, rename or chmod anything in
it, whatever its uid) with mode 0311 (nobody in the container can list it). Each framer start gets a fresh
pair of FIFOs named by a 128-bit token, sent to the starting wrapper over the exec's own stdin; the host
removes both names as soon as the framer holds them, before any agent command is sent. From then on they
are reachable only through the framer's fds, which the kernel keeps from the agent's processes (the framer
is non-dumpable, see supervisor.sh), exactly as the relay's pipes were.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from envgym.sandboxes.base import SandboxInfraError
from envgym.sandboxes.shell import FifoTransport, ShellDied, Transport, readable

log = logging.getLogger(__name__)

CHANNEL_MOUNT = "/run/envgym-chan"  # where the host directory appears in the container, read-only
CHANNEL_PREFIX = "envgym-chan-"
LABEL_CHANNEL = "envgym.channel_dir"  # lets the reaper remove the directory of a container whose owner died

# The framer's start in FIFO mode (after the setup wait of docker.py's _WAIT_READY): the token on stdin names
# the FIFOs; stdin first (the host opens its write end once we are there), then stdout (the host holds its read
# end already). Anything but 32 hex digits is refused. The framer's stderr goes nowhere (every transport drops
# it): on the relay, which nobody reads once the FIFOs carry the frames, it could fill the engine's buffers.
FIFO_EXEC = r"""
IFS= read -r tok || exit 94
case $tok in *[!0-9a-f]* | '') exit 94 ;; esac
[ ${#tok} -eq 32 ] || exit 94
c=$1; shift
exec "$@" < "$c/$tok.in" > "$c/$tok.out" 2> /dev/null
"""


def engine_is_local(base_url: str) -> bool:
    """True for an engine reached over a unix socket on Linux: its bind mounts are this machine's directories
    (a remote engine, or Docker Desktop's VM, would not see them as FIFOs)."""
    return sys.platform.startswith("linux") and base_url.startswith("http+docker://")


def make_channel_dir() -> str:
    """A fresh host directory for one container's FIFOs: writable by this process only, listable by no one."""
    path = tempfile.mkdtemp(prefix=CHANNEL_PREFIX)
    os.chmod(path, 0o311)  # the container's uids may cross it (x) to a FIFO they can name, never list it
    return path


def remove_channel_dir(path: str) -> None:
    """Remove a directory made by make_channel_dir (a label's value is checked: only ours, never a link)."""
    p = Path(path)
    if not p.name.startswith(CHANNEL_PREFIX) or p.parent != Path(tempfile.gettempdir()) or p.is_symlink():
        return
    with contextlib.suppress(OSError):
        os.chmod(p, 0o700)
    shutil.rmtree(p, ignore_errors=True)


def open_fifo_channel(
    channel_dir: str, start: Callable[[], Transport], deadline: float, describe_failure: Callable[[bytes], str]
) -> FifoTransport:
    """Start a framer with `start()` (an exec whose argv ends in FIFO_EXEC's) and connect to it through a fresh
    pair of FIFOs; returns once its first bytes arrived (the READY line), with both names already removed."""
    token = secrets.token_hex(16)
    fifo_in, fifo_out = (os.path.join(channel_dir, f"{token}.{end}") for end in ("in", "out"))
    write_fd = read_fd = -1
    relay: Transport | None = None
    try:
        for path in (fifo_in, fifo_out):
            os.mkfifo(path, 0o600)
            os.chmod(path, 0o666)  # the container's agent uid opens them; their names are the secret
        read_fd = os.open(fifo_out, os.O_RDONLY | os.O_NONBLOCK)
        relay = start()
        relay.send(token.encode() + b"\n")
        write_fd = _open_writer(fifo_in, relay, deadline, describe_failure)
        os.set_blocking(write_fd, True)
        first = _first_bytes(read_fd, relay, deadline, describe_failure)
        return FifoTransport(write_fd, read_fd, first, relay)
    except BaseException:
        for fd in (write_fd, read_fd):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        if relay is not None:
            relay.close()
        raise
    finally:
        for path in (fifo_in, fifo_out):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


def _relay_ended(relay: Transport, describe_failure: Callable[[bytes], str]) -> None:
    """Raise if the exec ended (its wrapper failed: the setup, or the FIFOs); its output says why."""
    said = b""
    while True:
        try:
            chunk = relay.recv(0.0)
        except ShellDied:
            chunk = b""
        if chunk is None:
            return
        if not chunk:
            raise SandboxInfraError(f"the sandbox shell did not start ({describe_failure(said)})")
        said = (said + chunk)[:4096]


def _open_writer(path: str, relay: Transport, deadline: float, describe_failure: Callable[[bytes], str]) -> int:
    """The FIFO's write end, once the framer's wrapper opened its read end (ENXIO until then)."""
    while True:
        try:
            return os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENXIO:
                raise
        _relay_ended(relay, describe_failure)
        if time.monotonic() > deadline:
            raise SandboxInfraError("the sandbox shell did not start (it never opened its channel)")
        time.sleep(0.001)


def _first_bytes(read_fd: int, relay: Transport, deadline: float, describe_failure: Callable[[bytes], str]) -> bytes:
    """The framer's first output. Until it opens its end, a read says end of file; after, we wait for data."""
    while True:
        ready = readable(read_fd, 0.005)
        if ready:
            try:
                data = os.read(read_fd, 65536)
            except BlockingIOError:
                data = None
            if data:
                return data
        _relay_ended(relay, describe_failure)
        if time.monotonic() > deadline:
            raise SandboxInfraError("the sandbox shell did not start (no answer on its channel)")
        if ready:
            time.sleep(0.001)  # no writer yet: a read-ready FIFO at end of file would spin
