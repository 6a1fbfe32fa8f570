"""Tools as pydantic models, their OpenAI function schemas, and the one parser that turns model text into a
validated tool call.

Why one parser: every env accepts the same JSON tool-call shapes (bare, fenced, inside `<tool_call>` tags, or
OpenAI's `{"type": "function", "function": {...}}` with string arguments), so an agent that works on one env
works on all. Each env may add a documented short text form (e.g. `move up`) through a `text_form` callable.

Why total: agent text is untrusted. `parse_action` returns a tool or an `ActionError` for *every* string:
length, nesting depth, the size of each number and text encoding are bounded before and while parsing
(`load_json_bounded`), so deep nesting (RecursionError), 5,000-digit integers (Python's int-str limit),
NaN/Infinity and lone surrogates become feedback, never an exception out of `env.step`.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

MAX_ACTION_CHARS = 100_000
MAX_JSON_DEPTH = 32  # nested objects/arrays; tool arguments need a handful
MAX_NUMBER_CHARS = 1_000  # characters of one number literal; Python refuses int(str) past 4,300 digits
MAX_MESSAGE_CHARS = 600  # an ActionError message is shown to the agent: keep it short whatever the input


class Tool(BaseModel):
    """Base class of every tool an env accepts. Subclasses set `name`; the docstring is the description."""

    # inf/nan in a float argument is never a meaningful move, and downstream int()/range() would raise on it
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    name: ClassVar[str]

    @classmethod
    def schema_dict(cls) -> dict[str, Any]:
        """The OpenAI function-calling schema of this tool (a fresh copy: callers may mutate it)."""
        return json.loads(_schema_json(cls))  # type: ignore[no-any-return]

    @classmethod
    def _build_schema(cls) -> dict[str, Any]:
        params = cls.model_json_schema()
        params.pop("title", None)
        params.pop("description", None)
        for prop in params.get("properties", {}).values():
            prop.pop("title", None)
        params.setdefault("properties", {})
        params.setdefault("required", [])
        params["additionalProperties"] = False
        return {
            "type": "function",
            "function": {
                "name": cls.name,
                "description": " ".join((cls.__doc__ or cls.name).split()),
                "parameters": params,
            },
        }

    def to_action(self) -> str:
        """The canonical JSON action text for this call (what an oracle or a model should emit)."""
        return json.dumps({"name": self.name, "arguments": self.model_dump(mode="json")})


@functools.cache
def _schema_json(tool: type[Tool]) -> str:
    """Schema generation costs ~3 ms in pydantic; envs hand schemas out on every reset, so build each once."""
    return json.dumps(tool._build_schema())


@dataclass(slots=True)
class ToolCall:
    """A call found in the text (what an env's text form returns); `parse_action` validates its arguments.

    A plain slotted dataclass: text forms build one per step, and a pydantic model cost ~2 µs of it.
    """

    name: str
    arguments: dict[str, Any]

    def to_action(self) -> str:
        return json.dumps({"name": self.name, "arguments": self.arguments})

    def model_dump(self) -> dict[str, Any]:
        return {"name": self.name, "arguments": self.arguments}


class ActionError(BaseModel):
    """Why an action could not be used, in words an agent can act on."""

    message: str
    accepted: str


TextForm = Callable[[str], ToolCall | None]


class JSONLimitError(ValueError):
    """JSON text exceeds a bound (depth, number size) or holds a value no tool accepts (NaN, lone surrogate)."""


# ----- bounded JSON --------------------------------------------------------------------------------------------
# A string literal (possessive: linear time, no backtracking) or one bracket; strings are skipped so that
# brackets inside argument text (code, prose) do not count as nesting.
_DEPTH_TOKENS = re.compile(r'"(?:[^"\\]++|\\.)*+"?|[\[\]{}]', re.S)
_OPENERS = frozenset("[{")


def json_depth_exceeds(text: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether `text` nests objects/arrays deeper than `limit` (a cheap count first, then a real scan)."""
    if text.count("{") + text.count("[") <= limit:
        return False
    depth = 0
    for match in _DEPTH_TOKENS.finditer(text):
        token = match.group()
        if token in _OPENERS:
            depth += 1
            if depth > limit:
                return True
        elif token in "]}":
            depth = max(depth - 1, 0)
    return False


def _bounded_int(literal: str) -> int:
    if len(literal) > MAX_NUMBER_CHARS:
        raise JSONLimitError(f"a number has {len(literal)} digits; the limit is {MAX_NUMBER_CHARS}")
    return int(literal)


def _bounded_float(literal: str) -> float:
    if len(literal) > MAX_NUMBER_CHARS:
        raise JSONLimitError(f"a number has {len(literal)} characters; the limit is {MAX_NUMBER_CHARS}")
    value = float(literal)
    if not math.isfinite(value):
        raise JSONLimitError(f"the number {literal[:40]} is too large to represent")
    return value


def _no_constant(name: str) -> Any:
    raise JSONLimitError(f"{name} is not a JSON number; send a finite number")


# Built once: `json.loads` with hooks would construct a decoder on every call (a measurable share of a parse).
_SHORT_DECODER = json.JSONDecoder(parse_float=_bounded_float, parse_constant=_no_constant)
_BOUNDED_DECODER = json.JSONDecoder(parse_int=_bounded_int, parse_float=_bounded_float, parse_constant=_no_constant)


def _surrogate_free(value: Any) -> bool:
    """Lone surrogates (from `\\ud800` escapes) cannot be encoded as UTF-8: refuse them before a tool sees them."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, dict):
        return all(_surrogate_free(k) and _surrogate_free(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_surrogate_free(v) for v in value)
    return True


def load_json_bounded(text: str) -> Any:
    """`json.loads` that never raises anything but `ValueError` (`JSONDecodeError` or `JSONLimitError`).

    Depth is checked before parsing; each number's size while parsing (parse hooks); NaN/Infinity and lone
    surrogate escapes are refused. Use it for every JSON string that comes from an agent or a file.
    """
    if json_depth_exceeds(text):
        raise JSONLimitError(f"the JSON nests deeper than {MAX_JSON_DEPTH} levels")
    # A text no longer than the number limit cannot hold an over-long integer: skip the per-int hook there.
    decoder = _SHORT_DECODER if len(text) <= MAX_NUMBER_CHARS else _BOUNDED_DECODER
    try:
        value = decoder.decode(text)
    except RecursionError as exc:  # unreachable after the depth scan; kept so the contract never depends on it
        raise JSONLimitError(f"the JSON nests deeper than {MAX_JSON_DEPTH} levels") from exc
    if "\\u" in text and not _surrogate_free(value):
        raise JSONLimitError("the JSON holds a lone surrogate escape (\\ud800-\\udfff); send valid Unicode text")
    return value


def _json_message(exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"invalid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
    return str(exc)


# ----- finding and decoding the call -----------------------------------------------------------------------------
_FENCE = re.compile(r"```(?:json|JSON|tool_call|)?\s*\n?(.*?)```", re.S)
_TAGGED = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.S)
_LONG_DIGITS = re.compile(rf"\d{{{MAX_NUMBER_CHARS + 1}}}")


def tool_schemas(tools: Sequence[type[Tool]]) -> list[dict[str, Any]]:
    return [tool.schema_dict() for tool in tools]


def _json_candidates(text: str) -> list[str]:
    """Substrings that may hold the JSON call, most specific first."""
    candidates = [m.group(1) for m in _TAGGED.finditer(text)]
    candidates += [m.group(1) for m in _FENCE.finditer(text)]
    stripped = text.strip()
    candidates.append(stripped)
    first, last = stripped.find("{"), stripped.rfind("}")
    if 0 <= first < last:
        candidates.append(stripped[first : last + 1])
    return [c.strip() for c in candidates if c.strip().startswith("{")]


def _decode_call(obj: Any) -> tuple[str, Any] | None:
    """Accept {"name", "arguments"}, {"tool", "args"} and OpenAI's {"function": {...}} shapes.

    String arguments (OpenAI's shape) are decoded with the same bounds; `JSONLimitError` propagates.
    """
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
            args = load_json_bounded(args) if args.strip() else {}
        except json.JSONDecodeError:
            return name, args  # reported as a type error below
    return name, args


def _find_call(text: str) -> tuple[tuple[str, Any] | None, str]:
    """The decoded call in `text` (or None) and the first JSON problem met on the way."""
    stripped = text.strip()
    # Fast path: a bare JSON object with no fences or tags is its own (and only useful) candidate.
    if stripped[:1] == "{" and stripped[-1:] == "}" and "```" not in stripped and "<tool_call>" not in stripped:
        candidates = [stripped]
    elif "{" not in text:
        return None, ""  # no candidate can start with "{": the text form's business
    else:
        candidates = _json_candidates(text)
    json_error = ""
    for candidate in candidates:
        try:
            decoded = _decode_call(load_json_bounded(candidate))
        except ValueError as exc:
            json_error = json_error or _json_message(exc)
            continue
        if decoded is not None:
            return decoded, json_error
        json_error = json_error or 'the JSON object has no "name" field naming a tool'
    return None, json_error


# what a text form may raise on odd input (its own conversions): feedback, never an exception
_FORM_ERRORS = (ValueError, TypeError, ArithmeticError, RecursionError, IndexError, KeyError)


def _from_text_form(text: str, text_form: TextForm) -> tuple[tuple[str, Any] | None, str]:
    """Run an env's text form on bounded input; its own conversion errors become feedback, not exceptions."""
    if len(text) > MAX_NUMBER_CHARS and _LONG_DIGITS.search(text):
        return None, f"a number in the action has more than {MAX_NUMBER_CHARS} digits"
    try:
        call = text_form(text.strip())
    except _FORM_ERRORS as exc:
        return None, f"could not read the action: {' '.join(str(exc).split())[:200]}"
    return (None, "") if call is None else ((call.name, call.arguments), "")


def _validation_message(err: ValidationError) -> str:
    parts = []
    for e in err.errors(include_url=False):
        loc = ".".join(str(p)[:60] for p in e["loc"]) or "arguments"
        parts.append(f"{loc}: {e['msg']}")
    return _clip("; ".join(parts))


def _clip(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE_CHARS else message[: MAX_MESSAGE_CHARS - 3] + "..."


def _accepted(tools: Mapping[str, type[Tool]], text_form_help: str) -> str:
    names = ", ".join(sorted(tools))
    accepted = f'a JSON tool call {{"name": <one of: {names}>, "arguments": {{...}}}}'
    return f"{accepted}, or {text_form_help}" if text_form_help else accepted


def _arguments_help(tool: type[Tool]) -> str:
    return f"{tool.name} arguments: " + json.dumps(tool.schema_dict()["function"]["parameters"])


_CALL_KEYS = frozenset(("name", "arguments"))
# the C scanner: `decode` adds two whitespace regex passes around it
_SCAN = _SHORT_DECODER.scan_once  # type: ignore[attr-defined]


def _bare_call(text: str, tools: Mapping[str, type[Tool]]) -> Tool | None:
    """The common case in one pass: short ASCII text that is exactly `{"name": ..., "arguments": {...}}` naming
    a known tool with valid arguments. Returns what the full parser would return for it, or None (then the
    full parser runs, so every refusal keeps its message and every bound stays checked)."""
    if (
        len(text) > MAX_NUMBER_CHARS  # the long decoder and its per-number bound: full path
        or text[:1] != "{"
        or text[-1:] != "}"
        or not text.isascii()  # lone surrogates and other encoding checks: full path
        or "\\u" in text
        or "```" in text
        or "<tool_call>" in text
        or json_depth_exceeds(text)
    ):
        return None
    try:
        obj, end = _SCAN(text, 0)
    except (StopIteration, ValueError, RecursionError):
        return None
    if end != len(text) or type(obj) is not dict or obj.keys() != _CALL_KEYS:
        return None
    name, args = obj["name"], obj["arguments"]
    if type(name) is not str or type(args) is not dict:
        return None
    tool = tools.get(name)
    if tool is None:
        return None
    try:  # what `model_validate(args)` runs, without its Python wrapper
        return tool.__pydantic_validator__.validate_python(args)  # type: ignore[no-any-return]
    except (ValidationError, ValueError, TypeError, ArithmeticError, RecursionError):
        return None


def _short_text_form(text: str, tools: Mapping[str, type[Tool]], text_form: TextForm | None) -> Tool | None:
    """The other common case: short ASCII text with no `{` (so no JSON candidate) that the env's text form
    reads as a valid call. Returns what the full parser would, or None (then the full parser runs)."""
    if text_form is None or len(text) > MAX_NUMBER_CHARS or "{" in text or not text.isascii():
        return None
    stripped = text.strip()
    if not stripped:
        return None
    try:
        call = text_form(stripped)
    except _FORM_ERRORS:
        return None
    if call is None or type(call.arguments) is not dict:
        return None
    tool = tools.get(call.name)
    if tool is None:
        return None
    try:
        return tool.__pydantic_validator__.validate_python(call.arguments)  # type: ignore[no-any-return]
    except (ValidationError, ValueError, TypeError, ArithmeticError, RecursionError):
        return None


def parse_action(
    text: str,
    tools: Mapping[str, type[Tool]],
    text_form: TextForm | None = None,
    text_form_help: str = "",
) -> Tool | ActionError:
    """Parse model output into a validated tool instance, or explain why it cannot be used. Never raises."""
    if type(text) is str:
        fast = _bare_call(text, tools) if text[:1] == "{" else _short_text_form(text, tools, text_form)
        if fast is not None:
            return fast

    def refuse(message: str, accepted: str | None = None) -> ActionError:
        return ActionError(message=_clip(message), accepted=accepted or _accepted(tools, text_form_help))

    if not isinstance(text, str):
        return refuse(f"the action must be text, got {type(text).__name__}")
    if len(text) > MAX_ACTION_CHARS:
        return refuse(f"the action is {len(text)} characters long; the limit is {MAX_ACTION_CHARS}")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            return refuse(f"the action is not valid Unicode text (lone surrogate at position {exc.start})")
    if not text.strip():
        return refuse("the action is empty")

    decoded, json_error = _find_call(text)
    if decoded is None and text_form is not None:
        decoded, form_error = _from_text_form(text, text_form)
        json_error = json_error or form_error
    if decoded is None:
        return refuse(json_error or "no tool call found in the action")

    name, args = decoded
    tool = tools.get(name)
    if tool is None:
        return refuse(f"unknown tool {name[:80]!r}")
    if not isinstance(args, dict):
        return refuse(f"arguments of {name!r} must be a JSON object, got {type(args).__name__}", _arguments_help(tool))
    try:
        return tool.model_validate(args)
    except ValidationError as err:
        return refuse(f"bad arguments for {name!r}: {_validation_message(err)}", _arguments_help(tool))
    except (ValueError, TypeError, ArithmeticError, RecursionError) as exc:  # a tool's own validator misbehaving
        return refuse(f"bad arguments for {name!r}: {' '.join(str(exc).split())[:200]}", _arguments_help(tool))
