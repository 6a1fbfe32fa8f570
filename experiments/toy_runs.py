"""E1–E3 of NOTES-RL §12 on the toy worlds, shared by the learning tests and the experiment scripts next to it.

Why one module: a learning claim needs its negative controls run with the same code, seeds and budget; one
function per experiment returns every arm's per-step curve so a test can assert on window means and a
script can plot the same numbers.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from envgym.agents.heldout import HeldOutConfig, heldout_success
from envgym.agents.rollout import RolloutConfig
from envgym.agents.toy import CODE_WORDS, GUESS_WORDS, tiny_policy
from envgym.agents.trainer import TrainConfig, Trainer
from envgym.curriculum import CurriculumConfig
from envgym.environments.toy import ToyBanditEnv, ToyCodeEnv, ToyGuessEnv


class ArmResult(BaseModel):
    arm: str
    seed: int
    success: list[float]
    entropy: list[float | None]
    zero_var_frac: list[float]
    seconds: float
    eval_steps: list[int] = []
    eval_success: list[float] = []
    level_by_step: list[float | None] = []


def window_mean(values: list[float], start: int, stop: int | None = None) -> float:
    chunk = values[start:stop]
    return sum(chunk) / max(len(chunk), 1)


EvalHook = Callable[[Trainer], float]
ProgressHook = Callable[[ArmResult], None]


def _result(
    arm: str, seed: int, history: list[dict[str, Any]], seconds: float, evals: list[tuple[int, float]]
) -> ArmResult:
    return ArmResult(
        arm=arm, seed=seed, success=[m["success"] for m in history],
        entropy=[m["entropy"] if m["entropy"] == m["entropy"] else None for m in history],
        zero_var_frac=[m["zero_var_frac"] for m in history], seconds=seconds,
        eval_steps=[s for s, _ in evals], eval_success=[v for _, v in evals],
        level_by_step=[m.get("curriculum", {}).get("toy", {}).get("frontier") for m in history],
    )  # fmt: skip


def _run(
    config: TrainConfig,
    policy: Any,
    env_factory: Callable[[], Any],
    arm: str,
    run_dir: Path | None,
    evaluate: EvalHook | None = None,
    eval_every: int = 0,
    progress: ProgressHook | None = None,
) -> ArmResult:
    """Train one arm; with `evaluate`, score it every `eval_every` steps (and at step 0) on a fixed held-out
    set, calling `progress` with the partial result so a long run leaves usable numbers if it is stopped."""
    import time

    tmp = run_dir is None
    directory = Path(tempfile.mkdtemp(prefix=f"envgym-{arm}-")) if run_dir is None else run_dir
    try:
        start = time.perf_counter()
        trainer = Trainer(config, directory, policy=policy, env_factory=env_factory)
        history: list[dict[str, Any]] = []
        evals: list[tuple[int, float]] = []
        if evaluate is not None and eval_every:
            evals.append((0, evaluate(trainer)))

        def on_step(metrics: dict[str, Any]) -> None:
            history.append(metrics)
            if evaluate is not None and eval_every and trainer.step % eval_every == 0:
                evals.append((trainer.step, evaluate(trainer)))
                if progress is not None:
                    progress(_result(arm, config.seed, history, time.perf_counter() - start, evals))

        trainer.train(on_step=on_step)
        return _result(arm, config.seed, history, time.perf_counter() - start, evals)
    finally:
        if tmp:
            shutil.rmtree(directory, ignore_errors=True)


def e2_config(arm: str, steps: int, seed: int, lr: float = 1e-3, tasks: int = 16, group: int = 8) -> TrainConfig:
    """E2: N=16, K=5, Dr.GRPO group mean, 4 minibatch updates per batch; arms normal / hidden / shuffled."""
    if arm not in {"normal", "hidden", "shuffled"}:
        raise ValueError(f"unknown E2 arm {arm!r}")
    return TrainConfig(
        env_id="toy-guess", steps=steps, seed=seed, tasks_per_step=tasks, group_size=group, advantage="drgrpo",
        lr=lr, minibatches=4, max_grad_norm=10.0, loss_tokens_per_episode=5, micro_batch_size=1024,
        rollout=RolloutConfig(hide_feedback=arm == "hidden"), shuffle_rewards=arm == "shuffled",
        record_trajectories=False,
    )  # fmt: skip


def run_e2(arm: str, steps: int = 200, seed: int = 0, run_dir: Path | None = None, **kw: Any) -> ArmResult:
    """Multi-turn guess-the-number with h/l feedback (one token per action, compact template)."""
    policy = tiny_policy(compact=True, seed=seed, words=GUESS_WORDS)
    return _run(e2_config(arm, steps, seed, **kw), policy, ToyGuessEnv, arm, run_dir)


def run_e1(arm: str, steps: int = 150, seed: int = 0, run_dir: Path | None = None) -> ArmResult:
    """Bandit sanity: arms normal / flipped (advantage sign) / shuffled (rewards across the batch)."""
    cfg = TrainConfig(
        env_id="toy-bandit", steps=steps, seed=seed, tasks_per_step=16, group_size=8, advantage="rloo", lr=3e-3,
        loss_tokens_per_episode=1, micro_batch_size=1024, max_grad_norm=10.0, record_trajectories=False,
        flip_advantages=arm == "flipped", shuffle_rewards=arm == "shuffled",
    )  # fmt: skip
    return _run(cfg, tiny_policy(compact=True, seed=seed), ToyBanditEnv, arm, run_dir)


def hard_level_success(trainer: Trainer, episodes: int = 256, difficulty: float = 1.0) -> float:
    """Success of the current policy (sampling as in training) on a fixed held-out set of task seeds at one
    difficulty; no learning, no trajectory recording, and the trainer's curriculum is not told."""
    temperature = trainer.policy.config.temperature
    held = HeldOutConfig(episodes=episodes, temperatures=[temperature])
    return heldout_success(trainer.policy, trainer.envs, held, trainer.config.rollout, difficulty, trainer.step)[
        0
    ].success


