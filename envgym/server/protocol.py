"""The wire format of `envgym serve`: OpenEnv's WebSocket messages, and the one total parser for them.

Why our own models rather than importing openenv-core's: the server is a door for untrusted input, so what
a client may ask for is decided here, narrowly (reset takes only a seed, a difficulty, validated params and
an episode id; never `gym.make` kwargs such as a sandbox kind). The JSON shapes are OpenEnv's, so its
`GenericEnvClient` talks to us unchanged:

    client -> server   {"type": "reset", "data": {"seed": 3, "difficulty": 0.5}}
                       {"type": "step",  "data": {"text": "<action>"}}   (or {"tool_call": {"name", "arguments"}})
                       {"type": "state"}  |  {"type": "close"}
    server -> client   {"type": "observation", "data": {"observation": {...}, "reward": r, "done": b}}
                       {"type": "state", "data": {...}}  |  {"type": "error", "data": {"message", "code"}}
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr, ValidationError

MAX_PARAMS = 32
MAX_PARAM_KEY = 64
MAX_PARAM_STR = 256
MAX_SEED = 2**63 - 1


class ErrorCode(StrEnum):
    """Error codes of error frames; the first seven are OpenEnv's own `WSErrorCode` values."""

    INVALID_JSON = "INVALID_JSON"
    UNKNOWN_TYPE = "UNKNOWN_TYPE"
    VALIDATION_ERROR = "VALIDATION_ERROR"
    EXECUTION_ERROR = "EXECUTION_ERROR"
    CAPACITY_REACHED = "CAPACITY_REACHED"
    FACTORY_ERROR = "FACTORY_ERROR"
    SESSION_ERROR = "SESSION_ERROR"
    MESSAGE_TOO_LARGE = "MESSAGE_TOO_LARGE"
    UNAUTHORIZED = "UNAUTHORIZED"
    IDLE_TIMEOUT = "IDLE_TIMEOUT"


class WireError(Exception):
    """A message the server refuses; becomes an error frame, the session goes on."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


ParamValue = StrictBool | StrictInt | Annotated[StrictFloat, Field(allow_inf_nan=False)] | StrictStr | None


class ResetData(_Strict):
    """What a client may choose at reset. Everything else about the env is the operator's choice."""

    seed: int | None = Field(default=None, ge=0, le=MAX_SEED)
    difficulty: float | None = Field(default=None, ge=0.0, le=1.0)
    params: dict[str, ParamValue] | None = Field(default=None, description="native knobs, validated by the env")
    episode_id: str | None = Field(default=None, max_length=255)

    def options(self) -> dict[str, Any]:
        opts: dict[str, Any] = {}
        if self.difficulty is not None:
            opts["difficulty"] = self.difficulty
        if self.params:
            opts["params"] = dict(self.params)
        return opts


class ToolCallData(_Strict):
    name: str = Field(max_length=128)
    arguments: dict[str, Any] = Field(default_factory=dict)


class StepData(_Strict):
    """An action: the raw text an agent wrote, or a structured tool call rendered to the JSON text form."""

    text: str | None = None
    tool_call: ToolCallData | None = None
    metadata: dict[str, Any] = Field(default_factory=dict, description="accepted for OpenEnv parity, ignored")

    def action_text(self) -> str:
        if (self.text is None) == (self.tool_call is None):
            raise WireError(ErrorCode.VALIDATION_ERROR, "a step needs exactly one of 'text' or 'tool_call'")
        if self.text is not None:
            return self.text
        assert self.tool_call is not None
        return json.dumps({"name": self.tool_call.name, "arguments": self.tool_call.arguments})


class ToolOp(_Strict):
    """OpenEnv's tool-calling step actions (what its `MCPToolClient` sends over `/ws`)."""

    type: Literal["list_tools", "call_tool"]
    tool_name: str | None = Field(default=None, max_length=128)
    arguments: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)

    def action_text(self) -> str:
        if not self.tool_name:
            raise WireError(ErrorCode.VALIDATION_ERROR, "call_tool needs a 'tool_name'")
        return json.dumps({"name": self.tool_name, "arguments": self.arguments})


