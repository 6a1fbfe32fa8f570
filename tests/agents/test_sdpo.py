"""Feedback-conditioned self-distillation (NOTES-RL §11.6): off means the old loss bit for bit; on, the per-token
advantage is log q − log π of the sampled ids (q: the same model behind a feedback prefix, no gradient)."""

import copy
from typing import Any

import pytest
import torch

from envgym.agents.batching import pack_episodes
from envgym.agents.objective import policy_loss_sum
from envgym.agents.rollout import RolloutConfig, TaskSpec, TokenEpisode, rollout
from envgym.agents.scoring import action_logprobs
from envgym.agents.self_distillation import SelfDistillation, sdpo_feedback_text, teacher_episodes
from envgym.agents.toy import ToyGuessEnv, tiny_policy
from envgym.agents.trainer import TrainConfig, Trainer

GROUP = 6


def _setup(tmp_path, **kw: Any) -> tuple[Trainer, list[TokenEpisode], list[list[float]]]:
    """A tiny policy (role-marker template: template tokens between turns), two groups of guess-the-number
    episodes with multi-token actions, and per-turn advantages that differ across episodes."""
    policy = tiny_policy(max_new_tokens=2, seed=3)
    base = dict(env_id="toy", steps=1, tasks_per_step=1, group_size=1, lr=1e-3, record_trajectories=False,
                filter_zero_variance=False, max_grad_norm=1e9, micro_batch_size=64)  # fmt: skip
    base.update(kw)
    trainer = Trainer(TrainConfig(**base), tmp_path, policy=policy, env_factory=ToyGuessEnv)
    torch.manual_seed(11)
    tasks = [TaskSpec(seed=100 + g, group=g) for g in range(2) for _ in range(GROUP)]
    episodes = rollout(policy, [ToyGuessEnv() for _ in tasks], tasks, RolloutConfig())
    if not any(ep.success for ep in episodes[:GROUP]):  # make sure group 0 has a successful sibling
        episodes[1].outcome.success = True
    per_turn = [[0.9 - 0.25 * i] * len(ep.turns) for i, ep in enumerate(episodes)]
    return trainer, episodes, per_turn


def _feedback_ids(tokenizer: Any, text: str) -> list[int]:
    rendered = tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False)
    return list(tokenizer(rendered, add_special_tokens=False)["input_ids"])


def _action_logprobs(model: Any, ids: list[int], mask: list[bool]) -> torch.Tensor:
    """By hand, one unpadded sequence: log p(ids[j] | ids[:j]) at every action position j (keeps the graph)."""
    logits = model(input_ids=torch.tensor([ids])).logits[0]
    logp = torch.log_softmax(logits.float(), dim=-1)
    return torch.stack([logp[j - 1, ids[j]] for j in range(len(ids)) if mask[j]])


def _hand_sd(model: Any, tokenizer: Any, episodes: list[TokenEpisode]) -> list[torch.Tensor]:
    """A_SD per episode, built from the recorded feedback without the trainer's helpers."""
    out = []
    for ep in episodes:
        assert ep.record is not None
        text = f"Feedback on an earlier attempt: {ep.record.turns[-1].observation}"
        sib = next((s for s in episodes if s is not ep and s.task.group == ep.task.group and s.success), None)
        if sib is not None:
            assert sib.record is not None
            text += " A successful attempt: " + " ".join(t.action for t in sib.record.turns)
        prefix = _feedback_ids(tokenizer, text)
        ids, mask, _ = ep.flatten()
        with torch.no_grad():
            q = _action_logprobs(model, prefix + ids, [False] * len(prefix) + mask)
            p = _action_logprobs(model, ids, mask)
        out.append(q - p)
    return out


def _grads(model: Any) -> list[torch.Tensor]:
    return [p.grad.detach().clone() for p in model.parameters() if p.requires_grad]


def test_off_equals_the_existing_loss_bit_for_bit(tmp_path):
    trainer, episodes, per_turn = _setup(tmp_path)
    assert trainer.config.sdpo_weight == 0.0
    ref = copy.deepcopy(trainer.model).train()
    # the existing loss, assembled from its public pieces (one micro-batch, on-policy: ρ ≡ 1)
    b = pack_episodes(episodes, per_turn, trainer.policy.pad_id)
    logp, _ = action_logprobs(ref, b)  # the trainer's scoring forward (logits at action rows only)
    loss_sum, _ = policy_loss_sum(logp, logp.detach(), b["advantages"], b["label_mask"])
    loss = loss_sum / (len(episodes) * trainer.config.loss_tokens_per_episode)
    loss.backward()
    stats = trainer.learn(episodes, per_turn, n_generated=len(episodes))
    assert stats["loss"] == float(loss.detach())
    assert "sdpo_adv" not in stats
    for got, want in zip(_grads(trainer.model), _grads(ref), strict=True):
        assert torch.equal(got, want)


def test_off_never_builds_a_teacher(tmp_path, monkeypatch):
    trainer, episodes, per_turn = _setup(tmp_path, ppo_epochs=2, minibatches=2)

    def boom(*_a: Any, **_k: Any) -> Any:
        raise AssertionError("teacher work with sdpo_weight=0")

    assert trainer.sdpo is None
    monkeypatch.setattr(SelfDistillation, "prefix_ids", boom)
    monkeypatch.setattr(SelfDistillation, "teacher_logp", boom)
    trainer.learn(episodes, per_turn, n_generated=len(episodes))


