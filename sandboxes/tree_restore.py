"""Put a host directory back to its pristine copy at the cost of what changed: the local jail's reset().

The same rule as the Docker backend's root restorer (restore.sh), done by the host, which is trusted and holds
the state in memory: every change to an inode moves its ctime, which an unprivileged process cannot set back,
so after a restore (workspace == pristine, clock past the stamp) an inode whose ctime is not newer than the
stamp is unchanged and at the path it had; a directory that moved is caught by its inode (recorded per path).
Flagged directories that are still the same inode have their entries compared by name; anything else flagged
is removed and copied back whole. Callers must have killed every process that can write the tree first.
"""

from __future__ import annotations

import os
import shutil
import stat
import time
from pathlib import Path
from stat import S_ISDIR

# A directory opened for the walk: never through a symlink (O_NOFOLLOW on the last component; the ones above it
# were seen as directories by this walk, and nothing in the jail runs while it walks).
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class TreeRestorer:
    """`workspace` is made equal to `pristine` again by `restore()`; files copied back are owned by `owner`."""

    def __init__(self, workspace: Path, pristine: Path, owner: int, state_dir: Path) -> None:
        self.ws, self.pristine, self.owner = workspace, pristine, owner
        self._stamp, self._probe = state_dir / "stamp", state_dir / "probe"
        self._dirs: dict[str, int] = {}
        self._listings: dict[str, frozenset[str]] = {}
        self._record(".")
        self._new_stamp()

    # -- the state ------------------------------------------------------------------------------------

    def _record(self, rel: str) -> None:
        """Note the inode of every directory at or under `rel` (pre-order walk, no symlinks followed)."""
        for top, dirs, _files in os.walk(self.ws / rel):
            self._dirs[os.path.relpath(top, self.ws)] = os.lstat(top).st_ino
            dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(top, d))]

    def _new_stamp(self) -> None:
        """A new stamp, then make sure the clock is past it (timestamps can be a whole tick coarse).

        Multigrain timestamps (Linux >= 6.13) give an inode whose time was read since its last change a
        fine-grained time, so the second probe, rewritten at once after a stat, is already newer: no nap then.
        """
        self._stamp.write_bytes(b"")
        self._ref = os.stat(self._stamp).st_mtime_ns
        for attempt in range(2000):
            self._probe.write_bytes(b"")
            if os.stat(self._probe).st_mtime_ns > self._ref:
                return
            if attempt >= 1:
                time.sleep(0.0005)
        raise RuntimeError("the clock did not move past the restore stamp")

    # -- restoring ------------------------------------------------------------------------------------

    def _changed(self) -> list[tuple[str, os.stat_result]]:
        """(path, lstat) of every entry whose ctime is after the stamp, parents before what is in them.

        One fstatat per entry, relative to its directory's fd (no path walked per file), and a path string
        only for what is flagged or descended into: the stat calls are most of the cost."""
        ref = self._ref
        found: list[tuple[str, os.stat_result]] = []
        root_fd = os.open(self.ws, _DIR_FLAGS)
        try:
            root = os.fstat(root_fd)
            if root.st_ctime_ns > ref:
                found.append((".", root))
            stack = ["."]
            while stack:
                rel = stack.pop()
                fd = os.open(rel, _DIR_FLAGS, dir_fd=root_fd) if rel != "." else root_fd
                try:
                    with os.scandir(fd) as it:
                        for entry in it:
                            st = entry.stat(follow_symlinks=False)
                            changed, is_dir = st.st_ctime_ns > ref, S_ISDIR(st.st_mode)
                            if changed or is_dir:
                                path = entry.name if rel == "." else f"{rel}/{entry.name}"
                                if changed:
                                    found.append((path, st))
                                if is_dir:
                                    stack.append(path)
                finally:
                    if fd != root_fd:
                        os.close(fd)
        finally:
            os.close(root_fd)
        # A pre-order with every directory before its contents, whatever the walk order was.
        return sorted(found, key=lambda item: (item[0].count("/") if item[0] != "." else -1, item[0]))

    def restore(self) -> int:
        """Returns how many paths were put back (-1: the whole tree, after a step that could not be done)."""
        try:
            return self._incremental()
        except OSError:
            self._full()
            return -1

    def _incremental(self) -> int:
        changed = self._changed()
        if not changed:
            return 0
        skip: set[str] = set()
        remove: list[str] = []
        back: list[str] = []
        fix: set[str] = set()
        for rel, st in changed:
            if rel in skip or any(a in skip for a in _ancestors(rel)):  # already removed or copied back whole
                continue
            if stat.S_ISDIR(st.st_mode) and self._dirs.get(rel) == st.st_ino:
                fix.add(rel)
                here, there = set(os.listdir(self.ws / rel)), self._pristine_names(rel)
                for name in sorted(there - here):
                    back.append(_join(rel, name))
                    skip.add(back[-1])
                for name in sorted(here - there):
                    remove.append(_join(rel, name))
                    skip.add(remove[-1])
            elif rel == ".":
                raise OSError("the workspace is not the directory it was")
            else:
                remove.append(rel)
                skip.add(rel)
                if os.path.lexists(self.pristine / rel):
                    back.append(rel)
                fix.add(_parent(rel))
        for rel in remove:
            _remove(self.ws / rel)
        for rel in back:
            self._copy_back(rel)
        for rel in sorted(fix - skip, key=lambda r: -r.count("/")):
            self._copy_attrs(rel)
        dead = [k for k in self._dirs for rel in back if k == rel or k.startswith(rel + "/")]
        for key in dead:
            self._dirs.pop(key, None)
        for rel in back:
            if os.path.isdir(self.ws / rel) and not os.path.islink(self.ws / rel):
                self._record(rel)
        self._new_stamp()
        return len(remove) + len(back)

    def _pristine_names(self, rel: str) -> frozenset[str]:
        """The names in a pristine directory, listed once: the pristine tree never changes."""
        names = self._listings.get(rel)
        if names is None:
            names = self._listings[rel] = frozenset(os.listdir(self.pristine / rel))
        return names

    def _copy_back(self, rel: str) -> None:
        src, dst = self.pristine / rel, self.ws / rel
        if src.is_dir() and not src.is_symlink():
            shutil.copytree(src, dst, symlinks=True)
            for path in (dst, *dst.rglob("*")):
                os.lchown(path, self.owner, self.owner)  # moves ctimes only: copytree's times stay
        else:
            shutil.copy2(src, dst, follow_symlinks=False)
            os.lchown(dst, self.owner, self.owner)

    def _copy_attrs(self, rel: str) -> None:
        st = os.lstat(self.pristine / rel)
        os.chmod(self.ws / rel, stat.S_IMODE(st.st_mode))
        os.utime(self.ws / rel, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)

    def _full(self) -> None:
        for entry in os.listdir(self.ws):
            _remove(self.ws / entry)
        shutil.copytree(self.pristine, self.ws, symlinks=True, dirs_exist_ok=True)
        for path in (self.ws, *self.ws.rglob("*")):
            os.lchown(path, self.owner, self.owner)
        self._dirs.clear()
        self._record(".")
        self._new_stamp()


def _ancestors(rel: str) -> list[str]:
    parts = rel.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def _join(rel: str, name: str) -> str:
    return name if rel == "." else f"{rel}/{name}"


def _parent(rel: str) -> str:
    return rel.rsplit("/", 1)[0] if "/" in rel else "."


def _remove(path: Path) -> None:
    """Remove a file, link or tree, whatever modes the agent left on it (never following a symlink)."""
    if not path.is_dir() or path.is_symlink():
        path.unlink()
        return

    def unlock(func: object, failed: str, exc: object) -> None:
        os.chmod(os.path.dirname(failed), 0o700)
        if os.path.isdir(failed) and not os.path.islink(failed):
            os.chmod(failed, 0o700)
            shutil.rmtree(failed)
        else:
            os.unlink(failed)

    os.chmod(path, 0o700)
    shutil.rmtree(path, onerror=unlock)