class Request(BaseModel):
    """One parsed client message."""

    type: Literal["reset", "step", "state", "close"]
    reset: ResetData | None = None
    step: StepData | None = None
    tool_op: ToolOp | None = None


def _check_params(params: Any) -> None:
    if params is None:
        return
    if not isinstance(params, dict) or len(params) > MAX_PARAMS:
        raise WireError(ErrorCode.VALIDATION_ERROR, f"'params' must be an object of at most {MAX_PARAMS} scalars")
    for key, value in params.items():
        if len(key) > MAX_PARAM_KEY or (isinstance(value, str) and len(value) > MAX_PARAM_STR):
            raise WireError(ErrorCode.VALIDATION_ERROR, "a 'params' key or string value is too long")


def _one_line(exc: ValidationError) -> str:
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": str(exc)}
    where = ".".join(str(part) for part in first.get("loc", ())) or "message"
    return f"{where}: {first.get('msg', 'invalid')} ({exc.error_count()} error(s))"


def parse_request(raw: str | bytes | None, max_bytes: int) -> Request:
    """Parse one client frame. Total: any input gives a `Request` or raises `WireError`, nothing else."""
    if raw is None:
        raise WireError(ErrorCode.INVALID_JSON, "empty frame")
    size = len(raw) if isinstance(raw, bytes) else len(raw.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise WireError(ErrorCode.MESSAGE_TOO_LARGE, f"message of {size} bytes exceeds the {max_bytes}-byte limit")
    try:
        message = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # bad UTF-8, bad JSON, deep nesting, 5,000-digit integers
        raise WireError(ErrorCode.INVALID_JSON, f"invalid JSON: {str(exc)[:200]}") from None
    if not isinstance(message, dict):
        raise WireError(ErrorCode.INVALID_JSON, "a message must be a JSON object with a 'type'")
    kind = message.get("type")
    data = message.get("data", {})
    if kind not in ("reset", "step", "state", "close"):
        shown = kind if isinstance(kind, str) and len(kind) <= 40 else type(kind).__name__
        raise WireError(ErrorCode.UNKNOWN_TYPE, f"unknown message type {shown!r}; send reset, step, state or close")
    if set(message) - {"type", "data"}:
        raise WireError(ErrorCode.VALIDATION_ERROR, "a message has only 'type' and 'data'")
    if kind in ("state", "close"):
        return Request(type=kind)
    if not isinstance(data, dict):
        raise WireError(ErrorCode.VALIDATION_ERROR, "'data' must be a JSON object")
    try:
        if kind == "reset":
            _check_params(data.get("params"))
            return Request(type="reset", reset=ResetData.model_validate(data))
        if data.get("type") in ("list_tools", "call_tool"):
            return Request(type="step", tool_op=ToolOp.model_validate(data))
        return Request(type="step", step=StepData.model_validate(data))
    except ValidationError as exc:
        raise WireError(ErrorCode.VALIDATION_ERROR, _one_line(exc)) from None


def _jsonable(value: Any) -> Any:
    """Fallback for `json.dumps`: NumPy scalars and arrays, sets and bytes in an env's info dict."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return repr(value)


def dumps(frame: dict[str, Any]) -> str:
    return json.dumps(frame, default=_jsonable, ensure_ascii=False, separators=(",", ":"))


def error_frame(code: ErrorCode, message: str, **extra: Any) -> str:
    return dumps({"type": "error", "data": {"message": message, "code": code.value, **extra}})


def observation_frame(
    text: str, reward: float | None, terminated: bool, truncated: bool, info: dict[str, Any], done: bool
) -> str:
    """An OpenEnv observation frame; `reward` is None on reset, as OpenEnv's own envs send it."""
    observation = {"text": text, "terminated": terminated, "truncated": truncated, "info": info}
    data = {"observation": observation, "reward": reward, "done": done}
    return dumps({"type": "observation", "data": data})
