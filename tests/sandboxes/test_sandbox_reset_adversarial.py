"""reset() against an adversarial agent, on both backends (the real Docker engine, the bubblewrap jail): whatever
the agent did to the workspace as its uid, after reset() the tree equals the pristine one exactly (names, types,
modes, owners, link counts, sizes, mtimes, symlink targets, file contents), as root sees it (Docker: root inside
the container; local: the host), never through the agent's shell.

The restore is incremental (it puts back only inodes whose ctime moved: sandboxes/restore.sh, tree_restore.py),
so each case is one class of change an agent could try to hide from it. One sandbox per backend serves every
case: resets in a row are part of what is tested, and each case asserts that the restore took the incremental
path when it should. The restorer's shortcuts each have a case aimed at them: the stamp taken without waiting
for the clock (a change made right after a restore), the names of a directory compared as one sorted merge
(odd names, sorting next to each other, more of them than one compared chunk), and Docker's persistent walkers
(no more than two per sandbox, and a reset still exact when one dies).
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# Root's view of the workspace: one line per entry (type, mode, owner, link count, size of non-directories,
# mtime, symlink target, path), then an md5 of every regular file. Directory sizes are left out: ext4 never
# shrinks a directory, so they say how many entries it once held, not what it holds.
SNAPSHOT = r"""
cd /workspace || exit 1
find . -printf '%y %m %U:%G %n %T@ %l %p' -a \( -type d -printf ' -\n' -o -printf ' %s\n' \) | LC_ALL=C sort
find . -type f -exec md5sum {} + | LC_ALL=C sort -k 2
"""

CASES = {
    # content changed in place, same size, mtime set back: only the ctime says it changed
    "same-size edit, mtime forged": "t=$(stat -c %y a/x.py); printf Z | dd of=a/x.py bs=1 seek=3 conv=notrunc "
    '2>/dev/null; touch -d "$t" a/x.py',
    "edit and future mtime": "echo more >> a/x.py; touch -d 2099-01-01 a/x.py b",
    "deletions": "rm a/x.py; rm -rf b; rm .hidden",
    "renames": "mv a/x.py a/moved.py; mv b/same.py b/.same",
    # two directories swapped: names, sizes and mtimes inside them match, contents do not
    "directory swap": "mv a t && mv b a && mv t b",
    "file swap": "mv a/same.py t && mv b/same.py a/same.py && mv t b/same.py",
    "moved subtree": "mv b/deep a/deep2 && mkdir -p b/deep/deeper && cp -p a/deep2/deeper/leaf b/deep/deeper/",
    "new files and directories": "mkdir -p new/deep; echo x > new/deep/f; touch a/new.py .other; mkdir b/deep/sub",
    "chmod": "chmod 777 a/x.py; chmod 700 a; chmod 000 b/deep; chmod 1777 .",
    "symlink swaps": "rm a/x.py; ln -s /etc/passwd a/x.py; rm -rf b; ln -s /etc b; ln -sfn /tmp link",
    "hardlink swaps": "ln -f a/x.py b/same.py; ln a/same.py a/extra; ln a/same.py /tmp/outside",
    "file <-> directory": "rm a/x.py; mkdir a/x.py; touch a/x.py/f; rm -rf b; echo file > b; rm link; mkdir link",
    "fifos": "mkfifo a/fifo; rm b/same.py; mkfifo b/same.py",
    "unreadable and undeletable": "mkdir -p locked/in; touch locked/in/f; chmod 000 locked/in locked a; chmod 111 b",
    "huge file": "head -c 50000000 /dev/zero > a/x.py; truncate -s 900M b/sparse",
    "a writer that keeps running": "setsid nohup sh -c 'while :; do echo w >> a/x.py; touch new$$; sleep 0.01; done'"
    " >/dev/null 2>&1 & sleep 0.3",
    "everything copied back by hand": "cp -a a /tmp/a && rm -rf a && cp -a /tmp/a a",
    "the restorer's state": "touch -d 2099-01-01 /var/lib/envgym/stamp; echo x > /var/lib/envgym/dirs; "
    "echo x >> a/x.py; true",
    # names that sort next to each other, glob and shell characters, a newline, non-ASCII bytes: deleted,
    # added between their neighbours, renamed, in a directory with more names than one merge chunk
    "odd names": "cd names && rm -- f07 '*' $'a\\nb' a && touch -- f07x f15a '[y]' $'a\\nc' 'a b c' A0 && mv -- -rf -rg "
    "&& mv -- x\\\\y 'x y'",
}

# More names than restore.sh compares in one chunk (16), some of them odd.
ODD_NAMES = [f"f{i:02d}" for i in range(30)] + [
    "-rf",
    "a b",
    "a\nb",
    "*",
    "[x]",
    "x\\y",
    "\u00e9t\u00e9",
    "Z",
    "_",
    "~",
    ".dot",
    "a.b",
    "a-b",
    "ab",
    "a",
]


def _source(root: Path) -> Path:
    (root / "a").mkdir()
    (root / "b" / "deep" / "deeper").mkdir(parents=True)
    (root / "a" / "x.py").write_text("X = 1\n" * 50)
    (root / "a" / "same.py").write_text("A = 'aaaa'\n")
    (root / "b" / "same.py").write_text("B = 'bbbb'\n")
    (root / "b" / "deep" / "deeper" / "leaf").write_text("leaf\n")
    (root / "b" / "run.sh").write_text("#!/bin/sh\n")
    (root / "b" / "run.sh").chmod(0o755)
    (root / ".hidden").write_text("h\n")
    (root / "link").symlink_to("a/x.py")
    (root / "names").mkdir()
    for name in ODD_NAMES:
        (root / "names" / name).write_text(name)
    return root


@pytest.fixture(scope="module", params=["local", pytest.param("docker", marks=pytest.mark.docker)])
def box(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    source = _source(tmp_path_factory.mktemp("src"))
    if request.param == "docker":
        from envgym.sandboxes.docker import DockerSandbox

        sb: Any = DockerSandbox(request.getfixturevalue("base_image"), source=source)
    else:
        from envgym.sandboxes.local import LocalSandbox

        sb = LocalSandbox(source)
    try:
        yield sb
    finally:
        sb.close()


def snapshot(sb: Any) -> str:
    if hasattr(sb, "container"):
        out = sb.container.exec_run(["bash", "-c", SNAPSHOT], user="0:0")
        assert out.exit_code == 0, out.output
        return str(out.output.decode(errors="replace"))
    return host_snapshot(sb._root / "workspace")


def host_snapshot(root: Path) -> str:
    """The same listing for a host directory (the local jail's workspace), read by this (root) process."""
    lines = []
    for top, dirs, files in os.walk(root):
        for name in [".", *dirs, *files] if top == str(root) else [*dirs, *files]:
            path = Path(top) / name if name != "." else Path(top)
            st = os.lstat(path)
            rel = os.path.relpath(path, root)
            kind = stat.filemode(st.st_mode)[0]
            link = os.readlink(path) if stat.S_ISLNK(st.st_mode) else ""
            size = "-" if stat.S_ISDIR(st.st_mode) else str(st.st_size)
            digest = hashlib.md5(path.read_bytes()).hexdigest() if stat.S_ISREG(st.st_mode) else ""
            lines.append(
                f"{kind} {st.st_mode:o} {st.st_uid}:{st.st_gid} {st.st_nlink} {st.st_mtime_ns} {link} {rel} {size} {digest}"
            )
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(top, d))]
    return "\n".join(sorted(lines))


