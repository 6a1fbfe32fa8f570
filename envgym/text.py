"""The one text space every env shares, and sanitisation that keeps observations inside it.

Why: gymnasium's default `Text` charset is letters and digits with `min_length=1`, which rejects real
observations (punctuation, newlines, code, empty strings). We build one wide charset (all printable BMP
characters plus newline and tab) once, share one space object across envs, and sanitise every observation
(ANSI escapes, control bytes, astral characters) so it always fits.
"""

from __future__ import annotations

import functools
import re
import sys
import unicodedata

from gymnasium.spaces import Text

MAX_TEXT_LENGTH = 100_000
TRUNCATION_MARKER = "\n[... {omitted} characters omitted ...]\n"
REPLACEMENT = "\ufffd"

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
_ASCII_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_EXCLUDED_CATEGORIES = {"Cc", "Cs", "Co", "Cn", "Cf", "Zl", "Zp"}


@functools.cache
def charset() -> str:
    """All printable BMP characters plus newline and tab (built lazily: ~60k characters)."""
    chars = ["\n", "\t"]
    chars += [ch for ch in map(chr, range(0x20, 0x10000)) if unicodedata.category(ch) not in _EXCLUDED_CATEGORIES]
    return "".join(chars)


@functools.cache
def charset_set() -> frozenset[str]:
    return frozenset(charset())


@functools.cache
def outside_charset() -> re.Pattern[str]:
    """A regex matching any character outside the charset (one C-speed scan instead of a Python loop)."""
    allowed = sorted(map(ord, charset()))
    ranges, prev = [], -1
    for code in [*allowed, 0x110000]:  # the gaps between allowed code points are the excluded ranges
        if code > prev + 1:
            ranges.append((prev + 1, code - 1))
        prev = code
    return re.compile("[" + "".join(f"\\U{lo:08x}-\\U{hi:08x}" for lo, hi in ranges) + "]")


class WideText(Text):
    """gymnasium's `Text` over the wide charset, with a short repr and a small pickle.

    The plain `Text` repr lists all ~60k characters and pickles its charset three ways (~2 MB per env);
    this one pickles as a call to `text_space(max_length)`, which rebuilds the shared instance on load.
    """

    def __repr__(self) -> str:
        return f"Text({self.min_length}, {self.max_length}, charset=<{len(self.character_set)} printable characters>)"

    def __reduce__(self) -> tuple[object, tuple[int]]:
        return (text_space, (self.max_length,))


def text_space(max_length: int = MAX_TEXT_LENGTH) -> WideText:
    """The shared observation/action space (one instance per max_length, built once per process)."""
    return _text_space(max_length)


@functools.cache
def _text_space(max_length: int) -> WideText:
    return WideText(max_length=max_length, min_length=0, charset=charset())


def truncate_middle(text: str, limit: int) -> str:
    """Keep the head and tail of `text` so that the result is at most `limit` characters."""
    if len(text) <= limit:
        return text
    marker_room = len(TRUNCATION_MARKER.format(omitted=len(text))) + 1
    keep = max(limit - marker_room, 0)
    head, tail = keep // 2, keep - keep // 2
    omitted = len(text) - head - tail
    return text[:head] + TRUNCATION_MARKER.format(omitted=omitted) + (text[len(text) - tail :] if tail else "")


def sanitize(text: str, limit: int = MAX_TEXT_LENGTH) -> str:
    """Strip ANSI escapes and control bytes, replace characters outside the charset, cap the length."""
    if not isinstance(text, str):
        text = str(text)
    if len(text) <= limit:  # fast paths: text already in the space (what every puzzle writes) needs no work
        if text.isascii():
            # printable ASCII plus newline and tab (two C passes; a regex scan costs ~3x more)
            plain = text.replace("\n", " ")
            if plain.isprintable() or ("\t" in plain and plain.replace("\t", " ").isprintable()):
                return text
        else:
            # printable BMP text is in the charset (`isprintable` refuses every excluded category; UTF-16 without
            # surrogate pairs means no astral character): ~1 µs cheaper than the regex scan below
            plain = text.replace("\n", " ")
            if "\t" in plain:
                plain = plain.replace("\t", " ")
            if plain.isprintable() and len(text.encode("utf-16-le")) == 2 * len(text):
                return text
            if not outside_charset().search(text):
                return text
    text = _ANSI.sub("", text).replace("\r\n", "\n").replace("\r", "\n")
    if text.isascii():  # fast path: almost every observation is plain ASCII
        text = _ASCII_CONTROL.sub("", text)
        return truncate_middle(text, limit)
    if outside_charset().search(text):
        text = outside_charset().sub(lambda m: REPLACEMENT if ord(m.group()) > 0x7F else "", text)
    return truncate_middle(text, limit)


_CLEAN_SIZE = 4096  # texts remembered by `sanitize_recurring`
_CLEAN_CHARS = 2_000  # longer texts are checked every time (and never kept alive by the cache)
_sanitize_cached = functools.lru_cache(maxsize=_CLEAN_SIZE)(sanitize)
# for a hot caller that already knows its text is an exact `str` of at most RECURRING_MAX_CHARS characters: the
# table itself, one C call, no wrapper frame (`TextEnv` cleans every observation of a recurring-text family)
RECURRING_MAX_CHARS = _CLEAN_CHARS
sanitize_recurring_str = _sanitize_cached


def sanitize_recurring(text: str) -> str:
    """`sanitize` for texts that come back again and again (puzzle intros, boards, fixed feedback): a bounded
    cache of short texts already cleaned turns the scan into one lookup (non-ASCII boards cost ~5 µs to
    check). Only exact `str` instances are looked up (a subclass could redefine hashing or equality)."""
    if type(text) is not str or len(text) > _CLEAN_CHARS:
        return sanitize(text)
    return _sanitize_cached(text)


def fits(text: str, limit: int = MAX_TEXT_LENGTH) -> bool:
    """Whether `text` is a valid member of the shared space."""
    return len(text) <= limit and not outside_charset().search(text)


if __name__ == "__main__":  # pragma: no cover - manual inspection
    sys.stdout.write(f"{len(charset())} characters\n")
