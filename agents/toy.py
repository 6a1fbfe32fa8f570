"""A tiny agent for testing the learner without downloads: a word-level tokenizer with a chat template and a
random-init 2-layer Llama behind the real `HFPolicy`.

Why: learning tests need a model that trains in seconds on one CPU thread; the toy envs it plays (whose
optimal and feedback-free ceilings are known exactly, NOTES-RL §12) live with the other envs in
`envgym.environments.toy` and are re-exported here for older imports.
"""

from __future__ import annotations

from typing import Any

from envgym.environments.toy import SYMBOLS, ToyBanditEnv, ToyCodeEnv, ToyGuessEnv
from envgym.extras import needs_extra

__all__ = ["ToyBanditEnv", "ToyCodeEnv", "ToyGuessEnv", "tiny_model", "tiny_policy", "tiny_tokenizer"]

SPECIALS = ["<pad>", "<unk>", "<eot>", "<system>", "<user>", "<assistant>"]
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
    with needs_extra("train", also=("tokenizers",)):
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
    with needs_extra("train"):
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
