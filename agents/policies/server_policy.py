"""`ServerTokenPolicy`: a token policy whose sampling runs on an inference server.

Why: a real inference engine (vLLM, SGLang) samples far faster than `HFPolicy`, and the learner stays
token-exact as long as the server takes token-id prompts and returns the sampled token ids with their
log-probs. We speak the vLLM-style OpenAI completions API:

    POST {base_url}/completions  {"prompt": [[ids...], ...], "max_tokens", "temperature", "top_p": 1,
        "top_k": -1, "logprobs": 1, "stop_token_ids": [...], "return_tokens_as_token_ids": true,
        "skip_special_tokens": false, ...}
    -> {"choices": [{"index", "text", "finish_reason", "logprobs": {"tokens": ["token_id:17", ...],
        "token_logprobs": [...]}}]}

Server notes: vLLM must return the log-probs of the distribution it sampled (`--logprobs-mode
processed_logprobs`; the default reports raw logits, which differ at T != 1). SGLang's native `/generate`
takes `input_ids` and returns `output_token_logprobs` (another adapter). llama.cpp's `llama-server` accepts
token-id prompts on `/completion` and returns per-token probabilities (`n_probs`, `post_sampling_probs`) and,
with `return_tokens`, the ids, but not in this shape. Rendering and observation ids come from the local
tokenizer (`ChatEncoder`), which must be the server model's. Weights on the server are not updated by the
trainer: use truncated IS (`tis_cap`) for the mismatch, and sync weights by your own means.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Field

from envgym.agents.policies.base import ActionSample
from envgym.agents.policies.chat_encoding import ChatEncoder, ChatTemplatePolicy


class ServerPolicyError(RuntimeError):
    """The inference server failed or answered in an unexpected shape."""


class ServerPolicyConfig(BaseModel):
    base_url: str = Field(description="OpenAI-compatible root, e.g. http://127.0.0.1:8000/v1")
    model: str = Field(description="model name the server serves")
    tokenizer: str = Field(description="local tokenizer dir or alias (the server model's tokenizer)")
    max_new_tokens: int = Field(default=32, ge=1)
    temperature: float = Field(default=1.0, ge=0.0, description="0 means greedy")
    system_prompt: str | None = None
    action_prefix: str = ""
    include_tools: bool = False
    timeout_s: float = Field(default=120.0, gt=0)
    api_key: str | None = None


def _token_id(token: str) -> int:
    if not token.startswith("token_id:"):
        raise ServerPolicyError(f"server returned token {token!r}; enable return_tokens_as_token_ids")
    return int(token.removeprefix("token_id:"))


class ServerTokenPolicy(ChatTemplatePolicy):
    """Samples over HTTP; encodes prompts and observations locally with the same chat template."""

    def __init__(self, config: ServerPolicyConfig, tokenizer: Any | None = None, client: Any | None = None) -> None:
        import httpx

        self.config = config
        if tokenizer is None:
            from transformers import AutoTokenizer

            from envgym.agents.policies.hf import resolve_model_path

            tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(config.tokenizer))
        self.tokenizer = tokenizer
        self.name = f"server:{config.model}"
        self.stop_ids = [int(tokenizer.eos_token_id)]
        self.pad_id = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id)
        self.chat = ChatEncoder(tokenizer, self.stop_ids, config.system_prompt, config.action_prefix,
                                config.include_tools)  # fmt: skip
        headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        self.client = client or httpx.Client(base_url=config.base_url, timeout=config.timeout_s, headers=headers)

    def request(self, contexts: Sequence[Sequence[int]]) -> dict[str, Any]:
        """The completions request body for these contexts (plain temperature sampling, nothing else)."""
        return {
            "model": self.config.model, "prompt": [list(c) for c in contexts], "n": 1,
            "max_tokens": self.config.max_new_tokens, "temperature": self.config.temperature, "top_p": 1.0,
            "top_k": -1, "min_p": 0.0, "repetition_penalty": 1.0, "presence_penalty": 0.0,
            "frequency_penalty": 0.0, "logprobs": 1, "stop_token_ids": self.stop_ids,
            "return_tokens_as_token_ids": True, "skip_special_tokens": False, "include_stop_str_in_output": True,
        }  # fmt: skip

    def sample(self, contexts: Sequence[Sequence[int]]) -> list[ActionSample]:
        import httpx

        if not contexts:
            return []
        try:
            response = self.client.post("/completions", json=self.request(contexts))
        except httpx.HTTPError as exc:
            raise ServerPolicyError(f"inference server at {self.config.base_url} unreachable: {exc}") from exc
        if response.status_code != 200:
            raise ServerPolicyError(f"inference server answered {response.status_code}: {response.text[:200]}")
        choices = sorted(response.json().get("choices", []), key=lambda c: c.get("index", 0))
        if len(choices) != len(contexts):
            raise ServerPolicyError(f"asked for {len(contexts)} completions, got {len(choices)}")
        out = []
        for choice in choices:
            lp = choice.get("logprobs") or {}
            ids = [_token_id(t) for t in lp.get("tokens", [])]
            logprobs = [float(x) for x in lp.get("token_logprobs", [])]
            if len(ids) != len(logprobs) or not ids:
                raise ServerPolicyError("completion without per-token ids and log-probs; request logprobs=1")
            stopped = ids[-1] in self.stop_ids
            text = str(self.tokenizer.decode(ids, skip_special_tokens=True))
            out.append(ActionSample(text=self.config.action_prefix + text, token_ids=ids, logprobs=logprobs,
                                    stopped=stopped))  # fmt: skip
        return out

    def close(self) -> None:
        self.client.close()
