"""A local stand-in for an OpenAI-compatible chat server: scripted answers, real HTTP, injectable faults.

Why a stand-in and not a mocked client: the failures that killed live evaluations happen on the wire (an
HTTP 400 for context overflow, a 500 for `content: null`, a slow answer, tools ignored without
`tool_choice`), so tests must send real requests through the real `openai` SDK to a real server on loopback.
The server checks requests the way strict servers do (tool messages must answer an earlier call id; assistant
tool-call messages must have string content; a context limit) and answers with a scripted action, as a
native tool call or as text. The default script plays guess-the-number by binary search from the
conversation, so `envgym/GuessNumber-v0` episodes are solved when the conversation is carried correctly.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from pydantic import BaseModel, Field

from envgym.extras import needs_extra

Responder = Callable[[list[dict[str, Any]]], dict[str, Any]]
"""messages -> the action to answer with, {"name": ..., "arguments": {...}}."""


class Fault(BaseModel):
    """A scripted misbehaviour for requests at assistant turn `turn` (None: any), fired `times` times."""

    turn: int | None = None
    match: str | None = Field(default=None, description="only requests whose messages contain this text")
    times: int = 1
    status: int | None = Field(default=None, description="answer with this HTTP status")
    message: str = "injected failure"
    overflow: bool = Field(default=False, description="answer 400 context_length_exceeded")
    delay_s: float = Field(default=0.0, ge=0, description="answer this much later")


class StandinConfig(BaseModel):
    context_tokens: int = Field(default=8192, description="refuse prompts estimated above this (chars / 4)")
    tools_need_choice: bool = Field(
        default=False, description="ignore `tools` unless `tool_choice` is sent (llama.cpp's default chat mode)"
    )
    reject_null_content: bool = Field(default=True, description="answer 500 to an assistant message with null")
    faults: list[Fault] = Field(default_factory=list)


def _action_of(message: dict[str, Any]) -> dict[str, Any] | None:
    calls = message.get("tool_calls") or []
    if calls:
        fn = calls[0]["function"]
        args = fn.get("arguments") or "{}"
        return {"name": fn["name"], "arguments": json.loads(args) if isinstance(args, str) else args}
    text = str(message.get("content") or "")
    match = re.search(r"\{.*\}", text, re.S)
    if match:
        try:
            return dict(json.loads(match.group(0)))
        except (json.JSONDecodeError, TypeError, ValueError):
            return None
    number = re.search(r"-?\d+", text)
    return {"name": "guess", "arguments": {"number": int(number.group(0))}} if number else None


def binary_search(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """Guess-the-number by bisection over the conversation's guesses and higher/lower answers."""
    first = next((str(m.get("content") or "") for m in messages if m["role"] == "user"), "")
    bounds = re.search(r"between (-?\d+) and (-?\d+)", first)
    low, high = (int(bounds.group(1)), int(bounds.group(2))) if bounds else (1, 16)
    for k, message in enumerate(messages):
        if message["role"] != "assistant" or k + 1 >= len(messages):
            continue
        action = _action_of(message)
        answer = str(messages[k + 1].get("content") or "").lower()
        number = (action or {}).get("arguments", {}).get("number")
        if isinstance(number, int):
            if "higher" in answer:
                low = max(low, number + 1)
            elif "lower" in answer:
                high = min(high, number - 1)
    return {"name": "guess", "arguments": {"number": (low + high) // 2}}


class _State:
    def __init__(self, config: StandinConfig, responder: Responder) -> None:
        self.config = config
        self.responder = responder
        self.requests: list[dict[str, Any]] = []
        self.fired = [0] * len(config.faults)
        self.lock = threading.Lock()

    def fault_for(self, turn: int, text: str) -> Fault | None:
        with self.lock:
            for k, fault in enumerate(self.config.faults):
                if fault.match is not None and fault.match not in text:
                    continue
                if self.fired[k] < fault.times and (fault.turn is None or fault.turn == turn):
                    self.fired[k] += 1
                    return fault
        return None


def _error(status: int, message: str, code: str | None = None) -> tuple[int, dict[str, Any]]:
    kind = "invalid_request_error" if status < 500 else "server_error"
    return status, {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _check(body: dict[str, Any], config: StandinConfig) -> tuple[int, dict[str, Any]] | None:
    """Refuse what strict servers refuse."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return _error(400, "'messages' must be a non-empty list")
    open_calls: set[str] = set()
    for message in messages:
        role = message.get("role")
        if role not in ("system", "user", "assistant", "tool"):
            return _error(400, f"invalid role {role!r}")
        if role == "assistant" and message.get("tool_calls"):
            if message.get("content") is None and config.reject_null_content:
                return _error(500, "assistant content must be a string, got null")
            open_calls |= {c["id"] for c in message["tool_calls"]}
        if role == "tool":
            if message.get("tool_call_id") not in open_calls:
                return _error(400, f"tool message answers no earlier tool call: {message.get('tool_call_id')!r}")
            if not isinstance(message.get("content"), str):
                return _error(400, "tool message content must be a string")
    tokens = len(json.dumps(messages)) // 4 + len(json.dumps(body.get("tools") or [])) // 4
    if tokens + int(body.get("max_tokens") or 0) > config.context_tokens:
        return _error(400, f"This model's maximum context length is {config.context_tokens} tokens. However, you "
                      f"requested {tokens + int(body.get('max_tokens') or 0)} tokens.", "context_length_exceeded")  # fmt: skip
    return None


def _reply(body: dict[str, Any], state: _State) -> tuple[int, dict[str, Any]]:
    refused = _check(body, state.config)
    if refused is not None:
        return refused
    messages: list[dict[str, Any]] = body["messages"]
    prefill = messages[-1].get("content") or "" if messages[-1]["role"] == "assistant" else None
    action = state.responder(messages if prefill is None else messages[:-1])
    tools = body.get("tools") or []
    choice = body.get("tool_choice")
    use_tools = bool(tools) and choice != "none" and (choice is not None or not state.config.tools_need_choice)
    message: dict[str, Any]
    if use_tools and prefill is None:
        call = {"id": f"call_{uuid.uuid4().hex[:12]}", "type": "function",
                "function": {"name": action["name"], "arguments": json.dumps(action["arguments"])}}  # fmt: skip
        message, finish = {"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls"
    else:
        text = json.dumps(action)
        if prefill is not None:
            text = text[len(prefill) :] if text.startswith(prefill) else text
        message, finish = {"role": "assistant", "content": text}, "stop"
    prompt_tokens = len(json.dumps(messages)) // 4
    return 200, {
        "id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "object": "chat.completion", "created": int(time.time()),
        "model": body.get("model", "standin"),
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": 8, "total_tokens": prompt_tokens + 8},
    }  # fmt: skip


def make_app(config: StandinConfig | None = None, responder: Responder = binary_search) -> Any:
    """The FastAPI app; `app.state.standin.requests` holds every request body received."""
    with needs_extra("server"):
        from fastapi import FastAPI, Request
        from fastapi.responses import JSONResponse

    state = _State(config or StandinConfig(), responder)
    app = FastAPI()
    app.state.standin = state

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": "standin", "object": "model", "owned_by": "envgym"}]}

    async def chat(request: Request) -> JSONResponse:
        import asyncio

        try:
            body = await request.json()
        except ValueError:
            return JSONResponse(_error(400, "body is not JSON")[1], status_code=400)
        with state.lock:
            state.requests.append(body)
        messages = body.get("messages") or []
        prefilled = bool(messages) and messages[-1].get("role") == "assistant"
        turn = sum(m.get("role") == "assistant" for m in messages) - prefilled
        fault = state.fault_for(turn, json.dumps(messages))
        if fault is not None:
            if fault.delay_s:
                await asyncio.sleep(fault.delay_s)
            if fault.overflow:
                status, payload = _error(400, "This model's maximum context length is 512 tokens. However, your "
                                         "messages resulted in 900 tokens.", "context_length_exceeded")  # fmt: skip
                return JSONResponse(payload, status_code=status)
            if fault.status is not None:
                return JSONResponse(_error(fault.status, fault.message)[1], status_code=fault.status)
        status, payload = _reply(body, state)
        return JSONResponse(payload, status_code=status)

    # FastAPI reads the parameter's type to inject the request; under postponed annotations it is a string
    chat.__annotations__["request"] = Request
    app.post("/v1/chat/completions")(chat)
    return app


@contextmanager
def serve(config: StandinConfig | None = None, responder: Responder = binary_search) -> Iterator[tuple[str, Any]]:
    """Run the stand-in on a free loopback port in a thread; yields (base_url ending in /v1, state)."""
    with needs_extra("server"):
        import uvicorn

    app = make_app(config, responder)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the OpenAI stand-in server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}/v1", app.state.standin
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