@pytest.fixture(scope="module")
def pristine(box: Any) -> str:
    return snapshot(box)


@pytest.mark.parametrize("case", list(CASES))
def test_reset_restores_the_exact_pristine_tree(box: Any, pristine: str, case: str) -> None:
    box.reset()
    assert snapshot(box) == pristine  # the previous case left nothing behind
    box.exec(CASES[case], timeout=60)
    assert snapshot(box) != pristine, "the case changed nothing: it tests nothing"
    box.reset()
    assert snapshot(box) == pristine, case
    assert box.last_restored > 0, "expected the incremental path (paths put back), not a full copy"
    assert box.exec("ls /tmp | grep -v envgym; echo done").output == "done\n"
    box.reset()  # nothing changed since: nothing to put back
    assert box.last_restored == 0
    assert snapshot(box) == pristine


def test_unchanged_workspace_puts_nothing_back(box: Any, pristine: str) -> None:
    box.reset()
    box.exec("cat a/x.py > /dev/null; ls -R . > /dev/null; cd b; export X=1")
    box.reset()
    assert box.last_restored == 0
    assert snapshot(box) == pristine


def test_the_restorer_and_its_state_are_out_of_reach(box: Any, pristine: str) -> None:
    if not hasattr(box, "container"):
        pytest.skip("Docker's root restorer (the local jail's state is on the host, outside the jail)")
    box.reset()  # the restorer runs from the first reset on
    for command in (
        "ls /var/lib/envgym/pristine",
        "touch /var/lib/envgym/pristine/planted",
        "touch -d 2099-01-01 /var/lib/envgym/stamp",
        ": > /var/lib/envgym/dirs",
        "cat /var/lib/envgym/dirs",
    ):
        assert box.exec(command).exit_code != 0, command
    # It is root's process: the agent sees it but cannot signal it.
    out = box.exec(
        "for p in /proc/[0-9]*; do c=$(tr '\\0' ' ' < $p/cmdline 2>/dev/null); case $c in *envgym-restore*) "
        "echo found; kill -9 ${p#/proc/} 2>/dev/null && echo killed;; esac; done; true"
    ).output
    assert out == "found\n"
    box.exec("echo x >> a/x.py")
    box.reset()
    assert snapshot(box) == pristine


