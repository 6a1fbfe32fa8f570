"""The request header the host sends to supervisor.sh: fixed-size, so the framer reads it with one read()."""

from __future__ import annotations

import pytest

from envgym.sandboxes.shell import _header


def test_headers_are_46_bytes():
    sentinel = b"0123456789abcdef" * 2
    assert _header(b"R", sentinel, 7) == b"R " + sentinel + b" 0000000007\n"
    assert _header(b"Z", sentinel) == b"Z " + sentinel + b" 0000000000\n"
    assert all(len(_header(op, sentinel, 123456)) == 46 for op in (b"R", b"Z", b"P"))


def test_a_header_that_would_not_fit_is_refused():
    with pytest.raises(ValueError):
        _header(b"R", b"short", 1)
    with pytest.raises(ValueError):
        _header(b"R", b"0" * 32, 10**10)
