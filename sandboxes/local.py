"""LocalSandbox: the no-daemon backend, a bubblewrap jail on this host driven through the persistent shell.

Why bubblewrap: agent code must never run on the host unconfined, and a Docker engine is not always there.
bwrap (Debian's `bubblewrap`) gives each sandbox its own user, mount, PID, network, IPC and UTS namespaces,
a private /proc, the host's /usr read-only and everything else hidden, the workspace as the only writable
host directory, and no capabilities. As root we also drop to a host uid of its own per sandbox and put it in
cgroup v1 pids/memory groups before bwrap starts, so it can neither signal nor read other host processes,
nor leave its limits. Where bwrap cannot build that jail, `LocalSandbox` refuses with `SandboxUnavailable`
naming Docker; it never falls back to running commands on the host.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import pwd
import secrets
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from envgym.sandboxes.agent_files import AgentFiles
from envgym.sandboxes.base import (
    SandboxInfo,
    SandboxInfraError,
    SandboxLimits,
    SandboxUnavailable,
)
from envgym.sandboxes.shell import FRAMER_FILES, PersistentShell, PipeTransport, ShellConfig, Transport, readable
from envgym.sandboxes.shell_backed import ShellBackedSandbox
from envgym.sandboxes.tree_restore import TreeRestorer

log = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")
WORKSPACE = "/workspace"  # where the workspace appears inside the jail (as in Docker)
CONTROL = "/.envgym"  # inside: the framer's output and state files
FRAMER = "/.envgym-bin/bash"  # inside: an execute-only copy of bash (a non-dumpable framer)
HOME = "/tmp/envgym-home"
AGENT_UID = 1000  # the uid commands see inside the jail
# The host's /etc is hidden; these read-only bits are what programs need to run (names, libraries, locale).
ETC_FILES = (
    "passwd",
    "group",
    "hosts",
    "nsswitch.conf",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "alternatives",
    "localtime",
    "mime.types",
    "ssl",
    "ca-certificates",
)
START_TIMEOUT_S = 30.0


@functools.cache
def bwrap_problem() -> str:
    """Why bubblewrap cannot build a jail here ("" when it can): probed once per process."""
    exe = shutil.which("bwrap")
    if exe is None:
        return "bubblewrap is not installed (Debian/Ubuntu: `apt-get install bubblewrap`)"
    probe = [exe, "--unshare-all", "--die-with-parent", "--ro-bind", "/usr", "/usr", *_lib_links(), "--proc", "/proc"]
    try:
        out = subprocess.run([*_drop_to(_probe_uid()), *probe, "/usr/bin/true"], capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bubblewrap did not run ({exc})"
    if out.returncode != 0:
        return f"bubblewrap cannot create namespaces here: {out.stderr.decode(errors='replace').strip()[:300]}"
    return ""


def _probe_uid() -> int | None:
    return _free_uid() if os.geteuid() == 0 else None


def _free_uid() -> int:
    """An unused host uid for one sandbox (root only): nothing else on the host runs as it or owns files."""
    while True:
        uid = 1_000_000 + secrets.randbelow(1_000_000_000)
        try:
            pwd.getpwuid(uid)
        except KeyError:
            return uid


@functools.cache
def _default_signals() -> list[str]:
    """`env --default-signal` where coreutils has it (>= 8.31): every signal back to its default action and
    unblocked before the jail starts. Why: dispositions and the signal mask survive fork and exec, and bash cannot
    reset a signal that was ignored on entry (nor unblock one), so without it the agent's commands inherit whatever
    the host process had: under `nohup` (SIGHUP ignored) or from a thread that blocks signals, `kill -HUP` or
    `kill -TERM` of a command did nothing; and bash starts the launcher's `bwrap ... &` with SIGINT and SIGQUIT
    ignored (Python in the jail would never raise KeyboardInterrupt)."""
    try:
        probe = subprocess.run(["env", "--default-signal", "true"], capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return []
    if probe.returncode != 0:
        log.warning("env --default-signal is missing (coreutils < 8.31): the jail inherits this process's signals")
        return []
    return ["env", "--default-signal"]


def _drop_to(uid: int | None) -> list[str]:
    if uid is None:
        return []
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all", "--"]


def _lib_links() -> list[str]:
    """/bin, /lib... as the host has them: symlinks into /usr (merged /usr) or read-only binds."""
    args: list[str] = []
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        host = Path("/") / name
        if host.is_symlink():
            args += ["--symlink", os.readlink(host), str(host)]
        elif host.is_dir():
            args += ["--ro-bind", str(host), str(host)]
    return args


@functools.cache
def cgroup_controllers() -> tuple[str, ...]:
    """cgroup v1 controllers we may create child groups in (root only); () elsewhere."""
    found = []
    for controller in ("pids", "memory"):
        path = CGROUP_ROOT / controller
        if os.geteuid() == 0 and (path / "cgroup.procs").exists() and os.access(path, os.W_OK):
            found.append(controller)
    return tuple(found)


class LocalSandbox(ShellBackedSandbox):
    """A sandbox on this host inside a bubblewrap jail; paths are as the jail sees them (`/workspace`)."""

    def __init__(
        self,
        source: str | os.PathLike[str] | None = None,
        *,
        limits: SandboxLimits | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        problem = bwrap_problem()
        if problem:
            raise SandboxUnavailable(
                f"no local isolation boundary: {problem}. Install bubblewrap, or use the Docker backend "
                "(open_sandbox('docker', ...)); envgym never runs agent code on the host unconfined."
            )
        self.limits = limits or SandboxLimits()
        self.workspace = WORKSPACE
        self.id = secrets.token_hex(6)
        self._closed = False
        self._proc: subprocess.Popen[bytes] | None = None
        self._watchdog: int | None = None
        self._ns: str | None = None
        self._init_pid: int | None = None
        self.last_restored = 0  # paths the last reset() put back (-1: all of them); for benchmarks and tests
        self.host_uid = _free_uid() if os.geteuid() == 0 else None
        owner = self.host_uid if self.host_uid is not None else os.geteuid()
        # Host layout: <root> (0711, ours) holds the pristine copy (never mounted), the framer binary and the
        # agent-owned workspace and /tmp; the control dir is on tmpfs (it is rewritten every command).
        self._root = Path(tempfile.mkdtemp(prefix=f"envgym-local-{self.id}-"))
        shm = Path("/dev/shm")
        self._control = (
            Path(tempfile.mkdtemp(prefix=f"envgym-{self.id}-", dir=shm))
            if shm.is_dir() and os.access(shm, os.W_OK)
            else self._root / "control"
        )
        try:
            self._layout(source, owner)
            self._cgroups = self._make_cgroups()
            self._env = self._base_env(env or {})
            self.files = AgentFiles(self._run_as_agent)
            self.shell = PersistentShell(self._spawn, self._shell_config(), self._kill_others, self._kill_all)
            self.shell.start()
        except BaseException:
            self.close()
            raise

    # -- setup -------------------------------------------------------------------------------------

    def _layout(self, source: str | os.PathLike[str] | None, owner: int) -> None:
        os.chmod(self._root, 0o711)
        ws, tmp, shm = self._root / "workspace", self._root / "tmp", self._root / "shm"
        pristine = self._root / "pristine"
        if source is not None:
            shutil.copytree(source, pristine, symlinks=True)
        else:
            pristine.mkdir()
        shutil.copytree(pristine, ws, symlinks=True)
        for private in (tmp, shm):
            private.mkdir(mode=0o700)
        self._control.mkdir(exist_ok=True)
        os.chmod(self._control, 0o755)
        framer_files = [self._control / name for name in FRAMER_FILES]
        for path in framer_files:
            path.touch(mode=0o600)
        for path in (ws, *ws.rglob("*"), tmp, shm, *framer_files):
            os.lchown(path, owner, owner)
        self._restorer = TreeRestorer(ws, pristine, owner, self._root)
        # Execute-only: the kernel marks a process running a binary it cannot read as non-dumpable.
        bindir = self._root / "bin"
        bindir.mkdir(mode=0o711)
        shutil.copyfile("/bin/bash", bindir / "bash")
        os.chmod(bindir / "bash", 0o111)

    def _base_env(self, extra: dict[str, str]) -> dict[str, str]:
        env = {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG": "C.UTF-8",
            "HOME": HOME,
            "TMPDIR": "/tmp",
            "TERM": "dumb",
            "PAGER": "cat",
            "GIT_PAGER": "cat",
            "PIP_NO_INPUT": "1",
            "PYTHONUNBUFFERED": "1",
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
                log.info("LocalSandbox: cgroup %s unavailable (%s); rlimits apply instead", path, exc)
                continue
            made.append(path)
        return made

    def _bwrap_argv(self, *, shell: bool) -> list[str]:
        """The jail: same mounts for the shell and for file helpers, so both see what the agent sees."""
        argv = ["bwrap", "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent", "--new-session"]
        if self.limits.network:
            argv.append("--share-net")
        argv += ["--uid", str(AGENT_UID), "--gid", str(AGENT_UID), "--hostname", "sandbox", "--clearenv"]
        argv += ["--ro-bind", "/usr", "/usr", *_lib_links()]
        for name in ETC_FILES:
            argv += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
        argv += ["--proc", "/proc", "--dev", "/dev"]
        for name, inside in (("tmp", "/tmp"), ("shm", "/dev/shm"), ("workspace", WORKSPACE)):
            argv += ["--bind", str(self._root / name), inside]
        # The control dir read-only, each framer file bound writable over it: the agent writes their contents but
        # cannot add, unlink, rename or swap a file there (a FIFO in place of `out` would hang the framer for good).
        argv += ["--ro-bind", str(self._control), CONTROL]
        for name in FRAMER_FILES:
            argv += ["--bind", str(self._control / name), f"{CONTROL}/{name}"]
        argv += ["--ro-bind", str(self._root / "bin"), "/.envgym-bin"]
        argv += ["--remount-ro", "/"]  # the jail's own root: nothing but the binds above is writable
        for key, value in self._env.items():
            argv += ["--setenv", key, value]
        argv += ["--chdir", WORKSPACE if shell else "/"]
        return argv

    def _limits_snippet(self) -> str:
        limits = self.limits
        ulimit = [f"-f {limits.file_size_mb * 1024}", f"-t {limits.cpu_time_s}"]
        controllers = {p.parent.name for p in self._cgroups}
        if "memory" not in controllers:
            ulimit.append(f"-v {limits.memory_mb * 1024}")
        if "pids" not in controllers and self.host_uid is not None:
            ulimit.append(f"-u {limits.pids}")  # this uid is the sandbox's alone: the count is its own
        return "ulimit " + " ".join(ulimit) + " 2>/dev/null; " + f'mkdir -p "{HOME}" 2>/dev/null'

    def _shell_config(self) -> ShellConfig:
        # As the agent, inside the jail: empty /tmp and /dev/shm (the host then puts back what changed in the
        # workspace: TreeRestorer).
        # Fast path, no fork: nothing there but an empty, usable $HOME (globs see every name, dotfiles included,
        # only in directories we can read and search: hence the -r/-x checks, or a chmod 000 would hide junk).
        dirs = "/tmp /dev/shm"
        clean = (
            f"shopt -s nullglob dotglob; j=(/tmp/* /dev/shm/*); h=({HOME}/*); "
            f"[[ -r /tmp && -x /tmp && -r /dev/shm && -x /dev/shm && ${{#j[@]}} == 1 && ${{j[0]}} == {HOME} "
            f"&& -d {HOME} && ! -L {HOME} && -r {HOME} && -w {HOME} && -x {HOME} && ${{#h[@]}} == 0 ]] && exit 0; "
        )
        restore = clean + (
            f"find {dirs} -mindepth 1 -delete 2>/dev/null || "
            f"{{ chmod -R u+rwX {dirs} 2>/dev/null; find {dirs} -mindepth 1 -delete; }} || exit 3; mkdir -p {HOME}"
        )
        return ShellConfig(
            control_dir=CONTROL,
            state_dir=CONTROL,
            workspace=WORKSPACE,
            max_output_bytes=self.limits.max_output_bytes,
            kill_mode="all",
            restore_snippet=restore,
            limits_snippet=self._limits_snippet(),
            shell_binary=FRAMER,
        )

    def _launcher(self, argv: list[str], watch_fd: int, info_fd: int) -> list[str]:
        """Root-side launcher: join our cgroups, start bwrap (as the sandbox's own uid), then block on the watchdog
        pipe. When this process ends (closed watchdog: our close() or our death), bwrap's --die-with-parent
        kills the jail. (Not bwrap directly: its parent-death signal would follow the Python *thread* that
        started it, so a sandbox made in a worker thread would die with that thread.)"""
        enter = "".join(f"echo $$ > {shlex.quote(str(p / 'cgroup.procs'))} && " for p in self._cgroups)
        bwrap = [*self._bwrap_argv(shell=True), "--info-fd", str(info_fd), *argv]
        jail = shlex.join([*_default_signals(), *_drop_to(self.host_uid), *bwrap])
        # bash (multi-digit fds); an async list's stdin is /dev/null before its own redirections, so the
        # pipe is handed over through a spare fd.
        script = (
            f"{enter}exec {{keep}}<&0; {jail} <&$keep {{keep}}<&- {watch_fd}<&- & "
            f"exec 0</dev/null 1>/dev/null {{keep}}<&- {info_fd}>&-; read -r _ <&{watch_fd}"
        )
        return ["bash", "--noprofile", "--norc", "-c", script]

    def _spawn(self, argv: list[str]) -> Transport:
        self._kill_all()
        watch_r, self._watchdog = os.pipe()
        info_r, info_w = os.pipe()
        try:
            with open(self._root / "launcher.log", "wb") as errlog:
                self._proc = subprocess.Popen(
                    self._launcher(argv, watch_r, info_w),
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=errlog,
                    pass_fds=(watch_r, info_w),
                    env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
                    cwd="/",
                    start_new_session=True,
                )
        finally:
            os.close(info_w)
            os.close(watch_r)
        try:
            self._read_info(info_r)
        finally:
            os.close(info_r)
        return PipeTransport(self._proc)

    def _read_info(self, fd: int) -> None:
        """bwrap's --info-fd JSON gives the host pid of the jail's init; its PID namespace is the sandbox."""
        data = b""
        deadline = time.monotonic() + START_TIMEOUT_S
        info: dict[str, Any] | None = None
        while info is None and time.monotonic() < deadline:
            chunk = os.read(fd, 4096) if readable(fd, deadline - time.monotonic()) else b""
            if not chunk:
                break
            data += chunk
            with contextlib.suppress(ValueError):
                info = json.loads(data)
        try:
            if info is None:
                raise ValueError("no answer on --info-fd")
            self._init_pid = int(info["child-pid"])
            self._ns = os.readlink(f"/proc/{self._init_pid}/ns/pid")
        except (ValueError, KeyError, TypeError, OSError) as exc:
            time.sleep(0.05)
            err = (self._root / "launcher.log").read_text(errors="replace").strip()[-500:]
            raise SandboxInfraError(f"bubblewrap did not start the sandbox ({exc}): {err}") from exc

    # -- killing -----------------------------------------------------------------------------------

    def _candidates(self, zombies: bool) -> list[str]:
        """Host pids that may be in the jail. With a cgroup of its own, its members: every live process of the
        jail is one (the launcher joins it before bwrap starts; the jail cannot reach cgroupfs to leave), and
        reading them costs what the sandbox holds, not what the host runs (a reset checked all ~90 processes
        here, ~5 ms; on a training host with thousands, far more). A process leaves its cgroup as it exits,
        after its files and memory are released, so a zombie is not listed: `zombies` (close() waits until
        the jail is reaped) or no cgroup: every process of the host."""
        cgroups = getattr(self, "_cgroups", ())  # close() after a failed start may come before they exist
        if cgroups and not zombies:
            try:
                return (cgroups[0] / "cgroup.procs").read_text().split()
            except OSError:
                pass
        return [name for name in os.listdir("/proc") if name.isdigit()]

    def _members(self, zombies: bool = False) -> dict[int, int]:
        """host pid -> pid inside the jail, for every process in the sandbox's PID namespace (zombies too, if
        asked: see `_candidates`)."""
        found: dict[int, int] = {}
        if self._ns is None:
            return found
        for pid in self._candidates(zombies):
            try:
                if os.readlink(f"/proc/{pid}/ns/pid") != self._ns:
                    continue
                with open(f"/proc/{pid}/status") as status:
                    for line in status:
                        if line.startswith("NSpid:"):
                            found[int(pid)] = int(line.split()[-1])
                            break
            except OSError:
                continue
        return found

    def _kill_others(self, shell_pid: int) -> None:
        """Timeout path: kill every process in the jail but its init and the framer (pid `shell_pid` inside)."""
        for _ in range(200):
            victims = [pid for pid, inner in self._members().items() if inner not in (1, shell_pid)]
            if not victims:
                return
            for pid in victims:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.002)
        log.debug("LocalSandbox %s: processes were still being created after 200 kill rounds", self.id)

    def _kill_init(self, reaped_within_s: float = 0.0) -> None:
        """SIGKILL the jail's init (the PID namespace dies with it), and wait up to `reaped_within_s` until its
        processes are reaped. close() does this while bwrap and the launcher, the init's parent and
        grandparent on the host, still run and reap it: killed first, the launcher orphaned them, and the
        init's zombie waited for the host's PID 1 to collect it (~1.6 s here), and close() with it."""
        if self._init_pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            if self._members(zombies=True):
                os.kill(self._init_pid, signal.SIGKILL)
        deadline = time.monotonic() + reaped_within_s
        while time.monotonic() < deadline and self._members(zombies=True):
            time.sleep(0.002)

    def _kill_all(self) -> None:
        """End the jail: its init killed (the PID namespace dies with it), then the watchdog closed, which ends
        the launcher (bwrap's --die-with-parent covers the rest)."""
        self._kill_init()
        if self._watchdog is not None:
            os.close(self._watchdog)
            self._watchdog = None
        if self._proc is not None:
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self._proc.pid, signal.SIGKILL)
                self._proc.wait(timeout=10)
            for stream in (self._proc.stdin, self._proc.stdout, self._proc.stderr):
                with contextlib.suppress(OSError):
                    if stream is not None:
                        stream.close()
        self._proc = None
        deadline = time.monotonic() + 10  # the namespace dies with its init, but not instantly
        while self._ns is not None and self._members(zombies=True) and time.monotonic() < deadline:
            time.sleep(0.01)
        self._init_pid = self._ns = None

    # -- file helpers --------------------------------------------------------------------------------

    def _run_as_agent(self, argv: list[str], stdin: bytes) -> tuple[int, bytes, bytes]:
        """A fresh process in a jail with the same mounts, as the agent's uid: it reaches what the agent can."""
        self._check_open()
        full = [*_drop_to(self.host_uid), *self._bwrap_argv(shell=False), *argv]
        proc = subprocess.run(
            full, input=stdin, capture_output=True, timeout=120, env={"PATH": "/usr/bin:/bin"}, cwd="/"
        )
        return proc.returncode, proc.stdout, proc.stderr

    # -- the Sandbox protocol ----------------------------------------------------------------------

    def reset(self) -> None:
        self._check_open()
        with self.shell.lock:  # no command between the framer's kill and the host's restore
            super().reset()

    def _after_reset(self) -> None:
        """Put back what changed in the workspace from the pristine tree (never visible in the jail), as the
        host, once nothing in the jail but its init and the idle framer is left to write it."""
        self._kill_others(self.shell.pid)
        self.last_restored = self._restorer.restore()

    def info(self) -> SandboxInfo:
        return SandboxInfo(backend="local", image="bwrap", limits=self.limits)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if getattr(self, "_ns", None) is not None:
            self._kill_init(reaped_within_s=2.0)  # before the shell's close kills the launcher (see _kill_init)
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
        shutil.rmtree(self._control, ignore_errors=True)

    def __del__(self) -> None:
        if not getattr(self, "_closed", True):
            self.close()


def open_local_sandbox(**options: Any) -> LocalSandbox:
    """The `local` row of `open_sandbox`: a bubblewrap jail, or `SandboxUnavailable` if none can be built."""
    return LocalSandbox(**options)
