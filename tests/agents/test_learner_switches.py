"""Trainer behaviour that the E4 post-mortem asked for: entropy that stays measurable during collapse, a clip
fraction that counts only zeroed gradients, resumable runs without duplicate records, dynamic sampling, an
entropy bonus and truncated importance sampling — each a switch, each checked on a tiny model."""

import json
import threading
from typing import Any, ClassVar

import numpy as np
import pytest
import torch

from envgym.agents.advantages import ESTIMATORS
from envgym.agents.objective import policy_loss_sum
from envgym.agents.rollout import RolloutConfig, TaskSpec, rollout
from envgym.agents.toy import tiny_policy
from envgym.agents.trainer import TrainConfig, Trainer
from envgym.environments.toy import ToyGuessEnv
from envgym.trajectory import read_episodes


def _config(**kw: Any) -> TrainConfig:
    base: dict[str, Any] = dict(env_id="toy", steps=2, tasks_per_step=2, group_size=4, lr=1e-3, rollout=RolloutConfig())
    base.update(kw)
    return TrainConfig(**base)


def _trainer(tmp_path: Any, seed: int = 0, **kw: Any) -> Trainer:
    return Trainer(_config(**kw), tmp_path, policy=tiny_policy(max_new_tokens=2, seed=seed), env_factory=ToyGuessEnv)


def test_entropy_is_measured_from_the_sampler_even_when_nothing_trains(tmp_path):
    trainer = _trainer(tmp_path, group_size=1, record_trajectories=False)  # groups of one: zero variance
    m = trainer.train_step()
    assert m["zero_var_frac"] == 1.0 and m["trained_episodes"] == 0
    assert np.isfinite(m["entropy"]) and m["entropy"] > 0.5  # a random tiny model is far from collapsed


def test_clip_fraction_counts_only_tokens_whose_gradient_was_zeroed():
    ratio = torch.tensor([[1.5, 1.5, 0.5, 0.5, 1.0]])
    adv = torch.tensor([[1.0, -1.0, 1.0, -1.0, 1.0]])
    old = torch.zeros_like(ratio)
    logp = torch.log(ratio).requires_grad_(True)
    mask = torch.ones_like(ratio, dtype=torch.bool)
    loss, stats = policy_loss_sum(logp, old, adv, mask, clip_low=0.2, clip_high=0.28)
    loss.backward()
    assert logp.grad is not None
    zeroed = logp.grad == 0
    assert torch.equal(stats["clipped"], zeroed) and int(stats["clipped"].sum()) == 2


def test_resume_after_a_crash_keeps_one_record_per_episode(tmp_path):
    cfg = dict(steps=3, checkpoint_every=2)
    first = _trainer(tmp_path, **cfg)
    for _ in range(3):  # step 3 runs past the step-2 checkpoint, then the process "dies"
        first.train_step()
    assert first.writer is not None
    first.writer.close()
    resumed = _trainer(tmp_path, seed=9, steps=4)
    assert resumed.step == 2
    resumed.train()
    episodes = list(read_episodes(tmp_path / "trajectories.jsonl"))
    assert len(episodes) == 4 * 8 and len({e.episode_id for e in episodes}) == 32
    steps = [json.loads(x)["step"] for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]


def test_checkpoints_carry_every_rng_and_are_on_by_default(tmp_path):
    assert TrainConfig().checkpoint_every > 0
    trainer = _trainer(tmp_path, steps=1, record_trajectories=False)
    trainer.train()
    state = torch.load(tmp_path / "checkpoint" / "state.pt", weights_only=False)
    assert {"torch_rng", "cuda_rng", "python_rng", "numpy_rng", "trajectory_bytes"} <= set(state)


def test_dynamic_sampling_fills_the_batch_with_informative_groups(tmp_path):
    trainer = _trainer(tmp_path, tasks_per_step=3, group_size=4, dynamic_sampling=True, dynamic_max_rounds=6,
                       filter_zero_variance=True, record_trajectories=False)  # fmt: skip
    m = trainer.train_step()
    assert 1 <= m["sampling_rounds"] <= 6 and m["groups_sampled"] == 3 * m["sampling_rounds"]
    kept = min(3, int(m["groups_informative"]))
    assert m["trained_episodes"] == 4 * kept
    if m["sampling_rounds"] < 6:  # stopped early: because the batch was full
        assert m["groups_informative"] >= 3


def test_dynamic_sampling_is_bounded(tmp_path):
    trainer = _trainer(tmp_path, group_size=1, dynamic_sampling=True, dynamic_max_rounds=3, record_trajectories=False)
    m = trainer.train_step()
    assert m["sampling_rounds"] == 3 and m["groups_informative"] == 0 and m["trained_episodes"] == 0


def _learn_once(tmp_path: Any, episodes: list, per_turn: list, **kw: Any) -> tuple[dict[str, float], list]:
    trainer = _trainer(tmp_path, filter_zero_variance=False, max_grad_norm=1e9, record_trajectories=False, **kw)
    stats = trainer.learn(episodes, per_turn, n_generated=len(episodes))
    return stats, [p.detach().clone() for p in trainer.model.parameters()]


