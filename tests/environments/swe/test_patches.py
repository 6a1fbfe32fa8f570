"""The strict patch reader: what reaches `git apply` is exactly what it read, and it reads only plain text diffs.

Every forged-reward patch of the red team's review had git act on a file the path filter never saw: a `copy to`
header, a second file after a section's hunks, a traditional header whose first component is not `a/`. The
last test checks the class with real git: for generated hostile patches, every file `git apply` would touch
when handed the reader's output is one the reader reported."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from envgym.environments.swe.patches import read_patch
from envgym.environments.swe.trees import PatchError, apply_unified

HUNK = "@@ -1,2 +1,2 @@\n-x = 1\n+x = 2\n y = 0\n"
CONFTEST = "--- /dev/null\n+++ b/conftest.py\n@@ -0,0 +1,1 @@\n+import os\n"


def kept_text(patch: str) -> str:
    return "".join(section.text for section in read_patch(patch).sections)


def test_a_plain_git_diff_is_read_whole() -> None:
    patch = "diff --git a/pkg/a.py b/pkg/a.py\nindex 1234567..89abcde 100644\n--- a/pkg/a.py\n+++ b/pkg/a.py\n" + HUNK
    read = read_patch(patch)
    assert read.unreadable == [] and [(s.path, s.text) for s in read.sections] == [("pkg/a.py", patch)]


@pytest.mark.parametrize(
    "extra",
    [
        "copy from pkg/a.py\ncopy to conftest.py\n",
        "similarity index 90%\nrename from pkg/a.py\nrename to conftest.py\n",
        "new file mode 120000\n",  # a symlink
        "old mode 100644\nnew mode 160000\n",  # a gitlink
        "GIT binary patch\nliteral 1\nIcmZ?d00001\n",
    ],
)
def test_git_headers_beyond_text_diffs_make_the_section_unreadable(extra: str) -> None:
    patch = f"diff --git a/pkg/a.py b/pkg/a.py\n{extra}--- a/pkg/a.py\n+++ b/pkg/a.py\n" + HUNK
    read = read_patch(patch)
    assert read.sections == [] and read.unreadable == ["pkg/a.py"]


def test_a_second_file_after_a_sections_hunks_is_a_section_of_its_own() -> None:
    patch = "diff --git a/pkg/a.py b/pkg/a.py\n--- a/pkg/a.py\n+++ b/pkg/a.py\n" + HUNK + CONFTEST
    assert [s.path for s in read_patch(patch).sections] == ["pkg/a.py", "conftest.py"]


@pytest.mark.parametrize(
    "old, new",
    [
        ("--- x/conftest.py", "+++ y/conftest.py"),  # git strips any first component
        ("--- a/../conftest.py", "+++ b/../conftest.py"),
        ("--- /dev/null", "+++ /etc/passwd"),
        ("--- a/pkg/./a.py", "+++ b/pkg/./a.py"),
        ("--- a/pkg/a.py", "+++ b/pkg/b.py"),  # two files in one section
        ('--- "a/pkg/x y.py"', '+++ "b/pkg/x y.py"'),
    ],
)
def test_odd_paths_make_a_traditional_section_unreadable(old: str, new: str) -> None:
    read = read_patch(f"{old}\n{new}\n{HUNK}")
    assert read.sections == [] and len(read.unreadable) == 1


def test_counts_decide_where_a_hunk_ends() -> None:
    # a removed line that reads like a header stays inside its hunk
    patch = "--- a/pkg/a.py\n+++ b/pkg/a.py\n@@ -1,2 +1,1 @@\n--- a/evil\n ++ b/evil\n"
    assert [s.path for s in read_patch(patch).sections] == ["pkg/a.py"]
    # lines after the counts are met are not part of it (and are not passed on)
    trailing = "--- a/pkg/a.py\n+++ b/pkg/a.py\n" + HUNK + "+import evil\n-- \n2.39.2\n"
    assert kept_text(trailing) == "--- a/pkg/a.py\n+++ b/pkg/a.py\n" + HUNK
    # a hunk that claims more lines than it has, or fewer than follow before another hunk header
    assert read_patch("--- a/pkg/a.py\n+++ b/pkg/a.py\n@@ -1,3 +1,3 @@\n-x\n+y\n").unreadable == ["pkg/a.py"]
    assert read_patch("--- a/pkg/a.py\n+++ b/pkg/a.py\n" + HUNK + "junk\n@@ -5 +5 @@\n-a\n+b\n").sections == []


def test_text_between_sections_never_reaches_git() -> None:
    patch = "From: someone\nSubject: fix\n\n" + "--- a/pkg/a.py\n+++ b/pkg/a.py\n" + HUNK + "-- \n2.39.2\n"
    assert kept_text(patch) == "--- a/pkg/a.py\n+++ b/pkg/a.py\n" + HUNK


def test_apply_unified_refuses_what_it_cannot_read() -> None:
    tree = {"pkg/a.py": b"x = 1\ny = 0\n"}
    assert apply_unified(tree, "--- a/pkg/a.py\n+++ b/pkg/a.py\n" + HUNK) == {"pkg/a.py": b"x = 2\ny = 0\n"}
    for bad in ("--- /dev/null\n+++ /tmp/x\n@@ -0,0 +1 @@\n+x\n", "--- a/../x\n+++ b/../x\n" + HUNK):
        with pytest.raises(PatchError):
            apply_unified(tree, bad)


GIT = shutil.which("git")


def git(repo: Path, *args: str, stdin: str | None = None) -> str:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(repo), "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null"}
    proc = subprocess.run(["git", *args], cwd=repo, input=stdin, capture_output=True, text=True, env=env)
    return proc.stdout


@pytest.mark.skipif(GIT is None, reason="git is not installed")
def test_real_git_diffs_read_whole(tmp_path: Path) -> None:
    """New, deleted, changed, emptied, mode-changed and no-final-newline files, as `git diff` writes them."""
    git(tmp_path, "init", "-q")
    (tmp_path / "pkg").mkdir()
    for name, text in {"pkg/a.py": "a\nb\n", "pkg/b.py": "gone\n", "pkg/c.py": "x\n", "pkg/d.py": "d\n"}.items():
        (tmp_path / name).write_text(text)
    git(tmp_path, "add", "-A")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base")
    (tmp_path / "pkg/a.py").write_text("a\nB")  # no final newline
    (tmp_path / "pkg/b.py").unlink()
    (tmp_path / "pkg/c.py").write_text("")
    (tmp_path / "pkg/d.py").chmod(0o755)
    (tmp_path / "pkg/new.py").write_text("new\n")
    (tmp_path / "pkg/empty.py").write_text("")
    git(tmp_path, "add", "-A")
    patch = git(tmp_path, "diff", "--cached")
    read = read_patch(patch)
    assert read.unreadable == [] and kept_text(patch) == patch
    assert sorted(s.path for s in read.sections) == [
        "pkg/a.py", "pkg/b.py", "pkg/c.py", "pkg/d.py", "pkg/empty.py", "pkg/new.py"
    ]  # fmt: skip


# Fragments a hostile patch is made of: headers of every kind git knows, hunks right and wrong, text.
FRAGMENTS = [
    "diff --git a/pkg/a.py b/pkg/a.py\n",
    "diff --git a/conftest.py b/conftest.py\n",
    "diff --git a/pkg/a.py b/conftest.py\n",
    "index 1234567..89abcde 100644\n",
    "new file mode 100644\n",
    "deleted file mode 100644\n",
    "copy from pkg/a.py\ncopy to conftest.py\n",
    "rename from pkg/a.py\nrename to tests/test_a.py\n",
    "similarity index 100%\n",
    "--- a/pkg/a.py\n+++ b/pkg/a.py\n",
    "--- /dev/null\n+++ b/conftest.py\n",
    "--- x/pkg/a.py\n+++ y/conftest.py\n",
    "--- a/pkg/a.py\n",
    "+++ b/conftest.py\n",
    HUNK,
    "@@ -0,0 +1 @@\n+import os\n",
    "@@ -1 +1 @@\n-x = 1\n",
    "+evil = 1\n",
    "-x = 1\n",
    " y = 0\n",
    "\\ No newline at end of file\n",
    "\n",
    "garbage\n",
]


@pytest.mark.skipif(GIT is None, reason="git is not installed")
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=14))
def test_git_touches_only_files_the_reader_reported(tmp_path: Path, parts: list[str]) -> None:
    patch = "".join(parts)
    read = read_patch(patch)
    passed_on = "".join(section.text for section in read.sections)
    reported = {section.path for section in read.sections}
    # what git itself says the text it is given would touch (parsed only, nothing applied)
    out = git(tmp_path, "apply", "--numstat", "-z", "--allow-empty", "-", stdin=passed_on) if passed_on else ""
    touched: set[str] = set()
    fields = out.split("\0")
    i = 0
    while i < len(fields) - 1:
        stat = fields[i].split("\t")
        if len(stat) == 3 and stat[2]:
            touched.add(stat[2])
            i += 1
        elif len(stat) == 3:  # a copy or rename: source and destination follow
            touched.update(fields[i + 1 : i + 3])
            i += 3
        else:
            i += 1
    assert touched <= reported, (patch, passed_on, touched)
