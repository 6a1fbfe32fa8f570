"""The trainer end to end on a toy env: metrics, trajectories, infra-error dropping, checkpoint + resume."""

import json
from typing import Any, ClassVar

import pytest

from envgym.agents.rollout import RolloutConfig, TaskSpec, rollout
from envgym.agents.toy import ToyGuessEnv, tiny_policy
from envgym.agents.trainer import TrainConfig, Trainer
from envgym.core import InfraError
from envgym.curriculum import CurriculumConfig
from envgym.trajectory import read_episodes


def _config(**kw: Any) -> TrainConfig:
    base = dict(env_id="toy", steps=3, tasks_per_step=2, group_size=4, lr=1e-3, rollout=RolloutConfig())
    base.update(kw)
    return TrainConfig(**base)


def test_train_writes_metrics_trajectories_and_checkpoint(tmp_path):
    cfg = _config(ppo_epochs=2, kl_beta=0.1, advantage="grpo", filter_zero_variance=False)
    trainer = Trainer(cfg, tmp_path, policy=tiny_policy(max_new_tokens=2), env_factory=ToyGuessEnv)
    history = trainer.train()
    assert [m["step"] for m in history] == [1, 2, 3]
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert len(lines) == 3
    for key in ("success", "return", "entropy", "group_std", "zero_var_frac", "kl", "clip_frac", "grad_norm",
                "tokens_per_s", "rollout_s", "learn_s", "success_by_difficulty", "logprob_gap"):  # fmt: skip
        assert key in lines[-1], key
    assert lines[-1]["logprob_gap"] < 1e-4  # the trainer scores exactly what the sampler sampled
    episodes = list(read_episodes(tmp_path / "trajectories.jsonl"))
    assert len(episodes) == 3 * 8
    assert all(ep.turns and "action_tokens" in ep.turns[0].extra for ep in episodes)
    assert (tmp_path / "checkpoint" / "state.pt").is_file()


def test_resume_continues_from_the_checkpoint(tmp_path):
    cfg = _config(steps=2, record_trajectories=False)
    Trainer(cfg, tmp_path, policy=tiny_policy(seed=5), env_factory=ToyGuessEnv).train()
    resumed = Trainer(
        cfg.model_copy(update={"steps": 4}), tmp_path, policy=tiny_policy(seed=9), env_factory=ToyGuessEnv
    )
    assert resumed.step == 2
    import torch

    first = Trainer(cfg, tmp_path / "other", policy=tiny_policy(seed=5), env_factory=ToyGuessEnv)
    first.train()
    for (_, a), (_, b) in zip(first.model.named_parameters(), resumed.model.named_parameters(), strict=True):
        assert torch.equal(a, b)  # same seed, same steps -> same weights, loaded into a differently seeded model
    resumed.train()
    steps = [json.loads(x)["step"] for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]


class _FlakyEnv(ToyGuessEnv):
    """Fails with an infra error on odd seeds."""

    env_id: ClassVar[str] = "envgym/Flaky-v0"

    def step(self, action):
        if self.task is not None and self.task.seed % 2 == 1:
            action = "1"  # always a well-formed call, so _apply runs and the infra failure surfaces
        return super().step(action)

    def _apply(self, call):  # type: ignore[override]
        if self.task is not None and self.task.seed % 2 == 1:
            raise InfraError("sandbox died")
        return super()._apply(call)


def test_infra_error_episodes_are_flagged_and_dropped(tmp_path):
    policy = tiny_policy()
    episodes = rollout(policy, [_FlakyEnv() for _ in range(4)], [TaskSpec(seed=s) for s in range(4)])
    flagged = [ep.infra_error is not None for ep in episodes]
    assert flagged == [False, True, False, True]
    assert episodes[1].record is not None and episodes[1].record.outcome.infra_error
    trainer = Trainer(_config(steps=1, record_trajectories=False), tmp_path, policy=policy, env_factory=_FlakyEnv)
    assert all(ep.infra_error is None for ep in trainer.usable(episodes))
    m = trainer.train_step()
    assert m["infra_dropped"] >= 0 and m["episodes"] == 8


