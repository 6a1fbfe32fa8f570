"""Token-in/token-out under the chat templates of the model families people train. The templates below are
reduced copies with the same structure as the real ones (SmolLM2 and Qwen2.5: ChatML with a default system
message; Qwen3: ChatML that renders a think block only on assistant turns after the last user message; Llama 3:
header blocks; Mistral: [INST] blocks with the system prompt folded into the last user message), over a
byte-level tokenizer so that decoding gives the exact text back."""

import re
from typing import Any

import pytest
import torch

from envgym.agents.policies.chat_encoding import TemplateError
from envgym.agents.policies.hf import HFPolicy, HFPolicyConfig
from envgym.agents.rollout import RolloutConfig, TaskSpec, rollout
from envgym.agents.toy import tiny_model
from envgym.environments.toy import ToyGuessEnv

CHATML = (
    "{% for m in messages %}{% if loop.first and m['role'] != 'system' %}<|im_start|>system\nDEFAULT<|im_end|>\n"
    "{% endif %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
QWEN3 = (
    "{% set ns = namespace(last_user=-1) %}{% for m in messages %}{% if m['role'] == 'user' %}"
    "{% set ns.last_user = loop.index0 %}{% endif %}{% endfor %}"
    "{% for m in messages %}{% if m['role'] == 'assistant' %}{% set content = m['content'] %}"
    "{% set reasoning = '' %}{% if '</think>' in content %}"
    "{% set reasoning = content.split('</think>')[0].split('<think>')[-1].strip('\n') %}"
    "{% set content = content.split('</think>')[-1].lstrip('\n') %}{% endif %}"
    "{% if loop.index0 > ns.last_user %}<|im_start|>assistant\n<think>\n{{ reasoning }}\n</think>\n\n{{ content }}"
    "<|im_end|>\n{% else %}<|im_start|>assistant\n{{ content }}<|im_end|>\n{% endif %}"
    "{% else %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
LLAMA3 = (
    "<|begin_of_text|>{% if messages[0]['role'] != 'system' %}<|start_header_id|>system<|end_header_id|>\n\n"
    "Cutting Knowledge Date: December 2023<|eot_id|>{% endif %}{% for m in messages %}<|start_header_id|>"
    "{{ m['role'] }}<|end_header_id|>\n\n{{ m['content'] | trim }}<|eot_id|>{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)
MISTRAL = (
    "{% if messages[0]['role'] == 'system' %}{% set system = messages[0]['content'] %}"
    "{% set rest = messages[1:] %}{% else %}{% set system = '' %}{% set rest = messages %}{% endif %}<s>"
    "{% for m in rest %}{% if m['role'] == 'user' %}{% if loop.last and system %}[INST] {{ system }}\n\n"
    "{{ m['content'] }}[/INST]{% else %}[INST] {{ m['content'] }}[/INST]{% endif %}"
    "{% else %} {{ m['content'] }}</s>{% endif %}{% endfor %}"
)
FAMILIES: dict[str, tuple[str, list[str], str]] = {
    "smollm2": (CHATML.replace("DEFAULT", "You are SmolLM."), ["<|im_start|>", "<|im_end|>"], "<|im_end|>"),
    "qwen2.5": (CHATML.replace("DEFAULT", "You are Qwen."), ["<|im_start|>", "<|im_end|>"], "<|im_end|>"),
    "qwen3": (QWEN3, ["<|im_start|>", "<|im_end|>", "<think>", "</think>"], "<|im_end|>"),
    "llama3": (LLAMA3, ["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"], "<|eot_id|>"),
    "mistral": (MISTRAL, ["<s>", "</s>", "[INST]", "[/INST]"], "</s>"),
}


def byte_tokenizer(template: str, specials: list[str], eos: str) -> Any:
    """Every byte is a token (no merges), the template's markers are special tokens: decode(encode(x)) == x."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    core = Tokenizer(models.BPE(vocab={c: i for i, c in enumerate(alphabet)}, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    core.decoder = decoders.ByteLevel()
    tok = PreTrainedTokenizerFast(tokenizer_object=core, clean_up_tokenization_spaces=False)
    tok.add_special_tokens({"additional_special_tokens": specials})
    tok.eos_token = eos
    tok.chat_template = template
    return tok


def _policy(family: str, system_prompt: str | None = None) -> HFPolicy:
    tok = byte_tokenizer(*FAMILIES[family])
    cfg = HFPolicyConfig(model="tiny", device="cpu", max_new_tokens=3, system_prompt=system_prompt)
    return HFPolicy(tiny_model(len(tok), seed=1), tok, cfg, name=family)


# (sampled text, the assistant message's content): Mistral's template puts a space before the content, so the
# model samples " 8" after "[/INST]" and the decoded message reads "8".
ACTIONS = {
    "qwen3": [("<think>\nlow\n</think>\n\n8",) * 2, ("<think>\nhigher\n</think>\n\n12",) * 2],
    "mistral": [(" 8", "8"), (" 12", "12")],
}


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("system_prompt", [None, "Reply with a number."])
def test_appended_ids_are_the_conversation_the_template_renders(family, system_prompt):
    if family == "mistral" and system_prompt is not None:
        with pytest.raises(TemplateError, match="system prompt"):
            _policy(family, system_prompt)
        return
    policy = _policy(family, system_prompt)
    tok = policy.tokenizer
    messages = policy.initial_messages("Guess 1..16.")
    context = policy.encode_prompt(messages)
    actions = ACTIONS.get(family, [("8", "8"), ("12", "12")])
    for k, ((action, content), obs) in enumerate(zip(actions, ["higher", "lower"], strict=True)):
        sampled = [*policy.encode_text(action), tok.eos_token_id]  # as sampled: the action and its stop token
        before = list(context)
        context += sampled + policy.encode_observation(obs, action_stopped=True)
        assert context[: len(before)] == before  # append-only: turn k's context is a prefix of turn k+1's
        messages += [{"role": "assistant", "content": content}, {"role": "user", "content": obs}]
        text = tok.decode(context)
        rendered = policy.render(messages, add_generation_prompt=True)
        if family == "qwen3":  # the model keeps seeing its own think blocks; a re-render would drop them
            assert text.count("<think>") == k + 1
            assert re.sub(r"<think>.*?</think>\n\n", "", text, flags=re.S) == rendered
        else:
            assert text == rendered


def test_a_qwen3_style_rollout_runs_past_turn_two():
    policy = _policy("qwen3")
    torch.manual_seed(0)
    episodes = rollout(policy, [ToyGuessEnv() for _ in range(3)], [TaskSpec(seed=s) for s in range(3)],
                       RolloutConfig(max_turns=4))  # fmt: skip
    assert all(len(ep.turns) == 4 and ep.infra_error is None for ep in episodes)
