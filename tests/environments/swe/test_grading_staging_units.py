"""The pieces of staged grading that need no Docker: which commands a prestarted pytest may stand in for, how
the zygote tells that importing pytest touched the repository, what a bytecode archive may contain, and when
the agent's change is written directly instead of through `git apply`."""

from __future__ import annotations

import io
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from envgym.environments.swe import suite_zygote
from envgym.environments.swe.bytecode import clean_archive
from envgym.environments.swe.grading import _touches_only_tests, _write_change, diff_trees
from envgym.environments.swe.schema import SWETask
from envgym.environments.swe.testrun import interpreter_of, zygote_command

Z = "/var/lib/g/z.py"


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("python -m pytest -p no:cacheprovider -q tests", f"python {Z} -p no:cacheprovider -q tests"),
        ("PYTHONPATH=.:/d python3 -m pytest -q tests", f"PYTHONPATH=.:/d python3 {Z} -q tests"),
        ("/opt/venv/bin/python3.11 -m pytest", f"/opt/venv/bin/python3.11 {Z}"),
        ("pytest tests", None),  # a console script puts another directory first on sys.path
        ("python -m unittest", None),
        ("cd x && python -m pytest", None),  # shell syntax: runs as written
        ("python -m pytest $ARGS", None),
        ("python -m pytest 'a b'", None),
        ("python -W error -m pytest", None),
        ("", None),
    ],
)
def test_only_plain_python_m_pytest_commands_are_prestarted(command: str, expected: str | None) -> None:
    assert zygote_command(command, Z) == expected
    assert (interpreter_of(command) is not None) == (expected is not None)


def test_the_zygote_sees_a_module_imported_from_the_repository(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "pkgshadow").mkdir(parents=True)
    (repo / "pkgshadow" / "__init__.py").write_text("")
    (repo / "modshadow.py").write_text("")
    root = str(repo.resolve())
    assert not suite_zygote._loaded_from(root)
    sys.path.insert(0, str(repo))
    try:
        import modshadow  # type: ignore[import-not-found]  # noqa: F401

        assert suite_zygote._loaded_from(root)
        del sys.modules["modshadow"]
        assert not suite_zygote._loaded_from(root)
        import pkgshadow  # type: ignore[import-not-found]  # noqa: F401

        assert suite_zygote._loaded_from(root)
    finally:
        sys.path.remove(str(repo))
        sys.modules.pop("modshadow", None)
        sys.modules.pop("pkgshadow", None)


def _tar(entries: list[tuple[str, bytes | None, str]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data, kind in entries:
            info = tarfile.TarInfo(name)
            info.uid = info.gid = 1000
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o777
                tar.addfile(info)
            elif kind == "link":
                info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
                tar.addfile(info)
            else:
                info.size, info.mode = len(data or b""), 0o777
                tar.addfile(info, io.BytesIO(data or b""))
    return buf.getvalue()


def test_a_bytecode_archive_keeps_only_pycache_contents_root_owned() -> None:
    raw = _tar(
        [
            ("usr/lib/py/__pycache__", None, "dir"),
            ("usr/lib/py/__pycache__/os.cpython-311.pyc", b"code", "file"),
            ("usr/lib/py/__pycache__/evil.cpython-311.pyc", None, "link"),
            ("usr/lib/py/os.py", b"source", "file"),
            ("usr/lib/py/__pycache__/notes.txt", b"x", "file"),
            ("../etc/__pycache__/x.pyc", b"x", "file"),
            ("/abs/__pycache__/y.pyc", b"y", "file"),
        ]
    )
    with tarfile.open(fileobj=io.BytesIO(clean_archive(raw))) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert sorted(members) == [
        "abs/__pycache__/y.pyc",
        "usr/lib/py/__pycache__",
        "usr/lib/py/__pycache__/os.cpython-311.pyc",
    ]
    assert all(m.uid == 0 and m.gid == 0 and not m.mode & 0o022 for m in members.values())
    assert clean_archive(b"") == b"" and clean_archive(_tar([("a.py", b"x", "file")])) == b""


class Untouchable:
    """A sandbox that must not be used: every refusal below happens before anything is written."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the sandbox was used ({name}) although the change had to go through git apply")


@pytest.mark.parametrize(
    "case",
    ["deleted file", "new file", "agent file differs from the patch", "odd path", "patch that does not apply"],
)
def test_the_direct_write_steps_aside_whenever_it_is_not_provably_git_apply(case: str, minimal_task: SWETask) -> None:
    task = minimal_task
    before = {"pkg/a.py": "x = 1\n", "pkg/b.py": "y = 2\n"}
    agent = {"pkg/a.py": "x = 2\n", "pkg/b.py": "y = 2\n"}
    if case == "deleted file":
        agent = {"pkg/a.py": "x = 1\n"}
    if case == "new file":
        agent = {**agent, "pkg/c.py": "z = 3\n"}
    kept = diff_trees(before, agent)
    if case == "agent file differs from the patch":
        agent = {**agent, "pkg/a.py": "x = 3\n"}
    if case == "odd path":
        before, agent = {**before, "pkg/a b.py": "z = 1\n"}, {**agent, "pkg/a b.py": "z = 2\n"}
        kept = diff_trees(before, agent)
    if case == "patch that does not apply":
        kept = kept.replace("-x = 1", "-x = 9")
    assert _write_change(Untouchable(), task, before, kept, agent) is False  # type: ignore[arg-type]
    assert _write_change(Untouchable(), task, before, "", before) is True  # type: ignore[arg-type]


def test_a_test_patch_goes_in_early_only_when_it_touches_tests_alone(minimal_task: SWETask) -> None:
    task = minimal_task
    tests_only = diff_trees({"tests/test_a.py": "a\n"}, {"tests/test_a.py": "b\n"})
    mixed = tests_only + diff_trees({"pkg/a.py": "a\n"}, {"pkg/a.py": "b\n"})
    assert _touches_only_tests(tests_only, task)
    assert not _touches_only_tests(mixed, task)
    assert not _touches_only_tests("", task)
