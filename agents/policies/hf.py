"""`HFPolicy`: a local transformers causal LM as a token policy (CUDA when present, else CPU).

Why token-level: the learner needs the exact ids the model sampled and their log-probs, and the ids of each
new observation appended after them, so that training sees precisely what sampling saw. Rendering lives in
`chat_encoding`, the sampling loop (no logits processors, a KV cache kept across turns) in `sampling`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from envgym.agents.policies.base import ActionSample, Message
from envgym.agents.policies.chat_encoding import ChatEncoder, ChatTemplatePolicy
from envgym.agents.policies.sampling import SamplerCache, TokenSampler
from envgym.extras import require


class HFPolicyConfig(BaseModel):
    """How to load and sample from a transformers model."""

    model_config = ConfigDict(extra="forbid")  # a misspelt key is an error, not a silent default

    model: str = Field(default="smollm2-135m", description="'smollm2-135m', a local directory or a hub id")
    device: str = Field(default="auto", description="'auto' (cuda if available), 'cpu' or 'cuda[:n]'")
    bf16: bool = Field(default=True, description="autocast to bfloat16 on CUDA (ignored on CPU)")
    bf16_weights: bool = Field(default=False, description="keep the weights in bfloat16 on CUDA (halves memory)")
    reuse_kv_cache: bool = Field(default=True, description="a later turn of a rollout encodes only its new tokens")
    max_new_tokens: int = Field(default=32, ge=1)
    temperature: float = Field(default=1.0, ge=0.0, description="0 means greedy")
    system_prompt: str | None = Field(default=None, description="None: the chat template's own default")
    include_tools: bool = Field(default=False, description="pass the env's tool schemas to the chat template")
    stop_strings: list[str] = Field(default_factory=list, description="extra single-token stop strings")
    action_prefix: str = Field(
        default="",
        description="text that opens every assistant turn (e.g. 'Guess:'); part of the context, never trained on",
    )
    lora_r: int = Field(default=0, ge=0, description="0: full fine-tuning; >0: a LoRA adapter of this rank")
    lora_alpha: int = 32
    lora_target_modules: list[str] = Field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])


def pick_device(device: str = "auto") -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def resolve_model_path(name: str) -> str:
    """Map the default model alias to its local safetensors cache; other names pass through unchanged."""
    if name.lower() in {"smollm2-135m", "smollm2", "smollm2-135m-instruct", "default"}:
        from envgym.agents.policies.smollm import model_dir

        return str(model_dir())
    if name.startswith(("/", "./", "../", "~")) and not os.path.isdir(os.path.expanduser(name)):
        raise FileNotFoundError(f"no model directory at {name}: give a local model dir, a hub id or smollm2-135m")
    return name


class HFPolicy(ChatTemplatePolicy):
    """A causal LM with a chat template: batched sampling returning exact ids and log-probs, a KV cache kept
    across the turns of one rollout (`session`), and the scoring forward the trainer uses."""

    def __init__(self, model: Any, tokenizer: Any, config: HFPolicyConfig | None = None, name: str | None = None):
        import torch

        self.config = config or HFPolicyConfig()
        self.tokenizer = tokenizer
        self.device = torch.device(pick_device(self.config.device))
        if self.device.type == "cuda" and self.config.bf16_weights:
            model = model.to(torch.bfloat16)
        self.model = model.to(self.device)
        self.name = name or f"hf:{self.config.model}"
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.pad_id = int(tokenizer.pad_token_id)
        stops = {int(tokenizer.eos_token_id)}
        for s in self.config.stop_strings:
            tid = tokenizer.convert_tokens_to_ids(s)
            if isinstance(tid, int) and tid != tokenizer.unk_token_id:
                stops.add(tid)
        self.stop_ids = sorted(stops)
        self.chat = ChatEncoder(
            tokenizer, self.stop_ids, self.config.system_prompt, self.config.action_prefix, self.config.include_tools
        )
        self.sampler = TokenSampler(self.model, self.pad_id, self.stop_ids, self.device)
        self._cache: SamplerCache | None = None
        self._in_session = False

    @classmethod
    def from_config(cls, config: HFPolicyConfig) -> HFPolicy:
        require("torch")
        require("transformers")
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = resolve_model_path(config.model)
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
        if config.lora_r > 0:
            from peft import LoraConfig, get_peft_model

            lora = LoraConfig(
                r=config.lora_r,
                lora_alpha=config.lora_alpha,
                target_modules=list(config.lora_target_modules),
                task_type="CAUSAL_LM",
            )
            model = get_peft_model(model, lora)  # type: ignore[assignment]
        return cls(model, tokenizer, config, name=f"hf:{config.model}")

    # ----- rendering (delegated to the chat encoder) ----------------------------------------------------
    def render(
        self, messages: Sequence[Message], add_generation_prompt: bool, tools: list[dict[str, Any]] | None = None
    ) -> str:
        return self.chat.render(messages, add_generation_prompt, tools)

    def encode_text(self, text: str) -> list[int]:
        return self.chat.encode_text(text)

    # ----- sampling -----------------------------------------------------------------------------------
    def autocast(self) -> Any:
        """bf16 autocast on CUDA when configured; a no-op on CPU. The trainer's forwards use it too."""
        import contextlib

        import torch

        if self.device.type == "cuda" and self.config.bf16:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @contextmanager
    def session(self) -> Iterator[None]:
        """Within a session (one rollout, fixed weights) each `sample` call may reuse the previous call's KV
        cache for contexts that extend what it holds; the cache is dropped at exit (weights change next)."""
        self._in_session, self._cache = self.config.reuse_kv_cache, None
        try:
            yield
        finally:
            self._in_session, self._cache = False, None

    def sample(self, contexts: Sequence[Sequence[int]]) -> list[ActionSample]:
        """Plain temperature sampling (no logits processor of any kind); exact ids and log-probs."""
        if not contexts:
            return []
        self.model.eval()
        with self.autocast():
            rows, cache = self.sampler.sample(
                contexts, self.config.max_new_tokens, self.config.temperature, self._cache if self._in_session else None
            )
        self._cache = cache if self._in_session else None
        texts = self.tokenizer.batch_decode([r.token_ids for r in rows], skip_special_tokens=True)
        return [
            ActionSample(text=self.config.action_prefix + text, token_ids=r.token_ids, logprobs=r.logprobs,
                         stopped=r.stopped)
            for text, r in zip(texts, rows, strict=True)
        ]  # fmt: skip