def test_truncated_episodes_masked_or_scored(tmp_path):
    policy = tiny_policy()
    episodes = rollout(policy, [ToyGuessEnv() for _ in range(8)], [TaskSpec(seed=s) for s in range(8)],
                       RolloutConfig(max_turns=1))  # fmt: skip
    assert any(ep.truncated for ep in episodes)
    masked = Trainer(
        _config(truncated="mask", record_trajectories=False), tmp_path / "a", policy=policy, env_factory=ToyGuessEnv
    )
    assert not any(ep.truncated for ep in masked.usable(episodes))
    scored = Trainer(_config(truncated="score", truncated_reward=-1.0, record_trajectories=False), tmp_path / "b",
                     policy=policy, env_factory=ToyGuessEnv)  # fmt: skip
    kept = scored.usable(episodes)
    truncated = [ep for ep in kept if ep.truncated]
    assert truncated and all(scored.episode_return(ep) == -1.0 for ep in truncated)
    assert all(ep.return_ == ep.record.outcome.return_ != -1.0 for ep in truncated)  # the record keeps the env's


def test_token_episodes_read_their_outcome_from_the_trajectory_record():
    policy = tiny_policy()
    episodes = rollout(policy, [ToyGuessEnv() for _ in range(4)], [TaskSpec(seed=s) for s in range(4)],
                       RolloutConfig(max_turns=2))  # fmt: skip
    for ep in episodes:
        out = ep.record.outcome
        assert out is not None and ep.outcome is out
        assert (ep.return_, ep.success, ep.truncated, ep.infra_error) == (
            out.return_,
            out.success,
            out.truncated,
            out.infra_error,
        )
        assert out.return_ == sum(t.reward for t in ep.turns)
        out.success = not out.success  # one source of truth: a change to the record is what the learner sees
        assert ep.success == out.success


def test_curriculum_drives_difficulty(tmp_path):
    from envgym.agents.toy import ToyCodeEnv

    cfg = _config(difficulty=None, curriculum=CurriculumConfig(levels=[0.0, 0.2, 1.0]), record_trajectories=False,
                  policy={"model": "tiny", "max_new_tokens": 6})  # fmt: skip
    trainer = Trainer(cfg, tmp_path, policy=tiny_policy(max_new_tokens=6), env_factory=ToyCodeEnv)
    m = trainer.train_step()
    assert "curriculum" in m and set(m["success_by_difficulty"]) <= {"0", "0.2", "1"}


def test_config_roundtrips_through_yaml(tmp_path):
    import yaml

    cfg = _config(advantage="lite", curriculum=CurriculumConfig())
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    assert TrainConfig.from_yaml(path) == cfg
    with pytest.raises(ValueError):
        TrainConfig.model_validate({"advantage": "nope"})


class _BrokenStartEnv(ToyGuessEnv):
    """Seed 1's reset reports a host failure in `info` (as a sandbox env does); seed 2's reset raises."""

    def reset(self, *, seed=None, options=None):
        if seed == 2:
            raise RuntimeError("docker daemon went away")
        obs, info = super().reset(seed=seed, options=options)
        if seed == 1:
            info = {**info, "infra_error": "image missing"}
        return obs, info


def test_reset_time_infra_errors_mark_the_episode_infra_and_are_dropped(tmp_path):
    episodes = rollout(tiny_policy(), [_BrokenStartEnv() for _ in range(3)], [TaskSpec(seed=s) for s in range(3)])
    assert [ep.infra_error is not None for ep in episodes] == [False, True, True]
    assert "image missing" in str(episodes[1].infra_error) and "docker daemon" in str(episodes[2].infra_error)
    for ep in episodes[1:]:
        assert ep.record is not None and ep.record.infra and not ep.turns and not ep.record.turns
    trainer = Trainer(_config(steps=1, record_trajectories=False), tmp_path, policy=tiny_policy(),
                      env_factory=_BrokenStartEnv)  # fmt: skip
    assert trainer.usable(episodes) == [episodes[0]]
