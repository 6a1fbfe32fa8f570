"""`HFPolicy`: a local transformers causal LM as a token policy (CUDA when present, else CPU).

Why token-level: the learner needs the exact ids the model sampled and their log-probs, and the ids of each
new observation appended after them, so that training sees precisely what sampling saw. Observation ids come
from rendering only the new user message with the chat template (once, cached per text), never from
re-rendering the whole history.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from envgym.agents.policies.base import ActionSample, Message

if TYPE_CHECKING:
    import torch

_MARK = "ZQXACTIONMARKZQX"
_DUMMY: list[Message] = [
    {"role": "system", "content": "S"},
    {"role": "user", "content": "U"},
    {"role": "assistant", "content": _MARK},
]


class HFPolicyConfig(BaseModel):
    """How to load and sample from a transformers model."""

    model: str = Field(default="smollm2-135m", description="'smollm2-135m', a local directory or a hub id")
    device: str = Field(default="auto", description="'auto' (cuda if available), 'cpu' or 'cuda[:n]'")
    bf16: bool = Field(default=True, description="autocast to bfloat16 on CUDA (ignored on CPU)")
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
    return name


class HFPolicy:
    """A causal LM with a chat template; batched, left-padded sampling returning exact ids and log-probs."""

    def __init__(self, model: Any, tokenizer: Any, config: HFPolicyConfig | None = None, name: str | None = None):
        import torch

        self.config = config or HFPolicyConfig()
        self.tokenizer = tokenizer
        self.device = torch.device(pick_device(self.config.device))
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
        self._obs_cache: dict[tuple[str, bool], list[int]] = {}
        self._prompt_cache: dict[str, list[int]] = {}
        base = self._render(_DUMMY, add_generation_prompt=False)
        cut = base.rindex(_MARK) + len(_MARK)
        self._dummy_text = base
        self._after_action = base[cut:]  # e.g. "<|im_end|>\n": the template's end of an assistant turn
        self._stop_text = tokenizer.decode([int(tokenizer.eos_token_id)])

    @classmethod
    def from_config(cls, config: HFPolicyConfig) -> HFPolicy:
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

    # ----- rendering ----------------------------------------------------------------------------------
    def _render(
        self, messages: Sequence[Message], add_generation_prompt: bool, tools: list[dict[str, Any]] | None = None
    ) -> str:
        kwargs: dict[str, Any] = {"tokenize": False, "add_generation_prompt": add_generation_prompt}
        if tools and self.config.include_tools:
            kwargs["tools"] = tools
        return str(self.tokenizer.apply_chat_template(list(messages), **kwargs))

    def _encode_text(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def initial_messages(self, observation: str) -> list[Message]:
        messages: list[Message] = []
        if self.config.system_prompt is not None:
            messages.append({"role": "system", "content": self.config.system_prompt})
        messages.append({"role": "user", "content": observation})
        return messages

    def encode_prompt(self, messages: Sequence[Message], tools: list[dict[str, Any]] | None = None) -> list[int]:
        import json

        key = json.dumps([messages, tools if self.config.include_tools else None], sort_keys=True)
        cached = self._prompt_cache.get(key)
        if cached is None:
            text = self._render(messages, add_generation_prompt=True, tools=tools) + self.config.action_prefix
            cached = self._encode_text(text)
            if len(self._prompt_cache) > 4096:
                self._prompt_cache.clear()
            self._prompt_cache[key] = cached
        return list(cached)

    def encode_observation(self, text: str, action_stopped: bool) -> list[int]:
        key = (text, action_stopped)
        cached = self._obs_cache.get(key)
        if cached is not None:
            return list(cached)
        full = self._render([*_DUMMY, {"role": "user", "content": text}], add_generation_prompt=True)
        if not full.startswith(self._dummy_text):
            raise ValueError("the chat template re-renders earlier turns; token-in/token-out needs a stable prefix")
        tail = self._after_action
        if action_stopped and tail.lstrip().startswith(self._stop_text):
            tail = tail.lstrip()[len(self._stop_text) :]
        ids = self._encode_text(tail + full[len(self._dummy_text) :] + self.config.action_prefix)
        if len(self._obs_cache) < 100_000:
            self._obs_cache[key] = ids
        return ids

    # ----- sampling -----------------------------------------------------------------------------------
    def _autocast(self) -> Any:
        import contextlib

        import torch

        if self.device.type == "cuda" and self.config.bf16:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def left_pad(self, contexts: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        width = max(len(c) for c in contexts)
        rows = [[self.pad_id] * (width - len(c)) + list(c) for c in contexts]
        masks = [[0] * (width - len(c)) + [1] * len(c) for c in contexts]
        return (
            torch.tensor(rows, dtype=torch.long, device=self.device),
            torch.tensor(masks, dtype=torch.long, device=self.device),
        )

    def generation_kwargs(self) -> dict[str, Any]:
        greedy = self.config.temperature == 0.0
        kwargs: dict[str, Any] = {
            "max_new_tokens": self.config.max_new_tokens,
            "do_sample": not greedy,
            "eos_token_id": self.stop_ids,
            "pad_token_id": self.pad_id,
        }
        if not greedy:  # plain temperature sampling: turn off the model's own top-k/top-p defaults
            kwargs.update(temperature=self.config.temperature, top_k=0, top_p=1.0)
        return kwargs

    def sample(self, contexts: Sequence[Sequence[int]]) -> list[ActionSample]:
        """Left-pad, `generate` with plain temperature sampling, cut each row after its first stop token."""
        import torch

        if not contexts:
            return []
        ids, mask = self.left_pad(contexts)
        self.model.eval()
        with torch.no_grad(), self._autocast():
            out = self.model.generate(
                input_ids=ids,
                attention_mask=mask,
                output_logits=True,
                return_dict_in_generate=True,
                **self.generation_kwargs(),
            )
        new = out.sequences[:, ids.shape[1] :].cpu()
        logits = torch.stack(out.logits, dim=1).float().cpu()  # raw logits, before temperature
        temperature = self.config.temperature or 1.0
        logprobs = torch.log_softmax(logits / temperature, dim=-1).gather(-1, new[..., None])[..., 0]
        is_stop = torch.isin(new, torch.tensor(self.stop_ids))
        stopped = is_stop.any(dim=1)
        ends = torch.where(
            stopped, is_stop.int().argmax(dim=1) + 1, torch.full_like(stopped, new.shape[1], dtype=torch.long)
        )
        kept = [row[:end] for row, end in zip(new.tolist(), ends.tolist(), strict=True)]
        texts = [self.config.action_prefix + t for t in self.tokenizer.batch_decode(kept, skip_special_tokens=True)]
        lp_rows = logprobs.tolist()
        return [
            ActionSample(text=text, token_ids=ids, logprobs=lp_rows[row][: len(ids)], stopped=bool(stop))
            for row, (text, ids, stop) in enumerate(zip(texts, kept, stopped.tolist(), strict=True))
        ]

    def act(
        self, conversations: Sequence[Sequence[Message]], tools: Sequence[list[dict[str, Any]]] | None = None
    ) -> list[ActionSample]:
        contexts = [
            self.encode_prompt(conv, None if tools is None else tools[i]) for i, conv in enumerate(conversations)
        ]
        return self.sample(contexts)
