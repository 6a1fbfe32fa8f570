from hypothesis import given, settings
from hypothesis import strategies as st

from envgym.text import MAX_TEXT_LENGTH, REPLACEMENT, charset_set, fits, sanitize, text_space, truncate_middle


def test_sanitize_strips_ansi_and_controls() -> None:
    assert sanitize("a\x1b[31mred\x1b[0m\x00\x07b\r\nc") == "aredb\nc"


def test_sanitize_replaces_astral_characters() -> None:
    assert sanitize("ok 😀") == "ok \ufffd"


def test_truncation_keeps_head_and_tail() -> None:
    text = "HEAD" + "x" * 1000 + "TAIL"
    out = truncate_middle(text, 100)
    assert len(out) <= 100 and out.startswith("HEAD") and out.endswith("TAIL") and "omitted" in out


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=500))
def test_any_text_sanitizes_into_the_space(text: str) -> None:
    out = sanitize(text)
    assert fits(out)
    assert text_space().contains(out)


def test_space_accepts_empty_and_long_text() -> None:
    space = text_space()
    assert space.contains("")
    assert space.contains(sanitize("y" * (MAX_TEXT_LENGTH * 2)))


def test_plain_ascii_comes_back_unchanged_and_everything_else_is_cleaned() -> None:
    plain = "Board:\n\t# . $ @\n(1, 2) -> ok!"
    assert sanitize(plain) is plain
    assert sanitize("tab\tok\x7f\x1b[1mbold") == "tab\tokbold"


def test_space_repr_is_short_and_names_the_charset_size() -> None:
    text = repr(text_space())
    assert len(text) < 80 and "printable characters" in text


def test_space_pickles_small_and_loads_as_the_shared_instance() -> None:
    import pickle

    data = pickle.dumps(text_space())
    assert len(data) < 200
    assert pickle.loads(data) is text_space()


def test_printable_bmp_shortcut_never_lets_a_character_outside_the_charset_through() -> None:
    # sanitize returns printable BMP text untouched without the regex scan: that is only sound if every
    # BMP character `str.isprintable` accepts is in the charset
    allowed = charset_set()
    leaks = [hex(code) for code in range(0x10000) if chr(code).isprintable() and chr(code) not in allowed]
    assert leaks == []
    assert sanitize("3×3 board\n\t\u00e9") == "3×3 board\n\t\u00e9"
    assert sanitize("a\u00a0b\u3000c") == "a\u00a0b\u3000c"  # Zs: allowed by the charset, refused by isprintable
    assert sanitize("emoji \U0001f600 here") == f"emoji {REPLACEMENT} here"
    assert fits(sanitize("mixed ×\u200b\x1b[31mred"))
