"""LocalSandbox: the no-daemon backend, the same persistent shell in a temp workspace on this host.

Why: envgym must work where no Docker engine runs (laptops, CI without Docker). Isolation is weaker than
Docker: commands run as the current user on the host filesystem. What we add: a private PID and network
namespace via `unshare` when the kernel allows it (so a timeout kills every process the command started
and the network is unreachable), cgroup v1 pids/memory limits when running as root, rlimits otherwise.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from envgym.sandboxes.base import ExecResult, SandboxInfo, SandboxInfraError, SandboxLimits
from envgym.sandboxes.shell import PersistentShell, PipeTransport, ShellConfig, Transport

log = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")
MARKER_VAR = "ENVGYM_SANDBOX_ID"


@functools.cache
def namespace_prefix() -> tuple[str, ...]:
    """The `unshare` argv that gives a private PID + network namespace here, or () if none works."""
    if shutil.which("unshare") is None:
        log.warning("LocalSandbox: `unshare` not found: no network or PID isolation for local commands")
        return ()
    base = ("unshare", "--pid", "--fork", "--kill-child", "--net")
    for prefix in (base, (*base, "--user", "--map-root-user")):
        probe = subprocess.run([*prefix, "true"], capture_output=True, timeout=10)
        if probe.returncode == 0:
            return prefix
    log.warning(
        "LocalSandbox: this kernel refuses new PID/network namespaces (%s): commands can reach the network "
        "and a timeout kills only what stays in the command's process group. Use DockerSandbox for isolation.",
        probe.stderr.decode(errors="replace").strip(),
    )
    return ()


@functools.cache
def cgroup_controllers() -> tuple[str, ...]:
    """cgroup v1 controllers we may create child groups in (root only); () elsewhere."""
    found = []
    for controller in ("pids", "memory"):
        path = CGROUP_ROOT / controller
        if os.geteuid() == 0 and (path / "cgroup.procs").exists() and os.access(path, os.W_OK):
            found.append(controller)
    return tuple(found)


class LocalSandbox:
    """A sandbox on this host. Less isolated than DockerSandbox: use it for trusted or test workloads."""

    def __init__(
        self,
        source: str | os.PathLike[str] | None = None,
        *,
        limits: SandboxLimits | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.limits = limits or SandboxLimits()
        self.id = secrets.token_hex(6)
        self._root = Path(tempfile.mkdtemp(prefix=f"envgym-local-{self.id}-"))
        self.workspace = str(self._root / "workspace")
        self._pristine = self._root / "pristine"
        self._control = self._root / "control"
        if source is not None:
            shutil.copytree(source, self.workspace, symlinks=True)
        else:
            os.mkdir(self.workspace)
        shutil.copytree(self.workspace, self._pristine, symlinks=True)
        for sub in ("tmp", "home"):
            (self._control / sub).mkdir(parents=True)
        self._env = self._base_env(env or {})
        self._ns = namespace_prefix()
        self._cgroups = self._make_cgroups()
        self._proc: subprocess.Popen[bytes] | None = None
        self._closed = False
        self.shell = PersistentShell(self._spawn, self._shell_config(), self._kill_others, self._kill_all)
        try:
            self.shell.start()
        except BaseException:
            self.close()
            raise
        self._ns_inode()  # cache our PID namespace while the launcher is certainly alive

    # -- setup -------------------------------------------------------------------------------------

    def _base_env(self, extra: dict[str, str]) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "HOME": str(self._control / "home"),
            "TMPDIR": str(self._control / "tmp"),
            "TERM": "dumb",
            "PAGER": "cat",
            "GIT_PAGER": "cat",
            MARKER_VAR: self.id,
        }
        env.update(extra)
        return env

    def _make_cgroups(self) -> list[Path]:
        made = []
        for controller in cgroup_controllers():
            path = CGROUP_ROOT / controller / f"envgym-{self.id}"
            try:
                path.mkdir()
                if controller == "pids":
                    (path / "pids.max").write_text(str(self.limits.pids))
                else:
                    limit = str(self.limits.memory_mb * 1024 * 1024)
                    (path / "memory.limit_in_bytes").write_text(limit)
                    memsw = path / "memory.memsw.limit_in_bytes"
                    if memsw.exists():
                        memsw.write_text(limit)
            except OSError as exc:
                log.warning("LocalSandbox: cannot set up cgroup %s (%s); relying on rlimits", path, exc)
                continue
            made.append(path)
        return made

    def _shell_config(self) -> ShellConfig:
        limits = self.limits
        ulimit = [f"-f {limits.file_size_mb * 1024}", f"-t {limits.cpu_time_s}"]
        controllers = {p.parent.name for p in self._cgroups}
        if "memory" not in controllers:
            ulimit.append(f"-v {limits.memory_mb * 1024}")
        if "pids" not in controllers and os.geteuid() != 0:
            ulimit.append(f"-u {limits.pids}")
        ws, pristine, control = (shlex.quote(str(p)) for p in (self.workspace, self._pristine, self._control))
        restore = (
            f"chmod -R u+rwX {ws} 2>/dev/null; find {ws} -mindepth 1 -delete && cp -a {pristine}/. {ws}/ && "
            f"rm -rf {control}/tmp {control}/home && mkdir -p {control}/tmp {control}/home"
        )
        shm = Path("/dev/shm")
        state = shm / f"envgym-{self.id}" if shm.is_dir() and os.access(shm, os.W_OK) else None
        self._state_dir = state
        return ShellConfig(
            state_dir=str(state) if state else "",
            control_dir=str(self._control / "shell"),
            workspace=self.workspace,
            max_output_bytes=limits.max_output_bytes,
            kill_mode="all" if self._ns else "none",
            restore_snippet=restore,
            limits_snippet="ulimit " + " ".join(ulimit) + " 2>/dev/null",
        )

    def _spawn(self, argv: list[str]) -> Transport:
        # A small sh puts itself into our cgroups, then execs unshare; no preexec_fn (unsafe with threads).
        enter = "".join(f"echo $$ > {shlex.quote(str(p / 'cgroup.procs'))} && " for p in self._cgroups)
        ns = [a for a in self._ns if a != "--net" or not self.limits.network]
        cmd = argv
        if "--net" in ns:  # a fresh network namespace has only `lo`, and it starts down
            cmd = ["sh", "-c", 'ip link set lo up 2>/dev/null; exec "$@"', "sh", *argv]
        cmd = [*ns, *cmd]
        launcher = ["sh", "-c", enter + 'exec "$@"', "sh", *cmd]
        self._ns_cache: str | None = None  # a respawned shell gets a new namespace
        self._proc = subprocess.Popen(
            launcher,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=self.workspace,
            env=self._env,
            start_new_session=True,
        )
        return PipeTransport(self._proc)

    # -- killing -----------------------------------------------------------------------------------

    def _members(self) -> set[int]:
        """Host pids of this sandbox: our PID namespace, our cgroups, or our marker variable."""
        pids: set[int] = set()
        for cg in self._cgroups:
            with contextlib.suppress(OSError):
                pids.update(int(x) for x in (cg / "cgroup.procs").read_text().split())
        ns = self._ns_inode()
        needle = f"{MARKER_VAR}={self.id}".encode()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if (ns is not None and os.readlink(entry / "ns" / "pid") == ns) or needle in (
                    entry / "environ"
                ).read_bytes().split(b"\0"):
                    pids.add(int(entry.name))
            except OSError:
                continue
        return pids

    def _ns_inode(self) -> str | None:
        """Our PID namespace, read once from the live launcher and cached.

        Reading it at kill time is unsafe: once the launcher has been reaped its pid can be reused by any
        process on the host (a Docker container's init, say), and the sweep would then kill everything in that
        process's namespace. The host's own namespace is never accepted (that would match every process).
        """
        cached: str | None = getattr(self, "_ns_cache", None)
        if cached is not None or not self._ns or self._proc is None or self._proc.poll() is not None:
            return cached
        try:
            inode = os.readlink(f"/proc/{self._proc.pid}/ns/pid_for_children")
        except OSError:
            return None
        if inode == os.readlink("/proc/self/ns/pid"):
            return None  # unshare has not switched namespaces yet
        self._ns_cache = inode
        return inode

    def _supervisor_pids(self) -> set[int]:
        """The launcher (unshare, or the shell itself) and, with a PID namespace, its init (the shell)."""
        keep = {self._proc.pid} if self._proc is not None else set()
        if self._proc is not None and self._ns:
            try:
                children = Path(f"/proc/{self._proc.pid}/task/{self._proc.pid}/children").read_text()
                keep.update(int(x) for x in children.split())
            except OSError:
                pass
        return keep

    def _sweep(self, keep: set[int]) -> None:
        for _ in range(100):
            victims = self._members() - keep
            if not victims:
                return
            for pid in victims:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.005)
        log.warning("LocalSandbox %s: processes kept reappearing while being killed", self.id)

    def _kill_others(self, shell_pid: int) -> None:
        """Timeout path: kill every sandbox process except the supervisor shell (and its launcher)."""
        self._sweep(self._supervisor_pids())

    def _kill_all(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGKILL)
        self._sweep(set())
        if self._proc is not None:
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                log.warning("LocalSandbox %s: shell launcher did not exit", self.id)

    # -- the Sandbox protocol ----------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise SandboxInfraError("this LocalSandbox is closed; create a new one")

    def exec(self, command: str, timeout: float | None = None) -> ExecResult:
        self._check_open()
        return self.shell.run(command, self.limits.default_timeout_s if timeout is None else timeout)

    def _path(self, path: str) -> Path:
        return Path(path) if os.path.isabs(path) else Path(self.workspace) / path

    def read_file(self, path: str) -> bytes:
        self._check_open()
        return self._path(path).read_bytes()

    def write_file(self, path: str, data: bytes) -> None:
        self._check_open()
        target = self._path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)

    def reset(self) -> None:
        self._check_open()
        result = self.shell.reset()
        if result.exit_code != 0:
            raise SandboxInfraError(f"restoring the workspace failed: {result.output[-2000:]}")

    def info(self) -> SandboxInfo:
        return SandboxInfo(backend="local", limits=self.limits)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        shell = getattr(self, "shell", None)
        if shell is not None:
            shell.close()
        self._kill_all()
        for cg in getattr(self, "_cgroups", []):
            for _ in range(100):
                try:
                    cg.rmdir()
                    break
                except OSError:
                    time.sleep(0.01)
        shutil.rmtree(self._root, ignore_errors=True)
        state_dir = getattr(self, "_state_dir", None)
        if state_dir is not None:
            shutil.rmtree(state_dir, ignore_errors=True)

    def __enter__(self) -> LocalSandbox:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __del__(self) -> None:
        if not getattr(self, "_closed", True):
            self.close()


def open_local_sandbox(**options: Any) -> LocalSandbox:
    """The `local` row of `open_sandbox`."""
    return LocalSandbox(**options)
