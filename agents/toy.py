"""Tiny worlds for testing the learner without downloads: a word-level tokenizer with a chat template, a
random-init 2-layer Llama, and toy text envs (bandit, guess-the-number with h/l feedback, code-breaking).

Why: learning tests need a model that trains in seconds on one CPU thread and envs whose optimal and
feedback-free ceilings are known exactly (NOTES-RL §12), while still going through the real `TextEnv`
contract, the real `HFPolicy` and the real rollout.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from envgym.actions import Tool, ToolCall
from envgym.core import Feedback, StepOutcome, TextEnv

SPECIALS = ["<pad>", "<unk>", "<eot>", "<system>", "<user>", "<assistant>"]
SYMBOLS = ["A", "B", "C", "D"]
GUESS_WORDS = ["go", "h", "l", "=", "?", "x"]
CODE_WORDS = ["go", "?", "x", "+", "-", *SYMBOLS]  # E3: no numbers, so random actions are often well-formed
WORDS = [*GUESS_WORDS, "+", "-", *[f"c{i}" for i in range(8)], *SYMBOLS]
CHAT_TEMPLATE = (
    "{% for m in messages %}<{{ m['role'] }}> {{ m['content'] }} <eot> {% endfor %}"
    "{% if add_generation_prompt %}<assistant> {% endif %}"
)
# Contents only, no role markers: the shortest contexts (learning tests are compute-bound on sequence length).
COMPACT_TEMPLATE = "{% for m in messages %}{{ m['content'] }} {% endfor %}"


def tiny_vocab(max_number: int = 16, words: list[str] | None = None) -> list[str]:
    return SPECIALS + [str(i) for i in range(1, max_number + 1)] + (WORDS if words is None else words)


def tiny_tokenizer(max_number: int = 16, compact: bool = False, words: list[str] | None = None) -> Any:
    """A whitespace word-level tokenizer over numbers 1..max_number and a few words (default: all toys')."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(tiny_vocab(max_number, words))}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core, eos_token="<eot>", pad_token="<pad>", unk_token="<unk>", padding_side="left"
    )
    tok.chat_template = COMPACT_TEMPLATE if compact else CHAT_TEMPLATE
    return tok


