"""The policy protocols the rollout and `envgym eval` code against.

Why two protocols: every policy maps many conversations to one action each (`Policy`, enough for evaluation
of any endpoint); a policy we train must also work on token ids (`TokenPolicy`), so that the rollout keeps the
exact sampled ids and their log-probs and never re-renders a chat history between sampling and training.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, Field

Message = dict[str, Any]
"""One chat message in OpenAI form: {"role": "system" | "user" | "assistant", "content": str}."""


class ActionSample(BaseModel):
    """One sampled action: its text and, for token policies, the exact ids and their log-probs."""

    text: str
    token_ids: list[int] = Field(default_factory=list)
    logprobs: list[float] = Field(default_factory=list)
    stopped: bool = Field(default=True, description="ended with a stop token (False: cut by max_new_tokens)")
    extra: dict[str, Any] = Field(default_factory=dict)


@runtime_checkable
class Policy(Protocol):
    """Batched: `conversations[i]` (with `tools[i]`, the env's OpenAI schemas) in, `result[i]` out."""

    name: str

    def act(
        self, conversations: Sequence[Sequence[Message]], tools: Sequence[list[dict[str, Any]]] | None = None
    ) -> list[ActionSample]: ...


@runtime_checkable
class TokenPolicy(Policy, Protocol):
    """A policy that samples from token contexts; the learner trains these."""

    def encode_prompt(self, messages: Sequence[Message], tools: list[dict[str, Any]] | None = None) -> list[int]:
        """Ids of the first context: the rendered chat plus the assistant header."""
        ...

    def encode_observation(self, text: str, action_stopped: bool) -> list[int]:
        """Ids appended after a sampled action: end of the assistant turn (unless the action sampled it),
        the new user message and the next assistant header, rendered once."""
        ...

    def sample(self, contexts: Sequence[Sequence[int]]) -> list[ActionSample]:
        """Sample one action per context; return its ids (stop token included) and log-probs."""
        ...
