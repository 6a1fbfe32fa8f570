"""The loss sees sampled action tokens only, at the right (shifted) label positions."""

import torch

from envgym.agents.batching import pack_episodes
from envgym.agents.objective import policy_loss_sum
from envgym.agents.rollout import RolloutConfig, TaskSpec, rollout
from envgym.agents.scoring import label_logprobs
from envgym.agents.toy import ToyGuessEnv, tiny_policy


def _batch():
    policy = tiny_policy(max_new_tokens=3, seed=0)  # role-marker template: obs/template tokens in between
    envs = [ToyGuessEnv() for _ in range(4)]
    tasks = [TaskSpec(seed=s, group=0) for s in range(4)]
    episodes = rollout(policy, envs, tasks, RolloutConfig())
    adv = [[0.7 - 0.3 * i] * len(ep.turns) for i, ep in enumerate(episodes)]
    return policy, episodes, pack_episodes(episodes, adv, policy.pad_id)


def _loss(logits: torch.Tensor, batch: dict) -> torch.Tensor:
    logp, _ = label_logprobs(logits, batch["labels"], batch["label_mask"])
    old = torch.full_like(logp, -3.0)  # fixed old log-probs: ratio != 1, the clip path is exercised too
    loss, _ = policy_loss_sum(logp, old, batch["advantages"], batch["label_mask"])
    return loss


def test_label_mask_marks_exactly_the_sampled_tokens():
    _policy, episodes, batch = _batch()
    for b, ep in enumerate(episodes):
        sampled = [tok for t in ep.turns for tok in t.action_ids]
        assert batch["labels"][b][batch["label_mask"][b]].tolist() == sampled
        ids, mask, _ = ep.flatten()
        assert sum(mask) == len(sampled) and not mask[0]
        assert torch.equal(batch["label_mask"][b, : len(ids) - 1], torch.tensor(mask[1:]))


def test_loss_ignores_non_action_positions_and_sees_action_ones():
    policy, _episodes, batch = _batch()
    torch.manual_seed(0)
    vocab = len(policy.tokenizer)
    logits = torch.randn(*batch["input_ids"].shape, vocab)
    base = _loss(logits, batch)
    # logits at position t predict token t+1: positions whose *next* token is not an action must not matter,
    # including the position of an action token itself (the off-by-one case) and padding.
    predicts_action = torch.zeros_like(batch["input_ids"], dtype=torch.bool)
    predicts_action[:, :-1] = batch["label_mask"]
    noisy = logits.clone()
    noisy[~predicts_action] = torch.randn_like(noisy[~predicts_action]) * 100
    assert torch.equal(_loss(noisy, batch), base)
    # changing one action-predicting position changes the loss
    b, t = predicts_action.nonzero()[0].tolist()
    label = batch["input_ids"][b, t + 1]
    bumped = logits.clone()
    bumped[b, t, label] += 3.0
    assert not torch.equal(_loss(bumped, batch), base)


def test_policy_loss_values_outside_mask_never_matter():
    torch.manual_seed(0)
    mask = torch.tensor([[False, True, True, False]])
    logp = torch.randn(1, 4)
    adv = torch.full((1, 4), 0.5)
    base, _ = policy_loss_sum(logp, logp - 0.1, adv, mask)
    junk = logp.clone()
    junk[~mask] = float("nan")
    old = torch.where(mask, logp - 0.1, torch.tensor(float("inf")))
    other, _ = policy_loss_sum(junk, old, adv * torch.tensor([[9.0, 1.0, 1.0, -9.0]]), mask)
    assert torch.equal(base, other)
