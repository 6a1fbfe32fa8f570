"""Source trees built on the host and uploaded into sandboxes: pristine (from the pinned sdist) and buggy.

Why on the host: the sandboxes package snapshots a sandbox's workspace into a world-readable pristine copy (for
`reset`), and anything inside an image is readable by the agent. If the clean project lived in the image, the
agent could diff the fix out of it. So project images carry only Python and the test wheels; the buggy tree is
made here (sdist + bug patch, applied in memory) and uploaded into an empty workspace at reset and at grading.
"""

from __future__ import annotations

import functools
import io
import re
import secrets
import shlex
import tarfile

from envgym.environments.swe.images import fetch_sdist
from envgym.environments.swe.mutations import split_lines
from envgym.environments.swe.patches import read_patch
from envgym.environments.swe.recipes import ProjectRecipe
from envgym.sandboxes import Sandbox, SandboxInfraError

Tree = dict[str, bytes]
_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


class PatchError(ValueError):
    """A patch does not apply to the tree it was made for."""


@functools.lru_cache(maxsize=16)
def _pristine(recipe_json: str) -> tuple[tuple[str, bytes], ...]:
    recipe = ProjectRecipe.model_validate_json(recipe_json)
    files = []
    with tarfile.open(fetch_sdist(recipe)) as tar:
        for member in tar.getmembers():
            parts = member.name.split("/", 1)
            if len(parts) < 2 or not member.isfile():
                continue
            rel = parts[1]
            if not is_relative_inside(rel) or rel == "PKG-INFO" or ".egg-info/" in rel or "/__pycache__/" in f"/{rel}":
                continue
            handle = tar.extractfile(member)
            if handle is not None:
                files.append((rel, handle.read()))
    return tuple(sorted(files))


def is_relative_inside(name: str) -> bool:
    """Whether a tree's file name stays inside the directory it is written under (no `/x`, no `..`, no `.`)."""
    parts = name.split("/")
    return bool(name) and not name.startswith("/") and all(p not in ("", ".", "..") for p in parts)


def pristine_tree(recipe: ProjectRecipe) -> Tree:
    """The project's files exactly as the pinned sdist ships them (cached per process)."""
    return dict(_pristine(recipe.model_dump_json()))


def apply_unified(tree: Tree, patch: str) -> Tree:
    """Apply a git-style unified diff to an in-memory tree (strict: context must match, every section readable
    by patches.py, so paths are plain relative ones: a task file's patch cannot name `/etc/...` or `../`)."""
    read = read_patch(patch)
    if read.unreadable:
        raise PatchError(f"unreadable patch section(s): {', '.join(read.unreadable[:5])}")
    out = dict(tree)
    for section in read.sections:
        if section.before and section.path not in out:
            raise PatchError(f"{section.path} is not in the tree")
        old_text = out.get(section.path, b"").decode("utf-8") if section.before else ""
        new_text = _apply_hunks(old_text, section.text)
        if section.after:
            out[section.path] = new_text.encode("utf-8")
        else:
            out.pop(section.path, None)
    return out


def _apply_hunks(text: str, section: str) -> str:
    lines = split_lines(text)
    result: list[str] = []
    cursor = 0
    body = split_lines(section)
    i = 0
    while i < len(body):
        match = _HUNK.match(body[i])
        i += 1
        if not match:
            continue
        start = int(match.group(1)) - (0 if match.group(2) == "0" else 1)
        old: list[str] = []
        new: list[str] = []
        while i < len(body) and not body[i].startswith(("@@", "diff --git ")):
            line = body[i]
            if line.startswith("\\"):  # "\ No newline at end of file" refers to the previous line
                kind = body[i - 1][:1]
                if kind in (" ", "-"):
                    old[-1] = old[-1].rstrip("\n")
                if kind in (" ", "+"):
                    new[-1] = new[-1].rstrip("\n")
            elif line.startswith(" "):
                old.append(line[1:])
                new.append(line[1:])
            elif line.startswith("-"):
                old.append(line[1:])
            elif line.startswith("+"):
                new.append(line[1:])
            i += 1
        if lines[start : start + len(old)] != old:
            raise PatchError(f"hunk at line {start + 1} does not match")
        result += lines[cursor:start] + new
        cursor = start + len(old)
    result += lines[cursor:]
    return "".join(result)


def tree_tar(tree: Tree, uid: int = 1000) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in sorted(tree.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.uid, info.gid, info.mtime = len(data), 0o644, uid, uid, 1735689600
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def upload_tree(sandbox: Sandbox, workdir: str, tree: Tree) -> None:
    """Replace the contents of `workdir` by `tree` (one tar upload and one extraction)."""
    upload_archive(sandbox, workdir, tree_tar(tree))


def upload_archive(sandbox: Sandbox, workdir: str, data: bytes) -> None:
    """Replace the contents of `workdir` by an uncompressed tar archive."""
    archive = f"/tmp/.envgym-tree-{secrets.token_hex(8)}.tar"
    sandbox.write_file(archive, data)
    w = shlex.quote(workdir)
    result = sandbox.exec(
        f"(mkdir -p {w} && find {w} -mindepth 1 -delete && tar -xf {archive} -C {w} --no-same-owner; rc=$?; "
        f"rm -f {archive}; exit $rc)",
        timeout=120,
    )
    if result.exit_code != 0:
        raise SandboxInfraError(f"could not unpack the task tree into {workdir}: {result.output[-500:]}")
