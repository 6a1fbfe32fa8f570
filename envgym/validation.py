"""pydantic's validation errors in one line: `field: message; ...`.

Why one helper: pydantic's own report spans many lines, with URLs and the input values (which may be a huge or
hostile file or request body). Every boundary that answers bad input (CLI, env options, replay, the servers)
says what was wrong the same way, on one line, and never echoes the values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError


def error_list(errors: Iterable[Mapping[str, Any]], where: str = "input", limit: int = 5) -> list[str]:
    """One `field: message` per error (at most `limit`); a path part is cut to 40 characters."""
    out: list[str] = []
    for error in errors:
        if len(out) >= limit:
            break
        loc = ".".join(str(part)[:40] for part in error.get("loc", ()))
        out.append(f"{loc or where}: {error.get('msg', 'invalid')}")
    return out


def problems(exc: ValidationError, where: str = "input", limit: int = 5) -> str:
    """The errors of `exc`, joined with `; `; `where` names the whole input when an error has no field."""
    return "; ".join(error_list(exc.errors(), where, limit))
