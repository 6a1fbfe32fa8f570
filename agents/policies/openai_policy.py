"""`OpenAIPolicy`: any OpenAI-compatible chat endpoint as a policy (evaluation, baselines, teachers).

Why map tool calls: with `use_tools` the env's OpenAI function schemas go to the endpoint and a native tool
call comes back; the env speaks text, so the call is turned into the canonical action text
`{"name": ..., "arguments": {...}}` that every envgym env parses. With `native_tools` the conversation keeps
the call as the assistant's `tool_calls` and the env's answer comes back as a `tool` message with the call id
(`extend`), as tool-trained models expect; without it the call is replayed as plain text.

Why a policy never raises on a failed request: a real server refuses some requests (context overflow, a
malformed body, an overloaded queue) and one refusal must end that episode only. `act` retries transient
errors with backoff, then returns an empty action whose `extra["failure"]` says how the episode ends:
`truncated` when the conversation outgrew the context (a budget ran out), `infra` when the server or the
network failed (not the agent: excluded from success rates), with the reason.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

from pydantic import BaseModel, Field

from envgym.agents.policies.base import ActionSample, Message
from envgym.extras import require

FAILURE_KEY = "failure"
"""`ActionSample.extra[FAILURE_KEY]` = {"kind": "infra" | "truncated", "reason": str} when no action came back."""

_OVERFLOW_MARKERS = ("context length", "context_length", "context window", "maximum context", "too many tokens",
                     "exceeds the context", "prompt is too long", "n_ctx")  # fmt: skip


class OpenAIPolicyConfig(BaseModel):
    model: str = "gpt-4o-mini"
    base_url: str | None = Field(default=None, description="None: the SDK default (or OPENAI_BASE_URL)")
    api_key_env: str = Field(default="OPENAI_API_KEY", description="environment variable holding the key")
    temperature: float = 0.0
    max_tokens: int = Field(default=512, ge=1)
    use_tools: bool = Field(default=True, description="send the env's function schemas as `tools`")
    tool_choice: str | None = Field(
        default="auto", description="auto, required, none, or a tool name; None: do not send the field"
    )
    native_tools: bool = Field(
        default=True, description="keep tool calls as `tool_calls` + `tool` messages (False: replay as text)"
    )
    system_prompt: str | None = None
    prefill: str | None = Field(
        default=None,
        description="assistant prefill: sent as a final assistant message the reply continues (the HF policy's "
        "action prefix); the action is prefill + reply. Needs an endpoint that continues a final assistant turn",
    )
    extra_body: dict[str, Any] = Field(default_factory=dict, description="server-specific request fields")
    concurrency: int = Field(default=8, ge=1)
    timeout_s: float = Field(default=120.0, gt=0)
    max_retries: int = Field(default=2, ge=0, description="retries of transient errors (429, 5xx, timeouts)")
    backoff_s: float = Field(default=1.0, ge=0, description="first retry delay; doubles each retry, with jitter")
    max_context_tokens: int | None = Field(
        default=None, ge=16, description="context budget: prompt + max_tokens must fit (None: no budget)"
    )
    on_context_overflow: Literal["stop", "trim"] = Field(
        default="stop", description="over budget: end the episode as truncated, or drop the oldest exchanges"
    )
    chars_per_token: float = Field(
        default=3.0, gt=0, description="first estimate of prompt size; refined from the server's usage counts"
    )


def tool_call_to_action(name: str, arguments: str | dict[str, Any] | None) -> str:
    """The env's canonical JSON action text for a native tool call (string arguments are decoded)."""
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError:
            return json.dumps({"name": name, "arguments": arguments})  # the env explains the bad JSON
    return json.dumps({"name": name, "arguments": arguments or {}})


def failure(kind: Literal["infra", "truncated"], reason: str) -> ActionSample:
    """An action that did not come back: the episode ends (`kind`) with `reason`."""
    return ActionSample(text="", stopped=False, extra={FAILURE_KEY: {"kind": kind, "reason": reason[:500]}})


