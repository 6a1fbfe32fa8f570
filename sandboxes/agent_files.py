"""File reads and writes done by a fresh helper process running as the agent's uid, for every backend.

Why: the engine's archive upload (and a root process on the host) writes as root, so a file tool could
write `/etc`, the venv or the pristine snapshot, and follow a symlink the agent planted to anywhere.
A helper with the agent's uid, in the agent's view of the filesystem, reaches exactly what the agent's
shell reaches and nothing more. It is a fixed binary by absolute path (`tar`, `head`), never the agent's
persistent shell, whose functions and variables the agent controls.
"""

from __future__ import annotations

import io
import posixpath
import tarfile
import time
from collections.abc import Callable, Mapping

# (argv, stdin bytes) -> (exit code, stdout, stderr): a fresh process as the agent, in the agent's view.
AgentRunner = Callable[[list[str], bytes], tuple[int, bytes, bytes]]

READ_CAP_BYTES = 256 * 1024 * 1024
READ_TIMEOUT_S = 60
TAR = "/usr/bin/tar"
HEAD = "/usr/bin/head"
TIMEOUT = "/usr/bin/timeout"
SH = "/bin/sh"
# $1 the path, $2 how many bytes at most. A directory or a missing file gets the message `_error` maps to Python's
# exception (head's own, for a path the agent may not search); anything existing but not a regular file, none.
REGULAR_ONLY = (
    '[ -d "$1" ] && { echo "$1: Is a directory" >&2; exit 1; }; '
    f'[ -f "$1" ] && exec {HEAD} -c "$2" -- "$1"; '
    '[ -e "$1" ] && { echo "$1: not a regular file (a pipe or a device)" >&2; exit 1; }; '
    f'exec {HEAD} -c "$2" -- "$1"'
)


def sandbox_path(path: str, workspace: str) -> str:
    """The absolute, normalized sandbox path of `path` (relative paths are under the workspace)."""
    if not isinstance(path, str) or not path or "\x00" in path:
        raise ValueError(f"invalid sandbox path {path!r}")
    full = posixpath.normpath(posixpath.join(workspace, path))
    if full in ("/", "//"):
        raise IsADirectoryError(f"{path!r} is the root directory")
    return "/" + full.lstrip("/")


def _error(reason: str, what: str) -> OSError:
    lines = [line for line in reason.strip().splitlines() if "Exiting with failure status" not in line]
    text = lines[0] if lines else "failed"
    if "Permission denied" in text or "Read-only file system" in text or "Operation not permitted" in text:
        return PermissionError(f"{what}: the agent may not ({text})")
    if "No such file" in text or "Not a directory" in text:
        return FileNotFoundError(f"{what}: {text}")
    if "Is a directory" in text:
        return IsADirectoryError(f"{what}: {text}")
    return OSError(f"{what}: {text}")


class AgentFiles:
    """read/write through `run` (the backend's way to start a fresh process as the agent)."""

    def __init__(self, run: AgentRunner) -> None:
        self.run = run

    def read(self, path: str, workspace: str, max_bytes: int | None = None) -> bytes:
        """The bytes of a regular file (links followed), at most `max_bytes` (default READ_CAP_BYTES).

        Anything else is refused before a byte is read: a FIFO would block the helper (and the caller) until its
        timeout, and a link to /dev/zero would stream the whole cap into the host's memory."""
        cap = READ_CAP_BYTES if max_bytes is None else max(0, min(max_bytes, READ_CAP_BYTES))
        target = sandbox_path(path, workspace)
        argv = [TIMEOUT, "-s", "KILL", str(READ_TIMEOUT_S), SH, "-c", REGULAR_ONLY, "read", target, str(cap + 1)]
        code, out, err = self.run(argv, b"")
        if code != 0:
            if code == 137:
                raise OSError(f"cannot read {target}: no data within {READ_TIMEOUT_S} s")
            raise _error(err.decode(errors="replace"), f"cannot read {target}")
        if len(out) > cap:
            raise OSError(f"cannot read {target}: larger than {cap} bytes")
        return out

    def write(self, files: Mapping[str, bytes], workspace: str) -> None:
        """Write every file (parents created as needed) in one helper run; all paths are checked first."""
        if not files:
            return
        buf = io.BytesIO()
        now = int(time.time())
        targets = []
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
            for path, data in files.items():
                target = sandbox_path(path, workspace)
                targets.append(target)
                info = tarfile.TarInfo(target.lstrip("/"))
                info.size, info.mode, info.mtime = len(data), 0o644, now
                tar.addfile(info, io.BytesIO(bytes(data)))
        # -U: replace an existing file by unlinking it first, so a planted symlink is replaced, not followed.
        argv = [TAR, "-x", "-U", "--no-same-owner", "--no-same-permissions", "-C", "/", "-f", "-"]
        code, _, err = self.run(argv, buf.getvalue())
        if code != 0:
            what = f"cannot write {targets[0]}" if len(targets) == 1 else f"cannot write {len(targets)} files"
            raise _error(err.decode(errors="replace"), what)
