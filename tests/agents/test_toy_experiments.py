"""E3's held-out evaluation: on schedule, at the hard level, and invisible to the curriculum."""

from toy_runs import ArmResult, hard_level_success, run_e3


def test_e3_evaluates_on_schedule_and_reports_progress():
    partial: list[ArmResult] = []
    result = run_e3("curriculum", steps=4, seed=0, eval_every=2, eval_episodes=16, progress=partial.append)
    assert result.eval_steps == [0, 2, 4]
    assert all(0.0 <= s <= 1.0 for s in result.eval_success)
    assert [p.eval_steps for p in partial] == [[0, 2], [0, 2, 4]]
    assert len(result.level_by_step) == 4 and all(lv is not None for lv in result.level_by_step)
    fixed = run_e3("fixed-hard", steps=2, seed=0, eval_every=0)
    assert fixed.eval_steps == [] and fixed.level_by_step == [None, None]


def test_hard_level_success_uses_hard_tasks_and_leaves_the_curriculum_alone(tmp_path):
    from envgym.agents.toy import ToyCodeEnv, tiny_policy
    from envgym.agents.trainer import TrainConfig, Trainer
    from envgym.curriculum import CurriculumConfig

    cfg = TrainConfig(env_id="toy-code", steps=1, tasks_per_step=2, group_size=2, record_trajectories=False,
                      difficulty=None, curriculum=CurriculumConfig(levels=[0.0, 1.0]))  # fmt: skip
    trainer = Trainer(cfg, tmp_path, policy=tiny_policy(max_new_tokens=6), env_factory=ToyCodeEnv)
    trainer.train_step()
    before = trainer.controller.summary()  # type: ignore[union-attr]
    score = hard_level_success(trainer, episodes=10)  # more episodes than envs: evaluated in chunks
    assert 0.0 <= score <= 1.0
    assert all(env.unwrapped.length == 6 for env in trainer.envs)
    assert trainer.controller.summary() == before  # type: ignore[union-attr]
    assert trainer.step == 1
