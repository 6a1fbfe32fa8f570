"""Compiled bytecode of a project image's interpreter, made once per image and put into every grading sandbox.

Why (measured for issue 14): the project images ship Debian's standard library without `.pyc` files, so every
fresh Python in a sandbox compiles what it imports again: `import pytest` alone took 1.1-1.6 s, and a six suite
ran 2.2-2.6 s with bytecode against 6.2-7.5 s without (same sandbox, load ~3). A grading sandbox is fresh every
time, so every submit paid it. Bytecode is a function of the image's own files only: `compileall` makes it once
per image, as root, in a throwaway sandbox where nothing else runs (no project code, no agent code); the host
keeps it (`~/.cache/envgym/swe/bytecode`), and each grading sandbox gets it before anything else runs there,
root-owned and read-only, in the `__pycache__` directories where a normal install keeps it. The interpreter
checks every `.pyc` against its source's mtime and size as usual, so a stale one is never used; the test uid can
read them and not write them. Building runs in the background: gradings before it is ready simply compile.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import posixpath
import tarfile
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from envgym.environments.swe.sandboxing import open_swe_sandbox
from envgym.sandboxes import Sandbox, SandboxInfraError

log = logging.getLogger(__name__)
MAX_ARCHIVE_BYTES = 256 * 1024 * 1024
SKIPPED_DIRS = "/(test|tests|idlelib|tkinter|lib2to3|turtledemo|ensurepip|pydoc_data)/"
# As root in the throwaway sandbox: compile what the interpreter can import (not '' / the working directory) and
# write a tar of the .pyc files this made (and their new __pycache__ directories) to stdout.
_COMPILE = r"""
set -e
mark=/tmp/.envgym-bytecode-mark
: > "$mark"
dirs=$("$1" -c 'import os, sys; print("\n".join(p for p in sys.path[1:] if os.path.isdir(p)))')
"$1" -m compileall -q -x "$2" $dirs > /dev/null 2>&1 || true
find $dirs \( -name '*.pyc' -o -name __pycache__ \) -newer "$mark" -print0 | tar --null --no-recursion -cf - -T -
"""


class BytecodeCache:
    """Archives of compiled bytecode per (image, interpreter), built in the background on first request.

    Owned by a Grader: `close()` stops a build in progress (its throwaway sandbox is removed). With
    `build=False` it only reads archives already on disk."""

    def __init__(self, build: bool = True) -> None:
        self.build = build
        self._lock = threading.Lock()
        self._builds: dict[tuple[str, str], Future[bytes]] = {}
        self._image_ids: dict[str, str] = {}
        self._live: set[Sandbox] = set()
        self._closed = False
        self._builder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="envgym-swe-bytecode")

    def get(self, image: str, interpreter: str) -> bytes | None:
        """The archive if it is ready (b"": nothing to add), else None and a build starts in the background."""
        future = self._future(image, interpreter)
        if future is None or not future.done() or future.exception() is not None:
            return None
        return future.result()

    def wait(self, image: str, interpreter: str, timeout: float = 600.0) -> bytes | None:
        """The archive, waiting for its build (benchmarks and tests use this to measure the settled state)."""
        future = self._future(image, interpreter)
        if future is None:
            return None
        try:
            return future.result(timeout=timeout)
        except Exception:
            return None

    def _future(self, image: str, interpreter: str) -> Future[bytes] | None:
        with self._lock:
            if self._closed:
                return None
            key = (image, interpreter)
            future = self._builds.get(key)
            if future is None:  # one attempt per image: a failed build is not retried for every grading
                path = self._path(image, interpreter)
                if path.exists():
                    future = Future()
                    future.set_result(path.read_bytes())
                elif self.build:
                    future = self._builder.submit(self._build_and_keep, image, interpreter, path)
                else:
                    return None
                self._builds[key] = future
            return future

    def _build_and_keep(self, image: str, interpreter: str, path: Path) -> bytes:
        data = self._build(image, interpreter)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(data)
        tmp.replace(path)
        return data

    def _path(self, image: str, interpreter: str) -> Path:
        from envgym.environments.swe.images import cache_dir

        image_id = self._image_ids.get(image)
        if image_id is None:
            from envgym.sandboxes.docker_client import docker_client

            image_id = str(docker_client().images.get(image).id).removeprefix("sha256:")[:24]
            self._image_ids[image] = image_id
        name = hashlib.sha256(f"{interpreter}\n{SKIPPED_DIRS}".encode()).hexdigest()[:12]
        return cache_dir() / "bytecode" / f"{image_id}-{name}.tar"

    def _build(self, image: str, interpreter: str) -> bytes:
        sandbox = open_swe_sandbox(image, "/tmp/envgym-bytecode")
        with self._lock:
            if self._closed:
                sandbox.close()
                raise SandboxInfraError("the bytecode cache was closed")
            self._live.add(sandbox)
        try:
            container = getattr(sandbox, "container", None)
            if container is None:
                raise SandboxInfraError("compiling bytecode needs a Docker sandbox")
            result = container.exec_run(
                ["sh", "-c", _COMPILE, "envgym-bytecode", interpreter, SKIPPED_DIRS], user="0:0", demux=True
            )
            stdout, stderr = result.output
            if result.exit_code != 0:
                raise SandboxInfraError(f"compiling bytecode failed: {(stderr or b'').decode(errors='replace')[-500:]}")
            return clean_archive(stdout or b"")
        finally:
            with self._lock:
                self._live.discard(sandbox)
            sandbox.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            live = list(self._live)
        for sandbox in live:  # the build's exec fails and its thread ends
            sandbox.close()
        self._builder.shutdown(wait=True, cancel_futures=True)


def clean_archive(data: bytes) -> bytes:
    """Only `__pycache__` directories and the `.pyc` files in them, relative, root-owned, read-only for others."""
    if not data:
        return b""
    if len(data) > MAX_ARCHIVE_BYTES:
        raise SandboxInfraError("the compiled bytecode is larger than expected")
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as src, tarfile.open(fileobj=out, mode="w") as dst:
        for member in sorted(src.getmembers(), key=lambda m: m.name):
            name = posixpath.normpath(member.name.lstrip("/"))
            parts = name.split("/")
            if name.startswith("..") or ".." in parts:
                continue
            if member.isdir() and parts[-1] == "__pycache__":
                info = tarfile.TarInfo(name)
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                dst.addfile(info)
            elif member.isreg() and name.endswith(".pyc") and parts[-2:-1] == ["__pycache__"]:
                handle = src.extractfile(member)
                if handle is None:
                    continue
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = member.size, 0o644, member.mtime
                dst.addfile(info, handle)
        empty = not dst.getmembers()
    return b"" if empty else out.getvalue()


def install(sandbox: Sandbox, data: bytes) -> None:
    """Unpack a clean archive at / in a sandbox as root (before any project or agent code runs there)."""
    import docker.errors

    container = getattr(sandbox, "container", None)
    if not data or container is None:
        return
    try:
        container.put_archive("/", data)
    except docker.errors.APIError as exc:
        raise SandboxInfraError(f"could not install compiled bytecode: {exc}") from exc
