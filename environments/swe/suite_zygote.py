"""A pytest process started ahead of time in a grading sandbox (uploaded root-owned, run as the test uid).

Why: importing pytest is a fixed cost of every graded run (0.2-1.5 s in a fresh sandbox). This script is what
`python -m pytest ARGS` does, split in two: it imports pytest while the agent is still working, reports on the
verdict channel whether that import stayed clear of the repository, then waits for the grader's `go` line and
runs `pytest.console_main()` with ARGS exactly as `-m pytest` would (the grader has written the agent's change
by then). If importing pytest loaded any module from the working directory (a project that shadows something
pytest imports), it says `tainted` and the grader starts a fresh process instead, so the code under test is
always the code on disk at `go`. It reads stdin one byte at a time: the MAC key that follows `go` is the
verdict plugin's to read. Stdlib only; it runs on the project image's interpreter. It must import nothing from
envgym and run nothing at import unless executed as a script.
"""

from __future__ import annotations

import os
import sys

STATUS_PREFIX = b"ENVGYM-ZYGOTE "
GO = b"go\n"


def _read_line(limit: int = 64) -> bytes:
    data = b""
    while not data.endswith(b"\n") and len(data) < limit:
        byte = os.read(0, 1)
        if not byte:
            break
        data += byte
    return data


def _under(path: object, root: str) -> bool:
    if not isinstance(path, str) or not path:
        return False
    full = os.path.realpath(path)
    return full == root or full.startswith(root + os.sep)


def _loaded_from(root: str) -> bool:
    """Whether any imported module or package lives under `root` (the repository)."""
    for module in list(sys.modules.values()):
        if _under(getattr(module, "__file__", None), root):
            return True
        paths = getattr(module, "__path__", None)
        is_path_list = isinstance(paths, (list, tuple)) or type(paths).__name__ == "_NamespacePath"
        if is_path_list and any(_under(p, root) for p in list(paths)):  # type: ignore[arg-type]
            return True
    return False


def main() -> None:
    here = os.getcwd()
    sys.path[0] = here  # what `python -m pytest` puts first (a script run would put its own directory)
    channel = int(os.environ.get("ENVGYM_VERDICT_FD", "3"))
    try:
        import pytest

        status = b"tainted" if _loaded_from(os.path.realpath(here)) else b"ready"
    except BaseException:
        status = b"failed"
    os.write(channel, STATUS_PREFIX + status + b"\n")
    if status != b"ready" or _read_line() != GO:
        sys.stdout.flush()
        os._exit(97)
    import importlib

    importlib.invalidate_caches()  # the agent's files were written after the finders looked at these directories
    sys.argv[0] = os.path.join(os.path.dirname(pytest.__file__), "__main__.py")
    raise SystemExit(pytest.console_main())


if __name__ == "__main__":
    main()
