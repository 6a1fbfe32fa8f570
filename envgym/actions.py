"""Tools as pydantic models, their OpenAI function schemas, and the one parser that turns model text into a
validated tool call.

Why one parser: every env accepts the same JSON tool-call shapes (bare, fenced, inside `<tool_call>` tags, or
OpenAI's `{"type": "function", "function": {...}}` with string arguments), so an agent that works on one env
works on all. Each env may add a documented short text form (e.g. `move up`) through a `text_form` callable.
The parser never raises on agent input: it returns an `ActionError` that says what was wrong and what is
accepted.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

MAX_ACTION_CHARS = 100_000


class Tool(BaseModel):
    """Base class of every tool an env accepts. Subclasses set `name`; the docstring is the description."""

    model_config = ConfigDict(extra="forbid")
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


class ToolCall(BaseModel):
    """A parsed, validated call."""

    name: str
    arguments: dict[str, Any]

    def to_action(self) -> str:
        return json.dumps({"name": self.name, "arguments": self.arguments})


class ActionError(BaseModel):
    """Why an action could not be used, in words an agent can act on."""

    message: str
    accepted: str


TextForm = Callable[[str], ToolCall | None]

_FENCE = re.compile(r"```(?:json|JSON|tool_call|)?\s*\n?(.*?)```", re.S)
_TAGGED = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.S)


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
    """Accept {"name", "arguments"}, {"tool", "args"} and OpenAI's {"function": {...}} shapes."""
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
            return name, args  # reported as a type error below
    return name, args


def _validation_message(err: ValidationError) -> str:
    parts = []
    for e in err.errors(include_url=False):
        loc = ".".join(str(p) for p in e["loc"]) or "arguments"
        parts.append(f"{loc}: {e['msg']}")
    return "; ".join(parts)


def parse_action(
    text: str,
    tools: Mapping[str, type[Tool]],
    text_form: TextForm | None = None,
    text_form_help: str = "",
) -> Tool | ActionError:
    """Parse model output into a validated tool instance, or explain why it cannot be used."""
    names = ", ".join(sorted(tools))
    accepted = f'a JSON tool call {{"name": <one of: {names}>, "arguments": {{...}}}}'
    if text_form_help:
        accepted += f", or {text_form_help}"
    if not isinstance(text, str):
        return ActionError(message=f"the action must be text, got {type(text).__name__}", accepted=accepted)
    if len(text) > MAX_ACTION_CHARS:
        return ActionError(
            message=f"the action is {len(text)} characters long; the limit is {MAX_ACTION_CHARS}",
            accepted=accepted,
        )
    if not text.strip():
        return ActionError(message="the action is empty", accepted=accepted)

    decoded: tuple[str, Any] | None = None
    json_error = ""
    for candidate in _json_candidates(text):
        try:
            decoded = _decode_call(json.loads(candidate))
        except json.JSONDecodeError as exc:
            json_error = json_error or f"invalid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
            continue
        if decoded is not None:
            break
        json_error = json_error or 'the JSON object has no "name" field naming a tool'

    if decoded is None and text_form is not None:
        call = text_form(text.strip())
        if call is not None:
            decoded = (call.name, call.arguments)
    if decoded is None:
        message = json_error or "no tool call found in the action"
        return ActionError(message=message, accepted=accepted)

    name, args = decoded
    tool = tools.get(name)
    if tool is None:
        return ActionError(message=f"unknown tool {name[:80]!r}", accepted=accepted)
    if not isinstance(args, dict):
        return ActionError(
            message=f"arguments of {name!r} must be a JSON object, got {type(args).__name__}",
            accepted=f"{name} arguments: " + json.dumps(tool.schema_dict()["function"]["parameters"]),
        )
    try:
        return tool.model_validate(args)
    except ValidationError as err:
        return ActionError(
            message=f"bad arguments for {name!r}: {_validation_message(err)}",
            accepted=f"{name} arguments: " + json.dumps(tool.schema_dict()["function"]["parameters"]),
        )