FIXED_E3_LEVELS = {"fixed-hard": 1.0, "fixed-L2": 0.2}


def run_e3(
    arm: str,
    steps: int = 600,
    seed: int = 0,
    run_dir: Path | None = None,
    eval_every: int = 0,
    eval_episodes: int = 256,
    progress: ProgressHook | None = None,
) -> ArmResult:
    """Code-breaking: `curriculum` (levels L=1..6) vs `fixed-hard` (L=6 only); a 4-layer d=128 model.
    `fixed-L2` trains at L=2 only: whether the model can learn the strategy at an easy level at all.

    With `eval_every`, both arms are also scored on the same held-out L=6 tasks, which is the comparison
    NOTES-RL E3 asks for (training success of the curriculum arm mixes easy levels in).
    """
    if arm not in {"curriculum", *FIXED_E3_LEVELS}:
        raise ValueError(f"unknown E3 arm {arm!r}")
    levels = [round((length - 1) / 5, 4) for length in range(1, 7)]
    cfg = TrainConfig(
        env_id="toy-code", steps=steps, seed=seed, tasks_per_step=16, group_size=8, advantage="rloo", lr=1e-3,
        minibatches=2, loss_tokens_per_episode=36, micro_batch_size=1024, max_grad_norm=10.0,
        record_trajectories=False, difficulty=FIXED_E3_LEVELS.get(arm),
        curriculum=None if arm in FIXED_E3_LEVELS else CurriculumConfig(levels=levels, up=0.7, down=0.3, min_samples=256),
    )  # fmt: skip
    policy = tiny_policy(
        max_new_tokens=6, compact=True, seed=seed, words=CODE_WORDS, max_number=0, layers=4, hidden=128
    )

    def evaluate(trainer: Trainer) -> float:
        return hard_level_success(trainer, eval_episodes)

    return _run(cfg, policy, ToyCodeEnv, arm, run_dir, evaluate, eval_every, progress)