def test_entropy_bonus_raises_the_entropy_of_action_tokens(tmp_path):
    torch.manual_seed(0)
    episodes = rollout(
        tiny_policy(max_new_tokens=2), [ToyGuessEnv() for _ in range(4)], [TaskSpec(seed=s) for s in range(4)]
    )
    zero = [[0.0] * len(ep.turns) for ep in episodes]
    _, moved = _learn_once(tmp_path / "a", episodes, zero, lr=1e-2)  # no advantage, no bonus: no update
    _, start = _learn_once(tmp_path / "b", episodes, zero, lr=0.0)
    assert all(torch.equal(a, b) for a, b in zip(moved, start, strict=True))
    trainer = _trainer(tmp_path / "c", filter_zero_variance=False, record_trajectories=False, lr=1e-3,
                       entropy_coef=1.0)  # fmt: skip
    with torch.no_grad():  # a peaked (low-entropy) policy, as after a collapse
        trainer.model.get_output_embeddings().weight.mul_(8.0)
    curve = [trainer.learn(episodes, zero, n_generated=len(episodes))["policy_entropy"] for _ in range(5)]
    assert curve[-1] > curve[0] + 0.05, curve


def test_truncated_importance_sampling_weights_by_the_capped_ratio(tmp_path):
    torch.manual_seed(1)
    episodes = rollout(
        tiny_policy(max_new_tokens=2), [ToyGuessEnv() for _ in range(4)], [TaskSpec(seed=s) for s in range(4)]
    )
    per_turn = [[1.0 - 0.5 * i] * len(ep.turns) for i, ep in enumerate(episodes)]
    plain, w_plain = _learn_once(tmp_path / "a", episodes, per_turn, lr=1e-3)
    for ep in episodes:  # pretend another engine sampled them, with half the probability: π_old/π_s = 2
        for t in ep.turns:
            t.action_logprobs = [lp - float(np.log(2.0)) for lp in t.action_logprobs]
    capped, w_capped = _learn_once(tmp_path / "b", episodes, per_turn, lr=1e-3, tis_cap=1.5)
    assert capped["tis_weight"] == pytest.approx(1.5, abs=1e-4) and capped["tis_capped_frac"] == 1.0
    assert capped["loss"] == pytest.approx(1.5 * plain["loss"], rel=1e-4)
    assert capped["logprob_gap"] == pytest.approx(np.log(2.0), abs=1e-4)


def test_a_new_estimator_is_one_table_entry(monkeypatch, tmp_path):
    monkeypatch.setitem(ESTIMATORS, "all-ones", lambda batch: [[1.0] * len(t) for t in batch.turn_rewards])
    trainer = _trainer(tmp_path, advantage="all-ones", record_trajectories=False)
    per_turn, _, _ = trainer.advantages(trainer.usable(trainer.collect()[1]))
    assert per_turn and all(a == 1.0 for t in per_turn for a in t)
    with pytest.raises(ValueError, match="unknown advantage estimator"):
        TrainConfig(advantage="nope")


def test_the_packaged_job_updates_more_than_once_per_batch_so_clip_higher_engages():
    from envgym.agents.cli import default_config_path

    cfg = TrainConfig.from_yaml(default_config_path())
    assert cfg.ppo_epochs * cfg.minibatches > 1 and cfg.clip_high > cfg.clip_low


class _SlowEnv(ToyGuessEnv):
    """A step waits (up to 2 s) for another env to be inside `step` at the same time, and records the most
    envs it ever saw stepping at once: above 1 only if a turn's envs really step concurrently."""

    inside: ClassVar[int] = 0
    most: ClassVar[int] = 0
    company: ClassVar[threading.Condition] = threading.Condition()

    def step(self, action: str) -> Any:
        cls = type(self)
        with cls.company:
            cls.inside += 1
            cls.most = max(cls.most, cls.inside)
            cls.company.notify_all()
            cls.company.wait_for(lambda: cls.inside > 1, timeout=2)
            cls.inside -= 1
        return super().step(action)


def test_a_turn_steps_slow_envs_concurrently():
    episodes = rollout(tiny_policy(max_new_tokens=2), [_SlowEnv() for _ in range(5)],
                       [TaskSpec(seed=0) for _ in range(5)], RolloutConfig(max_turns=2))  # fmt: skip
    assert all(ep.infra_error is None and ep.turns for ep in episodes)
    assert _SlowEnv.most >= 2


def test_gradient_checkpointing_is_a_switch_with_the_same_gradients(tmp_path):
    torch.manual_seed(2)
    episodes = rollout(
        tiny_policy(max_new_tokens=2), [ToyGuessEnv() for _ in range(4)], [TaskSpec(seed=s) for s in range(4)]
    )
    per_turn = [[1.0 - 0.5 * i] * len(ep.turns) for i, ep in enumerate(episodes)]
    grads = []
    for on in (False, True):
        trainer = _trainer(tmp_path / str(on), gradient_checkpointing=on, filter_zero_variance=False, lr=0.0,
                           record_trajectories=False)  # fmt: skip
        flag = getattr(trainer.model, "is_activation_checkpointing", None)
        assert (flag if flag is not None else trainer.model.is_gradient_checkpointing) is on
        trainer.learn(episodes, per_turn, n_generated=len(episodes))
        grads.append([p.grad.clone() for p in trainer.model.parameters() if p.grad is not None])
    assert len(grads[0]) == len(grads[1]) > 0
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(*grads, strict=True))
