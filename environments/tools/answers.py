"""Answer normalisation and checking shared by every tool-use family, and the `submit_answer` tool.

Why one module: agents phrase the same answer many ways (`"1,234"`, `1234.0`, `" Paris. "`, `["b", "a"]` vs
`"a, b"`); every family must accept exactly the same variants and reject the same mistakes, so the rules
(numbers within tolerance, sets unordered, case and whitespace ignored) live here once.
"""

from __future__ import annotations

import json
import math
import re
from typing import ClassVar, Literal

from pydantic import BaseModel, Field

from envgym.actions import Tool, load_json_bounded

AnswerValue = str | int | float | list[str | int | float]

_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
_SPACES = re.compile(r"\s+")
_ITEM_SPLIT = re.compile(r"[,;\n]")


class SubmitAnswer(Tool):
    """Submit your final answer; this ends the task. Numbers may be plain (`42`, `3.5`); for a list of items
    send a JSON list or a comma-separated string (order does not matter)."""

    name: ClassVar[str] = "submit_answer"
    answer: str | int | float | list[str | int | float] = Field(description="the answer (text, number or list)")


class Expected(BaseModel):
    """The verified answer of a task and how to compare a submission against it."""

    kind: Literal["number", "text", "set"]
    value: int | float | str | list[str] = Field(description="ints are compared exactly (big integers stay exact)")
    abs_tol: float = Field(default=1e-6, description="numbers: absolute tolerance")
    rel_tol: float = Field(default=1e-9, description="numbers: relative tolerance")

    def display(self) -> str:
        if self.kind == "set":
            assert isinstance(self.value, list)
            return ", ".join(sorted(self.value))
        if self.kind == "number":
            assert isinstance(self.value, float | int)
            return str(self.value) if isinstance(self.value, int) else format_number(self.value)
        return str(self.value)


def format_number(value: float) -> str:
    """Integers without a trailing `.0`, other floats with up to 6 decimals."""
    if not math.isfinite(value) or abs(value) >= 1e15:
        return repr(value)
    if value == int(value):
        return str(int(value))
    return f"{value:.6f}".rstrip("0").rstrip(".")


def normalize_text(value: object) -> str:
    """Case-folded, whitespace-collapsed text without surrounding quotes/backticks or a trailing period."""
    text = _SPACES.sub(" ", str(value)).strip()
    previous = None
    while previous != text:
        previous = text
        text = text.strip().strip("\"'`").strip().rstrip(".").strip()
    return text.casefold()


def parse_number(value: object) -> float | None:
    """A number from an int/float or from text such as `1,234.5`, `$12`, `the answer is 42` (one number only)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        try:
            return float(value)
        except OverflowError:  # an integer beyond float range (e.g. 10**400) is no float answer
            return None
    if isinstance(value, list) and len(value) == 1:
        return parse_number(value[0])
    text = str(value).strip().replace(",", "").replace("_", "").replace("$", "")
    try:
        return float(text)
    except ValueError:
        found = _NUMBER.findall(text)
        return float(found[0]) if len(found) == 1 else None


def parse_exact_int(value: object) -> int | None:
    """An exact integer from an int, an integral float below 2**53, or integer text (`12,345`); else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() and abs(value) < 2**53 else None
    if isinstance(value, list) and len(value) == 1:
        return parse_exact_int(value[0])
    text = str(value).strip().replace(",", "").replace("_", "").rstrip(".")
    if re.fullmatch(r"[-+]?\d+", text):
        return int(text)
    found = _NUMBER.findall(text)
    return int(found[0]) if len(found) == 1 and re.fullmatch(r"[-+]?\d+", found[0]) else None


def split_items(value: object) -> list[str]:
    """Items of a list answer: a real list, a JSON list in a string, or comma/semicolon/newline separated."""
    if isinstance(value, list):
        return [normalize_text(v) for v in value if normalize_text(v)]
    text = str(value).strip()
    if text.startswith("["):
        try:
            parsed = load_json_bounded(text)  # agent text: bounded depth and numbers, never RecursionError
        except ValueError:
            parsed = None
        if isinstance(parsed, list):
            return split_items(parsed)
        text = text.strip("[]")
    return [item for item in (normalize_text(p) for p in _ITEM_SPLIT.split(text)) if item]


def is_correct(expected: Expected, given: AnswerValue) -> bool:
    """Whether a submission matches the expected answer after normalisation."""
    if expected.kind == "number" and isinstance(expected.value, int):
        exact = parse_exact_int(given)
        if exact is not None or abs(expected.value) >= 2**53:
            return exact == expected.value
    if expected.kind == "number":
        number = parse_number(given)
        if number is None or not math.isfinite(number):
            return False
        return math.isclose(number, float(expected.value), rel_tol=expected.rel_tol, abs_tol=expected.abs_tol)  # type: ignore[arg-type]
    if expected.kind == "set":
        assert isinstance(expected.value, list)
        return set(split_items(given)) == {normalize_text(v) for v in expected.value}
    if isinstance(given, list):
        given = given[0] if len(given) == 1 else ", ".join(map(str, given))
    return normalize_text(given) == normalize_text(expected.value)


def render_answer(value: AnswerValue) -> str:
    """A submission as short text for feedback."""
    text = json.dumps(value) if isinstance(value, list) else str(value)
    return text if len(text) <= 200 else text[:200] + "..."