def tiny_model(vocab_size: int, seed: int = 0, layers: int = 2, hidden: int = 64, heads: int = 4) -> Any:
    """A random-init LlamaForCausalLM small enough to train in seconds on one CPU thread."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=512,
        tie_word_embeddings=False,
        pad_token_id=0,
        eos_token_id=2,
        bos_token_id=None,
    )
    config._attn_implementation = "eager"  # faster than sdpa at these sizes on CPU
    return LlamaForCausalLM(config)


def tiny_policy(
    max_new_tokens: int = 1,
    seed: int = 0,
    temperature: float = 1.0,
    compact: bool = False,
    words: list[str] | None = None,
    max_number: int = 16,
    **model_kwargs: Any,
) -> Any:
    """An `HFPolicy` on CPU over the tiny tokenizer and a fresh tiny model."""
    from envgym.agents.policies.hf import HFPolicy, HFPolicyConfig

    tok = tiny_tokenizer(max_number, compact=compact, words=words)
    cfg = HFPolicyConfig(model="tiny", device="cpu", max_new_tokens=max_new_tokens, temperature=temperature)
    return HFPolicy(tiny_model(len(tok), seed=seed, **model_kwargs), tok, cfg, name="tiny")


class _Number(Tool):
    """Answer with a number."""

    name: ClassVar[str] = "answer"
    number: int = Field(description="the number")

    @classmethod
    @functools.cache
    def schema_dict(cls) -> dict[str, Any]:  # cached: pydantic builds it in ~1 ms, on every reset
        return super().schema_dict()


class _ToyEnv(TextEnv):
    """Shared by the toy envs: compact one-token observations so contexts stay short."""

    tools: ClassVar[tuple[type[Tool], ...]] = (_Number,)
    text_form_help: ClassVar[str] = "a bare number"
    family: ClassVar[str] = "toy"

    def _text_form(self, text: str) -> ToolCall | None:
        word = text.strip()
        return ToolCall(name="answer", arguments={"number": int(word)}) if word.isdigit() else None

    def step(self, action: str) -> tuple[str, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = super().step(action)
        obs = "x" if info["feedback"].get("error") else self._compact  # malformed: one token, not a sentence
        self.last_observation = obs
        return obs, reward, terminated, truncated, info

    _compact: str = "x"


class ToyBanditEnv(_ToyEnv):
    """E1: one of 8 context tokens; the right answer is a fixed permutation of the context (single turn)."""

    env_id: ClassVar[str] = "envgym/ToyBandit-v0"
    PERM: ClassVar[tuple[int, ...]] = (5, 12, 3, 16, 9, 1, 14, 7)

    def _generate(self, difficulty: float, params: dict[str, Any]) -> tuple[str, dict[str, Any], int]:
        self.context = int(self.task_rng.integers(0, 8))
        return f"c{self.context}", {"context": self.context}, 1

    def _apply(self, call: _Number) -> StepOutcome:  # type: ignore[override]
        ok = call.number == self.PERM[self.context]
        self._compact = "=" if ok else "x"
        return StepOutcome(
            feedback=Feedback(summary="right" if ok else "wrong"), reward=float(ok), terminated=True, solved=ok
        )


class ToyGuessEnv(_ToyEnv):
    """E2: a hidden number in 1..n, k guesses, feedback "h" (higher), "l" (lower) or "=" (solved)."""

    env_id: ClassVar[str] = "envgym/ToyGuess-v0"

    def __init__(self, n: int = 16, k: int = 5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.n, self.k = n, k

    def _generate(self, difficulty: float, params: dict[str, Any]) -> tuple[str, dict[str, Any], int]:
        self.secret = int(self.task_rng.integers(1, self.n + 1))
        return "go", {"n": self.n, "k": self.k}, self.k

    def _apply(self, call: _Number) -> StepOutcome:  # type: ignore[override]
        if call.number == self.secret:
            self._compact = "="
            return StepOutcome(feedback=Feedback(summary="correct"), reward=1.0, terminated=True, solved=True)
        self._compact = "h" if self.secret > call.number else "l"
        return StepOutcome(feedback=Feedback(summary="higher" if self._compact == "h" else "lower"))

    def oracle_action(self) -> str:
        return "1"

    def random_action(self, rng: np.random.Generator) -> str:
        return str(int(rng.integers(1, self.n + 1)))


class ToyCodeEnv(_ToyEnv):
    """E3: a hidden code of L symbols over A-D; each turn write L symbols, feedback "+"/"-" per position.

    Difficulty maps to L in 1..6 (L = 1 + round(5·difficulty)); K = 6 turns. The action's first L words
    must be symbols (the guess; later words are ignored), else it is malformed ("x"). The feedback echoes
    the guess with a mark after each symbol ("A + C -"), so "keep the '+' symbols" is a copy from the last
    observation at every L, the strategy the curriculum is meant to transfer.
    """

    env_id: ClassVar[str] = "envgym/ToyCode-v0"

    def _generate(self, difficulty: float, params: dict[str, Any]) -> tuple[str, dict[str, Any], int]:
        self.length = int(params.get("length", 1 + round(5 * difficulty)))
        self.code = [SYMBOLS[int(i)] for i in self.task_rng.integers(0, 4, size=self.length)]
        return "go " + " ".join(["?"] * self.length), {"length": self.length}, 6

    def step(self, action: str) -> tuple[str, float, bool, bool, dict]:
        guess = action.split()[: self.length]
        if len(guess) < self.length or any(g not in SYMBOLS for g in guess):
            return super().step("not a code")
        marks = ["+" if g == c else "-" for g, c in zip(guess, self.code, strict=True)]
        self._marks = " ".join(f"{g} {m}" for g, m in zip(guess, marks, strict=True))
        return super().step(str(int("-" not in marks)))

    def _apply(self, call: _Number) -> StepOutcome:  # type: ignore[override]
        self._compact = self._marks
        if call.number == 1:
            return StepOutcome(feedback=Feedback(summary="cracked"), reward=1.0, terminated=True, solved=True)
        return StepOutcome(feedback=Feedback(summary=self._marks))


TOY_ENVS = {"envgym/ToyBandit-v0": ToyBanditEnv, "envgym/ToyGuess-v0": ToyGuessEnv, "envgym/ToyCode-v0": ToyCodeEnv}


def register_toy_envs() -> None:
    """Make the toy envs available to `gym.make` (not listed in the main registry: they are test worlds)."""
    import gymnasium as gym

    for env_id, cls in TOY_ENVS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=f"{cls.__module__}:{cls.__name__}")
