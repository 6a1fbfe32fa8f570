"""`parse_action` speed: the bounded parser against the pre-bounds parser (kept below as the baseline).

Why a copy of the old parser here: the ratio must be measured in the same run on the same machine, and the
old code no longer exists in the package. Both parse the same inputs with the same tools; the table prints
the median microseconds per call and new/old (below 1.0 means faster).

    python benchmarks/actions.py [--number 2000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import statistics
import timeit
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from pydantic import Field, ValidationError

from envgym.actions import ActionError, Tool, ToolCall, parse_action

# ----- baseline: the parser as it was before the bounds and fast paths (unbounded: raises on hostile input) ---
_OLD_FENCE = re.compile(r"```(?:json|JSON|tool_call|)?\s*\n?(.*?)```", re.S)
_OLD_TAGGED = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.S)


def _old_candidates(text: str) -> list[str]:
    candidates = [m.group(1) for m in _OLD_TAGGED.finditer(text)]
    candidates += [m.group(1) for m in _OLD_FENCE.finditer(text)]
    stripped = text.strip()
    candidates.append(stripped)
    first, last = stripped.find("{"), stripped.rfind("}")
    if 0 <= first < last:
        candidates.append(stripped[first : last + 1])
    return [c.strip() for c in candidates if c.strip().startswith("{")]


def _old_decode(obj: Any) -> tuple[str, Any] | None:
    if not isinstance(obj, dict):
        return None
    if isinstance(obj.get("function"), dict):
        obj = obj["function"]
    name = obj.get("name", obj.get("tool"))
    if not isinstance(name, str):
        return None
    args = obj.get("arguments", obj.get("args", obj.get("parameters", {})))
    if isinstance(args, str):
        try:
            args = json.loads(args) if args.strip() else {}
        except json.JSONDecodeError:
            return name, args
    return name, args


def old_parse_action(
    text: str, tools: Mapping[str, type[Tool]], text_form: Callable[[str], ToolCall | None] | None, help_: str
) -> Tool | ActionError:
    names = ", ".join(sorted(tools))
    accepted = f'a JSON tool call {{"name": <one of: {names}>, "arguments": {{...}}}}'
    if help_:
        accepted += f", or {help_}"
    if not text.strip():
        return ActionError(message="the action is empty", accepted=accepted)
    decoded: tuple[str, Any] | None = None
    json_error = ""
    for candidate in _old_candidates(text):
        try:
            decoded = _old_decode(json.loads(candidate))
        except json.JSONDecodeError as exc:
            json_error = json_error or f"invalid JSON ({exc.msg})"
            continue
        if decoded is not None:
            break
        json_error = json_error or 'the JSON object has no "name" field naming a tool'
    if decoded is None and text_form is not None:
        call = text_form(text.strip())
        if call is not None:
            decoded = (call.name, call.arguments)
    if decoded is None:
        return ActionError(message=json_error or "no tool call found", accepted=accepted)
    name, args = decoded
    tool = tools.get(name)
    if tool is None:
        return ActionError(message=f"unknown tool {name[:80]!r}", accepted=accepted)
    if not isinstance(args, dict):
        return ActionError(message="arguments must be a JSON object", accepted=accepted)
    try:
        return tool.model_validate(args)
    except ValidationError as err:
        return ActionError(message=str(err), accepted=accepted)


# ----- the workload ----------------------------------------------------------------------------------------------
class Guess(Tool):
    """Guess the number."""

    name: ClassVar[str] = "guess"
    number: int = Field(description="your guess")


class Place(Tool):
    """Place a digit."""

    name: ClassVar[str] = "place"
    row: int
    col: int
    value: int


TOOLS: dict[str, type[Tool]] = {"guess": Guess, "place": Place}
_TEXT = re.compile(r"(?:guess\s*:?\s*)?(-?\d{1,12})\.?", re.I)


def text_form(text: str) -> ToolCall | None:
    match = _TEXT.fullmatch(text)
    return ToolCall(name="guess", arguments={"number": int(match.group(1))}) if match else None


CASES = {
    "bare JSON call": '{"name": "place", "arguments": {"row": 1, "col": 2, "value": 3}}',
    "text form": "guess 42",
    "fenced JSON": 'My move:\n```json\n{"name": "guess", "arguments": {"number": 42}}\n```',
    "OpenAI shape": '{"type": "function", "function": {"name": "guess", "arguments": "{\\"number\\": 42}"}}',
    "prose, no call": "I think the answer might be somewhere in the middle of the range.",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=2000, help="calls per timing")
    parser.add_argument("--repeat", type=int, default=7, help="timings per case and parser (median taken)")
    args = parser.parse_args()
    print(f"{'case':<18} {'old µs':>8} {'new µs':>8} {'new/old':>8}")
    for label, text in CASES.items():
        old_result, new_result = (
            old_parse_action(text, TOOLS, text_form, "guess N"),
            parse_action(text, TOOLS, text_form, "guess N"),
        )
        assert type(old_result) is type(new_result), label  # same verdict, or the comparison is meaningless
        parsers: dict[str, Callable[..., Tool | ActionError]] = {"old": old_parse_action, "new": parse_action}
        times: dict[str, list[float]] = {"old": [], "new": []}
        for _ in range(args.repeat):  # interleaved so drift in machine load hits both sides alike
            for key, parse in parsers.items():
                timer = timeit.Timer(functools.partial(parse, text, TOOLS, text_form, "guess N"))
                times[key].append(timer.timeit(number=args.number))
        old_us, new_us = (statistics.median(times[k]) / args.number * 1e6 for k in ("old", "new"))
        print(f"{label:<18} {old_us:>8.2f} {new_us:>8.2f} {new_us / old_us:>8.2f}")


if __name__ == "__main__":
    main()
