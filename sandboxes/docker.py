"""DockerSandbox: one long-lived, locked-down container per sandbox, driven through a persistent shell.

Why this shape: container start (~0.4 s) happens once; every command is a round trip to a bash already
running inside it (not a ~80 ms `docker exec`). The container runs `sleep <lifetime>` under Docker's
init as root and nothing else; the agent's shell runs as an unprivileged uid with no capabilities, so
`kill -9 -1` from it (reset) or a /proc sweep (timeouts) reaches every agent process and nothing else.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import secrets
import shutil
import socket
import subprocess
import tarfile
import threading
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from envgym.sandboxes import lifecycle
from envgym.sandboxes.agent_files import AgentFiles
from envgym.sandboxes.base import SandboxInfo, SandboxInfraError, SandboxLimits
from envgym.sandboxes.docker_channel import (
    CHANNEL_MOUNT,
    FIFO_EXEC,
    LABEL_CHANNEL,
    engine_is_local,
    make_channel_dir,
    open_fifo_channel,
    remove_channel_dir,
)
from envgym.sandboxes.docker_client import docker_client
from envgym.sandboxes.shell import (
    FRAMER_FILES,
    START_TIMEOUT_S,
    ChannelReader,
    DockerSocketTransport,
    PersistentShell,
    PipeTransport,
    ShellConfig,
    ShellDied,
    Transport,
)
from envgym.sandboxes.shell_backed import ShellBackedSandbox

log = logging.getLogger(__name__)

STATE_DIR = "/var/lib/envgym"  # root-owned: the pristine workspace copy, the setup markers, the framer
RESTORE_DIR = f"{STATE_DIR}/pristine"  # root-only: the workspace copy (ws/) and the restorer's stamp and dirs
FRAMER = f"{STATE_DIR}/framer"  # an execute-only copy of bash: the kernel makes the framer non-dumpable
# The framer's output and state files: a tmpfs of its own (root's, 0755; its files the agent's, made by setup).
# On the container's disk every command cost ~2 ms more (ext4 flushes a file truncated and rewritten on close,
# and each command truncates its output).
CONTROL_DIR = "/run/envgym"
HOME_DIR = "/tmp/envgym-home"
RESTORE_SCRIPT = resources.files("envgym.sandboxes").joinpath("restore.sh").read_text()
RESTORER_START_TIMEOUT_S = 60.0
# Container starts are serialized by the daemon anyway; more in flight only adds latency to each.
START_SLOTS = threading.BoundedSemaphore(int(os.environ.get("ENVGYM_DOCKER_START_SLOTS", "6")))

# Runs as root (PID 2, under Docker's init): make the workspace the agent's, keep an exact copy of it for reset()
# in a root-only directory with the inode of each of its directories, stamp the time (the restorer puts back
# what changed after it, see restore.sh), then sleep out the container's lifetime. If setup fails, say why and
# linger briefly.
_SETUP = r"""
S=/var/lib/envgym W="$1" U="$2"
fail() { echo "$*" > "$S/failed"; exec sleep 120; }
mkdir -p "$S" "$W" || fail "cannot create $W"
chown -R "$U" "$W" || fail "cannot chown $W to $U"
# The copy goes to its own tmpfs (ws/, mounted by the engine): ~50 ms for 2,000 files where the container's
# overlayfs took 2-4 s. If the workspace does not fit there, it goes to disk (ws.disk/, which the restorer prefers).
P="$S/pristine"
chmod 700 "$P" || fail "cannot seal $P"
if ! cp -a "$W/." "$P/ws/" 2>/dev/null; then
  find "$P/ws" -mindepth 1 -delete && chmod 700 "$P/ws" && cp -a "$W" "$P/ws.disk" || fail "cannot snapshot $W"
fi
chmod 711 "$S" || fail "cannot seal $S"
(cd "$W" && find . -type d -printf '%i %p\0') > "$S/pristine/dirs" || fail "cannot list $W (no GNU find?)"
# The stamp, then the clock past it before the agent can run (as restore.sh's stamp(): a probe rewritten until it
# is newer; on kernels with multigrain timestamps the second one is, with no wait).
: > "$P/stamp" && : > "$P/probe" || fail "cannot stamp $S"
i=0
until [ -n "$(find "$P/probe" -newer "$P/stamp")" ]; do
  i=$((i + 1)); [ $i -gt 400 ] && fail "the clock did not move past the stamp"
  sleep 0.001; : > "$P/probe"