def test_feedback_text_uses_final_observation_and_a_successful_sibling(tmp_path):
    _trainer, episodes, _ = _setup(tmp_path)
    group = episodes[:GROUP]
    failed = next(ep for ep in group if not ep.success)
    winner = next(ep for ep in group if ep.success)
    assert failed.record is not None and winner.record is not None
    text = sdpo_feedback_text(failed, group, "F: {feedback}", " S: {actions}")
    assert text == f"F: {failed.record.turns[-1].observation} S: " + " ".join(t.action for t in winner.record.turns)
    assert sdpo_feedback_text(failed, group, "F: {feedback}", None) == f"F: {failed.record.turns[-1].observation}"
    alone = [ep for ep in group if not ep.success]
    assert " S: " not in sdpo_feedback_text(failed, alone, "F: {feedback}", " S: {actions}")


def test_teacher_keeps_the_sampled_ids_and_shifts_the_mask(tmp_path):
    trainer, episodes, _ = _setup(tmp_path, sdpo_weight=0.5)
    prefixes = trainer.sdpo.prefix_ids(episodes)
    for ep, teach, prefix in zip(episodes, teacher_episodes(episodes, prefixes), prefixes, strict=True):
        assert len(prefix) > 0
        ids, mask, _ = ep.flatten()
        t_ids, t_mask, _ = teach.flatten()
        assert t_ids == prefix + ids and t_mask == [False] * len(prefix) + mask
        assert teach.turns is ep.turns  # the sampled action ids themselves, not a re-encoding


def test_sd_advantage_equals_teacher_minus_student_by_hand(tmp_path):
    trainer, episodes, _ = _setup(tmp_path, sdpo_weight=0.5)
    got = trainer.self_distillation_advantages(episodes)
    want = _hand_sd(trainer.model, trainer.policy.tokenizer, episodes)
    assert [len(g) for g in got] == [ep.action_tokens for ep in episodes]
    for g, w in zip(got, want, strict=True):
        assert torch.allclose(torch.tensor(g), w, atol=1e-5), (g, w)
    assert max(abs(x) for g in got for x in g) > 1e-3  # the feedback prefix really changes the scores


@pytest.mark.parametrize("weight", [0.5, 1.0])
def test_gradient_flows_only_through_the_student(tmp_path, weight):
    trainer, episodes, per_turn = _setup(tmp_path, sdpo_weight=weight)
    ref = copy.deepcopy(trainer.model).train()
    sd = _hand_sd(ref, trainer.policy.tokenizer, episodes)
    denominator = len(episodes) * trainer.config.loss_tokens_per_episode
    # by hand: −Σ A·log π with A = (1−w)·A_traj + w·(log q − log π) held constant; `leak` also lets gradient
    # through log q and the log π inside A (what a missing stop-gradient would do): it must not match
    results = []
    for leak in (False, True):
        ref.zero_grad(set_to_none=True)
        loss = torch.zeros(())
        for ep, adv, sd_ep in zip(episodes, per_turn, sd, strict=True):
            ids, mask, turn_idx = ep.flatten()
            logp = _action_logprobs(ref, ids, mask)
            traj = torch.tensor([adv[k] for k, m in zip(turn_idx, mask, strict=True) if m])
            if leak:
                prefix = trainer.sdpo.prefix_ids([ep, *[s for s in episodes if s is not ep]])[0]
                sd_ep = _action_logprobs(ref, prefix + ids, [False] * len(prefix) + mask) - logp
            loss = loss - (((1 - weight) * traj + weight * sd_ep) * logp).sum()
        (loss / denominator).backward()
        results.append(_grads(ref))
    want, wrong_grads = results
    stats = trainer.learn(episodes, per_turn, n_generated=len(episodes))
    got = _grads(trainer.model)
    assert stats["sdpo_abs"] > 0
    assert all(torch.allclose(g, w, rtol=1e-4, atol=1e-7) for g, w in zip(got, want, strict=True))
    assert not all(torch.allclose(g, w, rtol=1e-4, atol=1e-7) for g, w in zip(got, wrong_grads, strict=True))


def test_zero_when_teacher_context_equals_student_context(tmp_path, monkeypatch):
    trainer, episodes, per_turn = _setup(tmp_path, sdpo_weight=0.5)
    monkeypatch.setattr(trainer.sdpo, "prefix_ids", lambda eps: [[] for _ in eps])
    assert all(x == 0.0 for g in trainer.self_distillation_advantages(episodes) for x in g)
    off, _, _ = _setup(tmp_path / "off")  # same seeds: same weights, same episodes
    off.learn(episodes, per_turn, n_generated=len(episodes))
    stats = trainer.learn(episodes, per_turn, n_generated=len(episodes))
    assert stats["sdpo_abs"] == 0.0
    # only the (1 − w)·A_traj part is left: half the gradient of the plain loss
    for got, plain in zip(_grads(trainer.model), _grads(off.model), strict=True):
        assert torch.allclose(got, 0.5 * plain, rtol=1e-5, atol=1e-8)


def test_train_step_with_sdpo_and_ppo_epochs(tmp_path):
    cfg = dict(env_id="toy", steps=2, tasks_per_step=2, group_size=4, lr=1e-3, record_trajectories=False,
               sdpo_weight=0.3, ppo_epochs=2, minibatches=2, micro_batch_size=2, kl_beta=0.05,
               filter_zero_variance=False)  # fmt: skip
    trainer = Trainer(TrainConfig(**cfg), tmp_path, policy=tiny_policy(max_new_tokens=2), env_factory=ToyGuessEnv)
    m = trainer.train_step()
    assert m["sdpo_abs"] > 0 and abs(m["sdpo_adv"]) <= m["sdpo_abs"]
    assert m["logprob_gap"] < 1e-4
