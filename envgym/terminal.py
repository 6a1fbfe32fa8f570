"""Untrusted text (a trajectory file, a server's reply) made safe to print on a user's terminal.

Why: such text reaches a terminal through rich and `typer.echo`. A lone surrogate (legal in JSON as `\\ud800`)
makes the UTF-8 write raise and abort the whole command; escape sequences (`ESC ]0;...BEL` retitles the window,
`ESC [2J` clears it) and bidi overrides make the terminal show something other than the text; a megabyte id
floods it. `visible` turns each such character into a visible escape (`\\x1b`, `\\ud800`, `\\u202e`) and
bounds the length. It does not escape rich markup: print the result with `markup=False`, as a `Text`, or
through `rich.markup.escape`.
"""

from __future__ import annotations

import re

# C0/C1 controls (tab and newline separately), lone surrogates, line/paragraph separators, bidi controls.
_UNSAFE = r"\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029\u202a-\u202e\u2066-\u2069"
_UNSAFE_MULTILINE = re.compile(f"[{_UNSAFE}]")
_UNSAFE_ONE_LINE = re.compile(f"[\t\n{_UNSAFE}]")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: object, limit: int | None = 300, *, multiline: bool = False) -> str:
    """`str(text)` with every unsafe character shown as an escape, cut to about `limit` characters (None: all).

    One line unless `multiline` (which keeps newlines and tabs). Cut before escaping, so the work is bounded
    by `limit` however long the input is (each kept character is shown in at most six), and a cut ends in `…`.
    """
    raw = text if isinstance(text, str) else str(text)
    cut = ""
    if limit is not None and len(raw) > limit:
        raw, cut = raw[: max(limit - 1, 0)], "…"
    return (_UNSAFE_MULTILINE if multiline else _UNSAFE_ONE_LINE).sub(_escaped, raw) + cut
