"""The training forward that encodes the rows' shared prefix once gives the plain forward's log-probs,
entropies and gradients."""

from typing import Any

import pytest
import torch

from envgym.agents.batching import pack_episodes
from envgym.agents.rollout import RolloutConfig, TaskSpec, rollout
from envgym.agents.scoring import action_logprobs
from envgym.agents.shared_prefix import common_prefix_length, shared_prefix_logprobs
from envgym.agents.toy import tiny_policy
from envgym.environments.toy import ToyGuessEnv


def test_common_prefix_length_counts_shared_real_tokens_and_leaves_each_row_a_token():
    ids = torch.tensor([[5, 6, 7, 8, 9], [5, 6, 7, 1, 0], [5, 6, 7, 8, 0]])
    attn = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 1, 0], [1, 1, 1, 1, 0]])
    assert common_prefix_length(ids, attn) == 3
    same = torch.tensor([[5, 6, 7, 0], [5, 6, 7, 8]])
    assert common_prefix_length(same, torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]])) == 2  # row 0 keeps its '7'


def _batch(policy: Any) -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    envs = [ToyGuessEnv() for _ in range(6)]
    episodes = rollout(policy, envs, [TaskSpec(seed=3) for _ in envs], RolloutConfig())
    advantages = [[float(i % 3 - 1)] * len(ep.turns) for i, ep in enumerate(episodes)]
    b = pack_episodes(episodes, advantages, policy.pad_id)
    assert len(set(b["attention_mask"].sum(1).tolist())) > 1  # rows of different lengths: padding is exercised
    return b


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_shared_prefix_forward_matches_the_plain_one(temperature: float):
    policy = tiny_policy(max_new_tokens=3, seed=5, temperature=temperature)
    b = _batch(policy)
    prefix = common_prefix_length(b["input_ids"], b["attention_mask"])
    assert prefix >= 4
    model, m = policy.model, b["label_mask"]
    grads = []
    for shared in (False, True):
        model.zero_grad(set_to_none=True)
        if shared:
            logp, ent = shared_prefix_logprobs(model, b, prefix, temperature)
        else:
            logp, ent = action_logprobs(model, b, temperature)
        ((logp * b["advantages"])[m].sum() + 0.1 * ent[m].sum()).backward()
        grads.append((logp.detach(), ent.detach(), {k: p.grad.clone() for k, p in model.named_parameters()}))
    (lp0, ent0, g0), (lp1, ent1, g1) = grads
    assert torch.allclose(lp0[m], lp1[m], atol=1e-5) and torch.allclose(ent0[m], ent1[m], atol=1e-5)
    assert (lp1[~m] == 0).all()
    for k in g0:
        assert torch.allclose(g0[k], g1[k], atol=1e-5, rtol=1e-4), k
    assert any(float(g.abs().max()) > 1e-3 for g in g1.values())


def test_trainer_steps_are_the_same_with_and_without_prefix_sharing(tmp_path, monkeypatch):
    import envgym.agents.trainer as trainer_module
    from envgym.agents.trainer import TrainConfig, Trainer

    monkeypatch.setattr(trainer_module, "MIN_SHARED_PREFIX", 2)  # the toy prompt is short
    used: list[int] = []
    real = trainer_module.shared_prefix_logprobs
    monkeypatch.setattr(trainer_module, "shared_prefix_logprobs", lambda m, b, p, t: used.append(p) or real(m, b, p, t))
    params = {}
    for share in (False, True):
        cfg = TrainConfig(env_id="toy", steps=1, tasks_per_step=1, group_size=6, record_trajectories=False, lr=1e-2,
                          minibatches=2, share_prefix=share, filter_zero_variance=False, entropy_coef=0.1,
                          policy={"model": "tiny", "max_new_tokens": 3})  # fmt: skip
        policy = tiny_policy(max_new_tokens=3, seed=5)
        before = torch.cat([p.detach().flatten() for p in policy.model.parameters()])
        trainer = Trainer(cfg, tmp_path / str(share), policy=policy, env_factory=ToyGuessEnv)
        torch.manual_seed(2)
        trainer.train_step()
        params[share] = torch.cat([p.detach().flatten() for p in policy.model.parameters()])
    assert used  # the shared path ran
    assert float((params[True] - before).abs().max()) > 1e-3  # and the step moved the weights
    # Adam divides by the gradient's own scale, so rounding-level gradient differences show at ~1e-5 (lr 1e-2)
    assert torch.allclose(params[False], params[True], atol=1e-4)