done
cp /bin/bash "$S/framer" && chmod 0111 "$S/framer" || fail "cannot install the framer (no /bin/bash?)"
# The framer's files, the agent's, in root's directory: the agent cannot swap one for a FIFO or a link.
for f in @FRAMER_FILES@; do
  : > "@CONTROL@/$f" && chown "$U" "@CONTROL@/$f" && chmod 600 "@CONTROL@/$f" || fail "cannot create @CONTROL@/$f"
done
touch "$S/ready"
exec sleep "$3"
""".replace("@FRAMER_FILES@", " ".join(FRAMER_FILES)).replace("@CONTROL@", CONTROL_DIR)

# Runs as the agent before the supervisor: wait for setup, make $HOME; then the supervisor, on the exec's own
# stdio (the engine's relay) or on FIFOs (docker_channel.py).
_WAIT_SETUP = r"""
i=0
while [ ! -e /var/lib/envgym/ready ]; do
  if [ -e /var/lib/envgym/failed ]; then cat /var/lib/envgym/failed; exit 96; fi
  i=$((i+1)); [ $i -gt 3000 ] && exit 95
  sleep 0.02
done
mkdir -p "$HOME" 2>/dev/null
"""
_WAIT_READY = _WAIT_SETUP + 'exec "$@"\n'
_WAIT_READY_FIFO = _WAIT_SETUP + FIFO_EXEC

# Runs as the agent on timeout: SIGKILL every process we may signal except the supervisor ($1),
# ourselves and init; repeat while anything was killed (fork bombs refill the table).
_SWEEP = r"""
for round in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
  killed=0
  for d in /proc/[0-9]*; do
    p=${d#/proc/}
    if [ "$p" = "$1" ] || [ "$p" = "$$" ] || [ "$p" = 1 ]; then continue; fi
    IFS= read -r line < "$d/stat" 2>/dev/null || continue
    st=${line##*) }; st=${st%% *}
    [ "$st" = Z ] && continue
    kill -9 "$p" 2>/dev/null && killed=1
  done
  [ $killed = 0 ] && break
done
"""


def _tar_stream(source: Path, arcname: str, uid: int) -> Iterator[bytes]:
    """A tar of `source` as `arcname`, owned by `uid`, streamed from GNU tar while the engine unpacks it.

    Why not Python's tarfile: building the archive in Python cost more than the engine's upload itself
    (~0.6 ms per file under load, and a PAX header per file for the fractional mtime doubled its size)."""
    tar = shutil.which("tar")
    if tar is None or "," in arcname:
        yield _tar_dir(source, arcname, uid)
        return
    argv = [tar, "-C", str(source), "-cf", "-", f"--owner={uid}", f"--group={uid}", "--numeric-owner"]
    # Member names "./x" become "<arcname>/x"; symlink targets are left alone (the S flag).
    argv += ["--transform", f"s,^\\.,{arcname},S", "."]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        while chunk := proc.stdout.read(1 << 20):
            yield chunk
        err = proc.stderr.read()
        if proc.wait() != 0:
            raise SandboxInfraError(f"tar could not read {source}: {err.decode(errors='replace').strip()[:300]}")


def _tar_dir(source: Path, arcname: str, uid: int) -> bytes:
    """The same archive built in Python (where GNU tar is missing)."""

    def owned(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = uid
        info.uname = info.gname = ""
        return info

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        tar.add(str(source), arcname=arcname, filter=owned)
    return buf.getvalue()


def _read_exec_stream(sock: socket.socket) -> tuple[bytes, bytes]:
    """Everything an attached exec wrote, demultiplexed into (stdout, stderr)."""
    raw = bytearray()
    while chunk := sock.recv(65536):
        raw += chunk
    streams: dict[int, bytearray] = {1: bytearray(), 2: bytearray()}
    pos = 0
    while pos + 8 <= len(raw):
        kind, size = raw[pos], int.from_bytes(raw[pos + 4 : pos + 8], "big")
        streams.setdefault(kind, bytearray()).extend(raw[pos + 8 : pos + 8 + size])
        pos += 8 + size
    return bytes(streams[1]), bytes(streams[2])


def control_mb(limits: SandboxLimits) -> int:
    """Size of the framer's tmpfs: what a command's output can take before its writes fail (ENOSPC; the frame
    still shows its first and last bytes). Its pages count against the container's memory, so a quarter of it
    at most, and never more than one file may hold (file_size_mb)."""
    return max(16, min(limits.file_size_mb, limits.memory_mb // 4))


def pristine_mb(limits: SandboxLimits) -> int:
    """Size of the pristine copy's tmpfs. Its pages count against the container's memory, so an eighth of it at
    most: a workspace bigger than that is copied to the container's disk instead (setup falls back)."""
    return max(16, limits.memory_mb // 8)


class _Restorer:
    """The root restorer of one container (restore.sh), over an exec socket of its own; started on first use.

    Why a root process and not the agent's framer: its state (the stamp, the inode of every directory) must be
    out of the agent's reach, or the agent could make the next restore skip what it changed."""

    def __init__(self, sandbox: DockerSandbox) -> None:
        self._box = sandbox
        self._transport: DockerSocketTransport | None = None
        self._reader: ChannelReader | None = None

    def _start(self) -> None:
        import docker.errors

        box = self._box
        token = secrets.token_hex(16)
        argv = [
            "bash",
            "-c",
            RESTORE_SCRIPT,
            "envgym-restore",
            box.workspace,
            str(box.uid),
            RESTORE_DIR,
            HOME_DIR,
            token,
        ]
        api = box._client.api
        try:
            exec_id = api.exec_create(box.container.id, argv, stdin=True, stdout=True, stderr=True, user="0:0")["Id"]
            sock = api.exec_start(exec_id, socket=True)
        except docker.errors.APIError as exc:
            raise box._gone(exc) from exc
        transport = DockerSocketTransport(getattr(sock, "_sock", sock))
        reader = ChannelReader(transport, 4096)
        try:
            line = reader.wait_line(token.encode() + b" READY", time.monotonic() + RESTORER_START_TIMEOUT_S)
        except ShellDied:
            line = None
        if line is None:
            transport.close()
            raise SandboxInfraError("the sandbox's workspace restorer did not start")
        self._transport, self._reader = transport, reader

    def restore(self, framer_pid: int, timeout: float) -> int:
        """Kill the agent's processes but the framer, put the workspace back; returns how many paths it put
        back (-1: everything, the slow path). Raises SandboxInfraError with the restorer's reason."""
        for attempt in (1, 2):
            if self._transport is None:
                self._start()
            assert self._transport is not None and self._reader is not None
            nonce = secrets.token_hex(16)
            try:
                self._transport.send(f"{nonce} {framer_pid}\n".encode())
                line = self._reader.wait_line(nonce.encode() + b" DONE ", time.monotonic() + timeout)
            except ShellDied:
                self.close()
                if attempt == 2:
                    raise self._box._gone() from None
                continue
            if line is None:
                self.close()
                raise SandboxInfraError(f"restoring the workspace did not finish within {timeout:.0f} s")
            fields = line.decode(errors="replace").split(" ", 4)
            rc, count, note = int(fields[2]), int(fields[3]), fields[4] if len(fields) > 4 else ""
            if rc != 0:
                raise SandboxInfraError(f"restoring the workspace failed: {note}")
            if count < 0:
                log.info("sandbox %s: %s", self._box.container.id[:12], note)
            return count
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        self._transport = self._reader = None


Transports = Literal["auto", "fifo", "socket", "cli"]
TRANSPORT_ENV = "ENVGYM_DOCKER_CHANNEL"


# Set once a FIFO channel failed in this process for a reason other than its container (an engine that does not
# see this machine's /tmp: a client in a container talking to the host's socket; a security policy): later
# "auto" sandboxes go straight to the relay instead of failing and warning one by one.
_fifo_failed_here = False


def _transport_kind(requested: str, base_url: str) -> str:
    """How the host talks to the framer. "auto": FIFOs when the engine runs on this machine, else the exec's
    attach socket; $ENVGYM_DOCKER_CHANNEL (fifo, socket, cli) overrides "auto"."""
    kind = requested
    if kind == "auto":
        local = engine_is_local(base_url) and not _fifo_failed_here
        kind = os.environ.get(TRANSPORT_ENV, "").strip() or ("fifo" if local else "socket")
    if kind not in ("fifo", "socket", "cli"):
        raise ValueError(f"unknown Docker transport {kind!r} (from {TRANSPORT_ENV} or transport=): fifo, socket or cli")
    return kind


class DockerSandbox(ShellBackedSandbox):
    """A sandbox in its own container. `source` (a host directory) is copied into the workspace first
    and becomes the pristine state `reset()` returns to, together with what the image has there."""

    def __init__(
        self,
        image: str,
        *,
        source: str | os.PathLike[str] | None = None,
        limits: SandboxLimits | None = None,
        workspace: str = "/workspace",
        env: dict[str, str] | None = None,
        uid: int = 1000,
        transport: Transports = "auto",
    ) -> None:
        self.image = image
        self.limits = limits or SandboxLimits()
        self.workspace = workspace
        self.uid = uid
        self._closed = False
        self._client = docker_client()
        self._transport_kind = _transport_kind(transport, self._client.api.base_url)
        self._channel_dir = ""
        lifecycle.ensure_started(self._client)
        self._env = {
            "HOME": HOME_DIR,
            "TMPDIR": "/tmp",
            "LANG": "C.UTF-8",
            "TERM": "dumb",
            "PAGER": "cat",
            "GIT_PAGER": "cat",
            "PIP_NO_INPUT": "1",
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        self.container: Any = None
        self.files = AgentFiles(self._run_as_agent)
        self._restorer = _Restorer(self)
        self.last_restored = 0  # paths the last reset() put back (-1: all of them); for benchmarks and tests
        try:
            with START_SLOTS:
                self.container = self._create(source)
        except BaseException:
            remove_channel_dir(self._channel_dir)
            raise
        self.shell = PersistentShell(self._spawn, self._shell_config(), self._kill_others, self._kill_all)
        try:
            self.shell.start()
        except SandboxInfraError as exc:
            reason = self._setup_failure()
            self.close()
            raise SandboxInfraError(f"{exc}{': ' + reason if reason else ''}") from exc
        except BaseException:
            self.close()
            raise

    # -- container ---------------------------------------------------------------------------------

    def _create(self, source: str | os.PathLike[str] | None) -> Any:
        import docker.errors
        from docker.types import Ulimit

        lim = self.limits
        fsize = lim.file_size_mb * 1024 * 1024
        labels = lifecycle.owner_labels(lim.lifetime_s)
        volumes: dict[str, dict[str, str]] = {}
        if self._transport_kind == "fifo":
            self._channel_dir = make_channel_dir()
            labels[LABEL_CHANNEL] = self._channel_dir
            volumes[self._channel_dir] = {"bind": CHANNEL_MOUNT, "mode": "ro"}
        try:
            container = self._client.containers.create(
                self.image,
                command=[
                    "sh",
                    "-c",
                    _SETUP,
                    "envgym-setup",
                    self.workspace,
                    f"{self.uid}:{self.uid}",
                    str(lim.lifetime_s),
                ],
                entrypoint=[],
                user="0:0",
                init=True,
                detach=True,
                auto_remove=True,
                network_mode="bridge" if lim.network else "none",
                mem_limit=f"{lim.memory_mb}m",
                memswap_limit=f"{lim.memory_mb}m",
                nano_cpus=int(lim.cpus * 1e9),
                pids_limit=lim.pids,
                cap_drop=["ALL"],
                # Subset of Docker's defaults, for root's setup and restorer only (KILL: the restorer makes sure
                # no agent process is left before it touches the workspace); the agent uid holds none.
                cap_add=["CHOWN", "DAC_OVERRIDE", "FOWNER", "KILL"],
                security_opt=["no-new-privileges"],
                ulimits=[Ulimit(name="fsize", soft=fsize, hard=fsize)],
                tmpfs={
                    CONTROL_DIR: f"size={control_mb(lim)}m,mode=0755",  # root's: the agent cannot add or swap files
                    f"{RESTORE_DIR}/ws": f"size={pristine_mb(lim)}m,mode=0700",  # the pristine copy, root-only
                },
                labels=labels,
                volumes=volumes,
                working_dir="/",
                environment=self._env,
                hostname="sandbox",
            )
        except docker.errors.ImageNotFound as exc:
            raise SandboxInfraError(
                f"image {self.image!r} not found on this Docker engine: build it (`envgym sandbox "
                "build-base`, or envgym.sandboxes.images.build_recipe) or `docker load` it."
            ) from exc
        except docker.errors.APIError as exc:
            raise SandboxInfraError(f"Docker could not create a container from {self.image!r}: {exc}") from exc
        try:
            if source is not None:
                container.put_archive("/", _tar_stream(Path(source), self.workspace.strip("/"), self.uid))
            container.start()
        except docker.errors.APIError as exc:
            with contextlib.suppress(docker.errors.APIError):
                container.remove(force=True)
            raise SandboxInfraError(f"Docker could not start a container from {self.image!r}: {exc}") from exc
        return container

    def _setup_failure(self) -> str:
        try:
            out = self.container.exec_run(["cat", f"{STATE_DIR}/failed"], user="0:0")
            return out.output.decode(errors="replace").strip() if out.exit_code == 0 else ""
        except Exception:
            return ""

    def _gone(self, exc: Exception | None = None) -> SandboxInfraError:
        """Explain a container that stopped answering (OOM-killed, lifetime over, removed)."""
        import docker.errors

        try:
            self.container.reload()
            state = self.container.attrs.get("State", {})
            if state.get("Running"):
                return SandboxInfraError(f"the sandbox container is running but unreachable: {exc}")
            oom = " (OOM-killed: raise SandboxLimits.memory_mb)" if state.get("OOMKilled") else ""
            detail = f"exited with code {state.get('ExitCode')}{oom}"
        except docker.errors.NotFound:
            detail = "was removed (its maximum lifetime passed, or something removed it)"
        except docker.errors.APIError as api_exc:
            detail = f"cannot be inspected ({api_exc})"
        return SandboxInfraError(f"sandbox container {self.container.id[:12]} {detail}; create a new sandbox")

    def _exec_as_agent(self, argv: list[str]) -> Any:
        import docker.errors

        try:
            return self.container.exec_run(argv, user=f"{self.uid}:{self.uid}")
        except docker.errors.APIError as exc:
            raise self._gone(exc) from exc

    # -- shell -------------------------------------------------------------------------------------

    def _shell_config(self) -> ShellConfig:
        return ShellConfig(
            control_dir=CONTROL_DIR,
            state_dir=CONTROL_DIR,
            workspace=self.workspace,
            max_output_bytes=self.limits.max_output_bytes,
            kill_mode="all",
            restore_snippet="true",  # the root restorer puts the workspace back (_after_reset)
            shell_binary=FRAMER,
        )

    def _spawn(self, argv: list[str]) -> Transport:
        if self._transport_kind == "fifo":
            try:
                return open_fifo_channel(
                    self._channel_dir,
                    lambda: self._exec_socket(["sh", "-c", _WAIT_READY_FIFO, "envgym-wait", CHANNEL_MOUNT, *argv]),
                    time.monotonic() + START_TIMEOUT_S,
                    self._start_failure,
                )
            except SandboxInfraError as exc:
                if self._setup_failure():  # the container itself failed, not the channel
                    raise
                # e.g. an engine that mounts another machine's /tmp (a client in a container using the host's
                # socket), or a security policy (SELinux) keeping containers from opening the mounted FIFOs
                global _fifo_failed_here
                if not _fifo_failed_here:
                    log.warning(
                        "the framer's FIFO channel failed here (%s); this process uses the engine's exec relay "
                        "from now on (set %s=socket to skip the attempt)",
                        exc,
                        TRANSPORT_ENV,
                    )
                _fifo_failed_here = True
                self._transport_kind = "socket"
        full = ["sh", "-c", _WAIT_READY, "envgym-wait", *argv]
        if self._transport_kind == "cli":
            proc = subprocess.Popen(
                ["docker", "exec", "-i", "-u", f"{self.uid}:{self.uid}", "-w", "/", self.container.id, *full],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
            return PipeTransport(proc)
        return self._exec_socket(full)

    @staticmethod
    def _start_failure(said: bytes) -> str:
        """Why a framer's start ended early, as its wrapper printed it (the caller adds the setup's reason)."""
        return said.decode("utf-8", "replace").strip()[:300] or "its start-up exited"

    def _exec_socket(self, full: list[str]) -> Transport:
        """`full` started as the agent by the engine, its stdio on the exec's attach socket."""
        import docker.errors

        user = f"{self.uid}:{self.uid}"
        api = self._client.api
        try:
            exec_id = api.exec_create(
                self.container.id, full, stdin=True, stdout=True, stderr=True, tty=False, user=user, workdir="/"
            )["Id"]
            sock = api.exec_start(exec_id, socket=True)
        except docker.errors.APIError as exc:
            raise self._gone(exc) from exc
        return DockerSocketTransport(getattr(sock, "_sock", sock))

    def _kill_others(self, shell_pid: int) -> None:
        self._exec_as_agent(["bash", "-c", _SWEEP, "envgym-sweep", str(shell_pid)])

    def _kill_all(self) -> None:
        self._exec_as_agent(["bash", "-c", "kill -9 -1; kill -9 -1; true"])

    # -- the Sandbox protocol ----------------------------------------------------------------------

    def reset(self) -> None:
        """The framer kills every agent process and forgets its state; then the root restorer checks that they
        are gone and puts back what changed in the workspace (restore.sh). Commands wait for both."""
        self._check_open()
        with self.shell.lock:
            super().reset()

    def _after_reset(self) -> None:
        self.last_restored = self._restorer.restore(self.shell.pid, self.limits.default_timeout_s)

    def _run_as_agent(self, argv: list[str], stdin: bytes) -> tuple[int, bytes, bytes]:
        """A fresh `docker exec` as the agent's uid (never the agent's shell), stdin streamed to it."""
        import docker.errors

        self._check_open()
        api = self._client.api
        user = f"{self.uid}:{self.uid}"
        try:
            exec_id = api.exec_create(self.container.id, argv, stdin=True, user=user, workdir="/")["Id"]
            sock = api.exec_start(exec_id, socket=True)
            raw = getattr(sock, "_sock", sock)
            try:
                raw.sendall(stdin)
                raw.shutdown(socket.SHUT_WR)
                out, err = _read_exec_stream(raw)
            finally:
                raw.close()
            code = api.exec_inspect(exec_id).get("ExitCode")
        except docker.errors.APIError as exc:
            raise self._gone(exc) from exc
        return (-1 if code is None else int(code)), out, err

    def info(self) -> SandboxInfo:
        image_id = self.container.attrs.get("Image", "") if self.container is not None else ""
        return SandboxInfo(backend="docker", image=self.image, image_id=image_id, limits=self.limits)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        shell = getattr(self, "shell", None)
        if shell is not None:
            shell.close()
        restorer = getattr(self, "_restorer", None)
        if restorer is not None:
            restorer.close()
        if self.container is not None:
            try:
                self.container.remove(force=True)
            except Exception as exc:  # already removed (auto_remove) or daemon gone
                log.debug("removing %s: %s", self.container.id[:12], exc)
        remove_channel_dir(self._channel_dir)

    def read_tree(self, path: str, max_bytes: int = 64 * 1024 * 1024) -> bytes:
        """A tar of `path` read by the engine API, never through the shell (so graders need not trust what the
        agent did to it). Raises FileNotFoundError if absent, OverflowError past `max_bytes` (stops reading)."""
        import docker.errors

        self._check_open()
        target = path if path.startswith("/") else f"{self.workspace.rstrip('/')}/{path}"
        try:
            stream, _ = self.container.get_archive(target, chunk_size=1 << 20)
            chunks, size = [], 0
            for chunk in stream:
                size += len(chunk)
                if size > max_bytes:
                    close = getattr(stream, "close", None)
                    if callable(close):
                        close()
                    raise OverflowError(f"{target} holds more than {max_bytes} bytes")
                chunks.append(chunk)
        except docker.errors.NotFound as exc:
            raise FileNotFoundError(target) from exc
        except docker.errors.APIError as exc:
            raise self._gone(exc) from exc
        return b"".join(chunks)


def open_docker_sandbox(image: str | None = None, **options: Any) -> DockerSandbox:
    """The `docker` row of `open_sandbox`: `image` defaults to envgym's offline-built base image."""
    if image is None:
        from envgym.sandboxes.images.base_image import ensure_base_image

        image = ensure_base_image()
    return DockerSandbox(image, **options)