def classify_error(exc: BaseException) -> tuple[Literal["retry", "infra", "truncated"], str]:
    """What a failed request means: retry it, or end the episode as infra or truncated."""
    import openai

    text = f"{type(exc).__name__}: {getattr(exc, 'message', None) or exc}"
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        body = json.dumps(exc.body) if exc.body is not None else ""
        detail = f"HTTP {status}: {(str(getattr(exc, 'message', '')) + ' ' + body).strip()}"
        if status in (400, 413, 422) and any(m in detail.lower() for m in _OVERFLOW_MARKERS):
            return "truncated", f"context overflow ({detail})"
        if status in (408, 409, 429) or status >= 500:
            return "retry", detail
        return "infra", f"endpoint refused the request ({detail})"
    if isinstance(exc, openai.APITimeoutError):
        return "retry", f"timed out ({text})"
    if isinstance(exc, openai.APIConnectionError):
        return "retry", f"connection failed ({text})"
    return "infra", f"request failed ({text})"


class OpenAIPolicy:
    """Batched over a thread pool; one chat completion per conversation; failures end one episode only."""

    def __init__(self, config: OpenAIPolicyConfig | None = None, client: Any | None = None) -> None:
        self.config = config or OpenAIPolicyConfig()
        self.name = f"openai:{self.config.model}"
        if client is None:
            require("openai")
            from openai import OpenAI

            key = os.environ.get(self.config.api_key_env)
            if not key:
                raise RuntimeError(f"set {self.config.api_key_env} to the endpoint's API key (any value for local)")
            # Retries are ours (classified, with backoff), so the SDK's own are off.
            client = OpenAI(api_key=key, base_url=self.config.base_url, timeout=self.config.timeout_s, max_retries=0)
        self.client = client
        self._chars_per_token = self.config.chars_per_token
        self._lock = threading.Lock()

    def initial_messages(self, observation: str) -> list[Message]:
        messages: list[Message] = []
        if self.config.system_prompt:
            messages.append({"role": "system", "content": self.config.system_prompt})
        messages.append({"role": "user", "content": observation})
        return messages

    def extend(self, conversation: list[Message], action: ActionSample, observation: str) -> None:
        """Append the action and the env's answer: native `tool_calls` + `tool` message, or plain text."""
        call = action.extra.get("tool_call_message")
        if call and self.config.native_tools:
            assistant = {"role": "assistant", "content": action.extra.get("content") or "", "tool_calls": [call]}
            conversation += [assistant, {"role": "tool", "tool_call_id": call["id"], "content": observation}]
        else:
            conversation += [{"role": "assistant", "content": action.text}, {"role": "user", "content": observation}]

    # --- context budget -------------------------------------------------------------------------------------

    def estimate_tokens(self, messages: Sequence[Message], tools: list[dict[str, Any]] | None = None) -> int:
        """Prompt size estimate: characters (messages and tool schemas) over the server-calibrated characters
        per token, plus a few tokens per message for the chat template."""
        chars = sum(len(json.dumps(m, ensure_ascii=False)) for m in messages)
        if tools and self.config.use_tools:
            chars += len(json.dumps(tools, ensure_ascii=False))
        return int(chars / self._chars_per_token) + 4 * len(messages)

    def _calibrate(self, messages: Sequence[Message], prompt_tokens: int | None) -> None:
        if not prompt_tokens:
            return
        chars = sum(len(json.dumps(m, ensure_ascii=False)) for m in messages)
        with self._lock:  # keep the most conservative (smallest) ratio seen: never underestimate twice
            self._chars_per_token = max(0.5, min(self._chars_per_token, chars / prompt_tokens))

    def fit_budget(self, messages: list[Message], tools: list[dict[str, Any]] | None = None) -> list[Message] | None:
        """The messages to send within the budget: as is, trimmed of the oldest exchanges, or None (stop)."""
        budget = self.config.max_context_tokens
        if budget is None:
            return messages
        room = budget - self.config.max_tokens
        if self.estimate_tokens(messages, tools) <= room:
            return messages
        if self.config.on_context_overflow == "stop":
            return None
        head = 2 if messages and messages[0]["role"] == "system" else 1  # keep the instructions and the task
        rest = messages[head:]
        while len(rest) > 2 and self.estimate_tokens(messages[:head] + rest, tools) > room:
            rest = rest[2:]  # one exchange: the assistant turn and the env's answer (tool pairs stay together)
        trimmed = messages[:head] + rest  # the task and at least the latest exchange, or nothing
        return trimmed if self.estimate_tokens(trimmed, tools) <= room else None

    # --- requests -------------------------------------------------------------------------------------------

    def _request(self, messages: list[Message], tools: list[dict[str, Any]] | None) -> dict[str, Any]:
        cfg = self.config
        kwargs: dict[str, Any] = {
            "model": cfg.model, "messages": messages, "temperature": cfg.temperature, "max_tokens": cfg.max_tokens,
        }  # fmt: skip
        if tools and cfg.use_tools:
            kwargs["tools"] = tools
            if cfg.tool_choice in ("auto", "required", "none"):
                kwargs["tool_choice"] = cfg.tool_choice
            elif cfg.tool_choice:
                kwargs["tool_choice"] = {"type": "function", "function": {"name": cfg.tool_choice}}
        if cfg.extra_body:
            kwargs["extra_body"] = dict(cfg.extra_body)
        return kwargs

    def _one(self, conversation: Sequence[Message], tools: list[dict[str, Any]] | None) -> ActionSample:
        messages = self.fit_budget(list(conversation), tools)
        if messages is None:
            budget = self.config.max_context_tokens
            return failure("truncated", f"context budget: the conversation no longer fits {budget} tokens")
        if self.config.prefill:
            messages = [*messages, {"role": "assistant", "content": self.config.prefill}]
        kwargs = self._request(messages, tools)
        reason = ""
        for attempt in range(self.config.max_retries + 1):
            try:
                response = self.client.chat.completions.create(**kwargs)
                break
            except Exception as exc:  # every failure is classified; none escapes to the other episodes
                verdict, reason = classify_error(exc)
                if verdict != "retry":
                    return failure(verdict, reason)
                if attempt < self.config.max_retries:
                    time.sleep(self.config.backoff_s * 2**attempt * (0.5 + random.random()))
        else:
            return failure("infra", f"gave up after {self.config.max_retries + 1} attempts: {reason}")
        return self._parse(messages, response)

    def _parse(self, messages: list[Message], response: Any) -> ActionSample:
        choices = getattr(response, "choices", None) or []
        if not choices:
            return failure("infra", "the endpoint answered without choices")
        choice = choices[0]
        message = choice.message
        usage = getattr(response, "usage", None)
        self._calibrate(messages, getattr(usage, "prompt_tokens", None))
        extra: dict[str, Any] = {
            "completion_tokens": getattr(usage, "completion_tokens", None),
            "prompt_tokens": getattr(usage, "prompt_tokens", None),
            "finish_reason": getattr(choice, "finish_reason", None),
        }
        stopped = extra["finish_reason"] != "length"
        calls = getattr(message, "tool_calls", None) or []
        if calls:
            call = calls[0]
            fn = call.function
            arguments = fn.arguments if isinstance(fn.arguments, str) else json.dumps(fn.arguments)
            call_id = getattr(call, "id", None) or f"call_{random.getrandbits(48):012x}"
            extra["tool_call"] = True
            extra["content"] = message.content or ""
            extra["tool_call_message"] = {"id": call_id, "type": "function",
                                          "function": {"name": fn.name, "arguments": arguments}}  # fmt: skip
            return ActionSample(text=tool_call_to_action(fn.name, fn.arguments), stopped=stopped, extra=extra)
        return ActionSample(text=(self.config.prefill or "") + (message.content or ""), stopped=stopped, extra=extra)

    def act(
        self, conversations: Sequence[Sequence[Message]], tools: Sequence[list[dict[str, Any]]] | None = None
    ) -> list[ActionSample]:
        tool_lists = list(tools) if tools is not None else [None] * len(conversations)
        if len(conversations) == 1:
            return [self._one(conversations[0], tool_lists[0])]
        with ThreadPoolExecutor(max_workers=self.config.concurrency) as pool:
            return list(pool.map(self._one, conversations, tool_lists))
