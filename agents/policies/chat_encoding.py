"""Chat-template encoding for token policies: the first prompt, and the ids appended after each action.

Why observations are rendered once, inside a conversation that already has a later user message: templates
may render an assistant turn differently once a later user message exists (Qwen3 drops earlier `<think>`
blocks; its last assistant turn gets an empty think block). The ids appended after an action are therefore
cut from a render of `[first messages, assistant MARK, user OBS]` right after MARK: exactly what the template
puts between an earlier assistant turn and the next assistant header. The sampled action ids are kept as the
model produced them (token-in/token-out), so no earlier turn is ever re-rendered.

The prefix assertion that stays: the first prompt (rendered with the generation header) must be a prefix of
that render up to MARK; otherwise the template rewrites the first turn once more turns exist (Mistral's moves
the system prompt to the last user message) and no append-only encoding can match what it shows the model.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from envgym.agents.policies.base import ActionSample, Message

_MARK = "ZQXACTIONMARKZQX"
_FIRST = "ZQXFIRSTOBSZQX"


class TemplateError(ValueError):
    """The chat template cannot be used append-only (token-in/token-out)."""


class ChatEncoder:
    """Renders with the tokenizer's chat template; caches prompts and observation ids per text."""

    def __init__(
        self,
        tokenizer: Any,
        stop_ids: Sequence[int],
        system_prompt: str | None = None,
        action_prefix: str = "",
        include_tools: bool = False,
    ) -> None:
        self.tokenizer = tokenizer
        self.system_prompt = system_prompt
        self.action_prefix = action_prefix
        self.include_tools = include_tools
        self._stop_texts = sorted({tokenizer.decode([int(t)]) for t in stop_ids} - {""}, key=len, reverse=True)
        self._obs_cache: dict[tuple[str, bool], list[int]] = {}
        self._prompt_cache: dict[str, list[int]] = {}
        self.encode_observation("probe", action_stopped=True)  # fail at construction on an unusable template

    def render(
        self, messages: Sequence[Message], add_generation_prompt: bool, tools: list[dict[str, Any]] | None = None
    ) -> str:
        kwargs: dict[str, Any] = {"tokenize": False, "add_generation_prompt": add_generation_prompt}
        if tools and self.include_tools:
            kwargs["tools"] = tools
        return str(self.tokenizer.apply_chat_template(list(messages), **kwargs))

    def encode_text(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def initial_messages(self, observation: str) -> list[Message]:
        messages: list[Message] = []
        if self.system_prompt is not None:
            messages.append({"role": "system", "content": self.system_prompt})
        messages.append({"role": "user", "content": observation})
        return messages

    def encode_prompt(self, messages: Sequence[Message], tools: list[dict[str, Any]] | None = None) -> list[int]:
        """Ids of the rendered chat plus the assistant header and the action prefix."""
        key = json.dumps([messages, tools if self.include_tools else None], sort_keys=True)
        cached = self._prompt_cache.get(key)
        if cached is None:
            text = self.render(messages, add_generation_prompt=True, tools=tools) + self.action_prefix
            cached = self.encode_text(text)
            if len(self._prompt_cache) > 4096:
                self._prompt_cache.clear()
            self._prompt_cache[key] = cached
        return list(cached)

    def encode_observation(self, text: str, action_stopped: bool) -> list[int]:
        """Ids appended after a sampled action: the end of the assistant turn (unless the action sampled the
        stop token), the new user message and the next assistant header (+ action prefix)."""
        key = (text, action_stopped)
        cached = self._obs_cache.get(key)
        if cached is not None:
            return list(cached)
        first = self.initial_messages(_FIRST)
        prompt = self.render(first, add_generation_prompt=True)
        full = self.render(
            [*first, {"role": "assistant", "content": _MARK}, {"role": "user", "content": text}],
            add_generation_prompt=True,
        )
        cut = full.find(_MARK)
        if cut < 0 or not full[:cut].startswith(prompt):
            raise TemplateError(
                "the chat template renders the first turn differently once later turns exist (e.g. it moves "
                "the system prompt to the last user message); token-in/token-out needs the first prompt to stay "
                "a prefix: drop `system_prompt` or use another template"
            )
        tail = full[cut + len(_MARK) :]
        if action_stopped:
            stripped = tail.lstrip()
            for stop in self._stop_texts:
                if stripped.startswith(stop):
                    tail = stripped[len(stop) :]
                    break
        ids = self.encode_text(tail + self.action_prefix)
        if len(self._obs_cache) < 100_000:
            self._obs_cache[key] = ids
        return ids


class ChatTemplatePolicy:
    """Base of the token policies that render with a `ChatEncoder` (`self.chat`): the encoding half of the
    `TokenPolicy` protocol and `act`; subclasses implement `sample`."""

    chat: ChatEncoder

    def initial_messages(self, observation: str) -> list[Message]:
        return self.chat.initial_messages(observation)

    def encode_prompt(self, messages: Sequence[Message], tools: list[dict[str, Any]] | None = None) -> list[int]:
        return self.chat.encode_prompt(messages, tools)

    def encode_observation(self, text: str, action_stopped: bool) -> list[int]:
        return self.chat.encode_observation(text, action_stopped)

    def sample(self, contexts: Sequence[Sequence[int]]) -> list[ActionSample]:
        raise NotImplementedError

    def act(
        self, conversations: Sequence[Sequence[Message]], tools: Sequence[list[dict[str, Any]]] | None = None
    ) -> list[ActionSample]:
        contexts = [
            self.encode_prompt(conv, None if tools is None else tools[i]) for i, conv in enumerate(conversations)
        ]
        return self.sample(contexts)