def test_a_change_right_after_a_restore_is_seen(box: Any, pristine: str) -> None:
    """The stamp is taken without waiting for a clock tick: an edit made by the first command after a restore,
    same size and mtime forged, must still be newer than it (and, on Docker, seen by the walker started after
    the answer)."""
    for _ in range(5):
        box.exec("echo x >> a/x.py")
        box.reset()
        assert box.last_restored > 0  # a new stamp was taken
        box.exec(CASES["same-size edit, mtime forged"])
        box.reset()
        assert box.last_restored > 0
        assert snapshot(box) == pristine


# the processes running `find` in the container (between resets, only the restorer's walkers do, and its deleter,
# a `find -delete`, left out here), with their uid
WALKERS = r"""for p in /proc/[0-9]*; do read -r c < $p/comm && [ "$c" = find ] && ! tr '\0' ' ' < $p/cmdline | grep -q -- -delete && echo "${p#/proc/} $(stat -c %u $p)"; done; true"""
DELETERS = r"""for p in /proc/[0-9]*; do read -r c < $p/comm && [ "$c" = find ] && tr '\0' ' ' < $p/cmdline | grep -q -- -delete && echo "${p#/proc/} $(stat -c %u $p)"; done; true"""


@pytest.mark.docker
def test_walkers_do_not_pile_up_and_a_dead_one_is_replaced_by_find(base_image: str, tmp_path: Path) -> None:
    """Docker's restorer keeps root `find`s walking the workspace on request (one per core, two at most),
    restarted after every new stamp: never more, and when one dies the reset is still exact (a plain find
    does the walk)."""
    from envgym.sandboxes.docker import DockerSandbox

    with DockerSandbox(base_image, source=_source(tmp_path)) as sb:
        pristine = snapshot(sb)
        for _ in range(3):
            sb.exec("echo x >> a/x.py; rm b/same.py")
            sb.reset()
            assert sb.last_restored > 0
        found = sb.container.exec_run(["bash", "-c", WALKERS], user="0:0").output.decode().split()
        pids, uids = found[0::2], found[1::2]
        assert 1 <= len(pids) <= 2 and set(uids) == {"0"}, found  # one walker per core (two at most), root's
        sb.container.exec_run(["kill", "-9", pids[-1]], user="0:0")
        sb.exec(CASES["same-size edit, mtime forged"] + "; " + CASES["directory swap"])
        sb.reset()
        assert sb.last_restored > 0
        assert snapshot(sb) == pristine
        sb.exec("echo x >> a/x.py")
        sb.reset()
        assert snapshot(sb) == pristine


@pytest.mark.docker
def test_one_deleter_and_a_dead_one_is_replaced_by_rm(base_image: str, tmp_path: Path) -> None:
    """What a reset removes goes to one resident root `find -delete` (never following a symlink: a link is
    removed, not what it points to); when it dies the reset is still exact (rm does it)."""
    from envgym.sandboxes.docker import DockerSandbox

    with DockerSandbox(base_image, source=_source(tmp_path)) as sb:
        pristine = snapshot(sb)
        sb.exec("rm a/x.py; ln -s /etc/hostname a/x.py; mkdir -p new/d; ln -s /etc new/d/etc; touch new/d/f")
        sb.reset()
        assert sb.last_restored > 0 and snapshot(sb) == pristine
        assert sb.container.exec_run(["test", "-s", "/etc/hostname"]).exit_code == 0
        found = sb.container.exec_run(["bash", "-c", DELETERS], user="0:0").output.decode().split()
        assert len(found) == 2 and found[1] == "0", found  # one, root's
        sb.container.exec_run(["kill", "-9", found[0]], user="0:0")
        sb.exec(CASES["new files and directories"] + "; " + CASES["deletions"])
        sb.reset()
        assert sb.last_restored > 0 and snapshot(sb) == pristine
        sb.exec(CASES["symlink swaps"])
        sb.reset()
        assert snapshot(sb) == pristine


TEMP_JUNK = {
    "a dotfile in /dev/shm": "touch /dev/shm/.hidden",
    "a file in $HOME": "touch $HOME/.bashrc",
    "junk behind an unreadable /tmp": "touch /tmp/junk; chmod 000 /tmp",
    "junk behind an unreadable $HOME": "mkdir -p $HOME/d; touch $HOME/d/f; chmod 000 $HOME",
    "$HOME replaced by a file": "rm -rf $HOME; touch $HOME",
    "$HOME replaced by a symlink": "rm -rf $HOME; ln -s /workspace $HOME",
}


@pytest.mark.parametrize("case", list(TEMP_JUNK))
def test_reset_empties_the_temp_dirs_and_gives_a_usable_home(box: Any, case: str) -> None:
    """The clean-up skips its work when the temp dirs look clean: every way of looking clean while not must fail."""
    box.reset()
    box.exec(TEMP_JUNK[case])
    box.reset()
    listing = box.exec('ls -A /tmp /dev/shm "$HOME" | grep -v "^/\\|^$\\|^\\.envgym$"; echo done')
    assert listing.output.strip().splitlines() == ["envgym-home", "done"], (case, listing.output)
    usable = box.exec('test -d "$HOME" && ! test -L "$HOME" && touch "$HOME/x" /tmp/y && echo ok')
    assert usable.output == "ok\n", (case, usable.output)
