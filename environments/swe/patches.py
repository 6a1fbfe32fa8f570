"""A strict reader of submitted patches: every line `git apply` would act on is one this module understood.

Why: grading filters a patch by the paths it names, then hands it to `git apply`. A filter that reads a section's
first `---`/`+++` pair while git reads everything let a patch create files the filter never saw: a second file
(a plain unified diff) after a section's hunks, git's `copy to`/`rename to` headers, a traditional header whose
first path component is not `a/` (git strips any). So the patch is parsed here under a small grammar (the output
of `git diff` for text files): a `diff --git a/P b/P` header with the same path twice, then only `index`, file
mode (100644/100755) lines, the `--- a/P|/dev/null` and `+++ b/P|/dev/null` pair, and hunks whose line counts
match their `@@` header exactly; or a traditional section, the same pair without the git header. Anything else
in a section (copies, renames, binary data, symlinks, a count that does not match) makes it unreadable: it is
dropped, never passed on. Text between sections (a commit message, a signature) is dropped too, so what reaches
`git apply` is exactly the sections read here. Every place git starts a patch (`diff --git `, or `--- ` then
`+++ `) starts a section here, so git cannot find one this reader skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# one path component: no `.`/`..`, no hidden files, no spaces or quoting (git quotes odd names: not accepted)
_PATH = r"[A-Za-z0-9_][A-Za-z0-9_.+-]*(?:/[A-Za-z0-9_][A-Za-z0-9_.+-]*)*"
_PLAIN = re.compile(_PATH)
_GIT_HEADER = re.compile(rf"diff --git a/({_PATH}) b/({_PATH})")
_MODE = r"(?:100644|100755)"  # regular files only: no symlinks (120000), no gitlinks (160000)
_EXTENDED = re.compile(
    rf"index [0-9a-f]{{4,64}}\.\.[0-9a-f]{{4,64}}(?: {_MODE})?|(?:new file|deleted file|old|new) mode {_MODE}"
)
_OLD = re.compile(rf"--- (?:a/({_PATH})|/dev/null)(?:\t[^\n]*)?")
_NEW = re.compile(rf"\+\+\+ (?:b/({_PATH})|/dev/null)(?:\t[^\n]*)?")
_HUNK = re.compile(r"@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@[^\n]*")


def is_plain_path(name: str) -> bool:
    """A relative path this grammar accepts: components of letters, digits and `_.+-`, none hidden, `.` or `..`."""
    return _PLAIN.fullmatch(name) is not None


@dataclass(frozen=True)
class Section:
    """One file's change: its path, whether the file exists before and after, and the exact text (ends in a
    newline)."""

    path: str
    text: str
    before: bool = True
    after: bool = True


@dataclass(frozen=True)
class ReadPatch:
    sections: list[Section]
    unreadable: list[str]  # a name for each section that was dropped: its path when the header gave one


def read_patch(patch: str) -> ReadPatch:
    """The sections of `patch` that follow the grammar above, and a name for each one that does not."""
    lines = patch.splitlines(keepends=True)
    sections: list[Section] = []
    unreadable: list[str] = []
    i = 0
    while i < len(lines):
        if not (lines[i].startswith("diff --git ") or _starts_pair(lines, i)):
            i += 1  # text between sections: dropped
            continue
        end = _section_end(lines, i)
        section = _read_section(lines[i:end])
        if isinstance(section, Section):
            sections.append(section)
        else:
            unreadable.append(section)
        i = end
    return ReadPatch(sections, unreadable)


def _line(raw: str) -> str:
    return raw[:-1] if raw.endswith("\n") else raw


def _starts_pair(lines: list[str], i: int) -> bool:
    return lines[i].startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ ")


def _section_end(lines: list[str], start: int) -> int:
    """Where the section starting at `start` ends: at the next git header, or the next `---`/`+++` pair that is
    not the section's own (a git section's first one, before any hunk). Hunk bodies are skipped by their counts,
    so a removed line that reads `--- ...` is not taken for a header."""
    own_pair = lines[start].startswith("diff --git ")
    i = start + (1 if own_pair else 2)
    while i < len(lines):
        hunk = _HUNK.fullmatch(_line(lines[i]))
        if hunk:
            own_pair = False
            i = _hunk_end(lines, i, hunk) or i + 1
        elif lines[i].startswith("diff --git "):
            return i
        elif _starts_pair(lines, i):
            if not own_pair:
                return i
            own_pair = False
            i += 2
        else:
            i += 1
    return i


def _hunk_end(lines: list[str], i: int, hunk: re.Match[str]) -> int | None:
    """The index after the hunk at `i` (counts met, trailing `\\` markers included); None if it does not fit."""
    old = 1 if hunk.group(2) is None else int(hunk.group(2))
    new = 1 if hunk.group(4) is None else int(hunk.group(4))
    i += 1
    while old > 0 or new > 0:
        if i >= len(lines):
            return None
        kind = lines[i][:1]
        if kind in (" ", "\n"):  # an empty line is an empty context line, as git reads it
            old, new = old - 1, new - 1
        elif kind == "-":
            old -= 1
        elif kind == "+":
            new -= 1
        elif kind != "\\":  # "\ No newline at end of file": refers to the line before, counts nothing
            return None
        if old < 0 or new < 0:
            return None
        i += 1
    while i < len(lines) and lines[i].startswith("\\"):
        i += 1
    return i


def _read_section(lines: list[str]) -> Section | str:
    """A Section, or the name to report for an unreadable one."""
    first = _line(lines[0])
    i, header_path = 0, None
    if first.startswith("diff --git "):
        header = _GIT_HEADER.fullmatch(first)
        if not header or header.group(1) != header.group(2):
            return _name_of(first)
        header_path = header.group(1)
        i = 1
        while i < len(lines) and _EXTENDED.fullmatch(_line(lines[i])):
            i += 1
        if i == len(lines):  # a mode change, or an empty file created or deleted: no hunks
            modes = [_line(line) for line in lines[1:]]
            created = any(m.startswith("new file mode") for m in modes)
            deleted = any(m.startswith("deleted file mode") for m in modes)
            return Section(header_path, _text(lines), before=not created, after=not deleted)
    if i + 1 >= len(lines):
        return header_path or _name_of(first)
    old, new = _OLD.fullmatch(_line(lines[i])), _NEW.fullmatch(_line(lines[i + 1]))
    paths = {p for p in (old.group(1) if old else None, new.group(1) if new else None) if p}
    if not old or not new or len(paths) != 1 or (header_path is not None and paths != {header_path}):
        return header_path or _name_of(first)
    path = paths.pop()
    i += 2
    end = i
    while end < len(lines):
        hunk = _HUNK.fullmatch(_line(lines[end]))
        if not hunk:
            break
        after = _hunk_end(lines, end, hunk)
        if after is None:
            return path
        end = after
    if end == i or any(line.startswith("@@") for line in lines[end:]):
        return path  # no hunk, or a broken one after text: not what `git diff` writes
    # what follows the last hunk (a signature) is dropped
    return Section(path, _text(lines[:end]), before=old.group(1) is not None, after=new.group(1) is not None)


def _text(lines: list[str]) -> str:
    text = "".join(lines)
    return text if text.endswith("\n") else text + "\n"


def _name_of(header: str) -> str:
    """A short, printable name for an unreadable section: the first path-like word of its header."""
    for word in header.split()[1:]:
        if word != "--git":
            return word.removeprefix("a/").removeprefix("b/")[:200]
    return "(an unreadable patch section)"
