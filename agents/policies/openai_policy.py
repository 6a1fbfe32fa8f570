"""`OpenAIPolicy`: any OpenAI-compatible chat endpoint as a policy (evaluation, baselines, teachers).

Why map tool calls: with `use_tools` the env's OpenAI function schemas go to the endpoint and a native tool
call comes back; the env speaks text, so the call is turned into the canonical action text
`{"name": ..., "arguments": {...}}` that every envgym env parses.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pydantic import BaseModel, Field

from envgym.agents.policies.base import ActionSample, Message


class OpenAIPolicyConfig(BaseModel):
    model: str = "gpt-4o-mini"
    base_url: str | None = Field(default=None, description="None: the SDK default (or OPENAI_BASE_URL)")
    api_key_env: str = Field(default="OPENAI_API_KEY", description="environment variable holding the key")
    temperature: float = 0.0
    max_tokens: int = 512
    use_tools: bool = True
    system_prompt: str | None = None
    concurrency: int = Field(default=8, ge=1)
    timeout_s: float = 120.0
    max_retries: int = 2


def tool_call_to_action(name: str, arguments: str | dict[str, Any] | None) -> str:
    """The env's canonical JSON action text for a native tool call (string arguments are decoded)."""
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError:
            return json.dumps({"name": name, "arguments": arguments})  # the env explains the bad JSON
    return json.dumps({"name": name, "arguments": arguments or {}})


class OpenAIPolicy:
    """Batched over a thread pool; one chat completion per conversation."""

    def __init__(self, config: OpenAIPolicyConfig | None = None, client: Any | None = None) -> None:
        self.config = config or OpenAIPolicyConfig()
        self.name = f"openai:{self.config.model}"
        if client is None:
            from openai import OpenAI

            key = os.environ.get(self.config.api_key_env)
            if not key:
                raise RuntimeError(f"set {self.config.api_key_env} to the endpoint's API key (any value for local)")
            client = OpenAI(
                api_key=key,
                base_url=self.config.base_url,
                timeout=self.config.timeout_s,
                max_retries=self.config.max_retries,
            )
        self.client = client

    def initial_messages(self, observation: str) -> list[Message]:
        messages: list[Message] = []
        if self.config.system_prompt:
            messages.append({"role": "system", "content": self.config.system_prompt})
        messages.append({"role": "user", "content": observation})
        return messages

    def _one(self, conversation: Sequence[Message], tools: list[dict[str, Any]] | None) -> ActionSample:
        kwargs: dict[str, Any] = {
            "model": self.config.model,
            "messages": list(conversation),
            "temperature": self.config.temperature,
            "max_tokens": self.config.max_tokens,
        }
        if tools and self.config.use_tools:
            kwargs["tools"] = tools
        response = self.client.chat.completions.create(**kwargs)
        message = response.choices[0].message
        calls = getattr(message, "tool_calls", None) or []
        usage = getattr(response, "usage", None)
        extra = {"completion_tokens": getattr(usage, "completion_tokens", None)}
        if calls:
            fn = calls[0].function
            extra["tool_call"] = True
            return ActionSample(text=tool_call_to_action(fn.name, fn.arguments), extra=extra)
        return ActionSample(text=message.content or "", extra=extra)

    def act(
        self, conversations: Sequence[Sequence[Message]], tools: Sequence[list[dict[str, Any]]] | None = None
    ) -> list[ActionSample]:
        tool_lists = list(tools) if tools is not None else [None] * len(conversations)
        with ThreadPoolExecutor(max_workers=self.config.concurrency) as pool:
            return list(pool.map(self._one, conversations, tool_lists))
