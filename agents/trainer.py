"""Trajectory-level RL with full-episode credit: the training loop (CleanRL spirit).

One step: sample `tasks_per_step` task seeds (difficulty fixed or from the curriculum), run a group of
`group_size` episodes per seed (token-in/token-out rollouts, every episode recorded), turn each episode's
return into an advantage against its own group (`advantages.ESTIMATORS`), broadcast it to every sampled action
token of every turn, and take PPO-clipped policy-gradient steps (`objective`) on the token-level loss divided
by a constant. Why these choices: /work/shared/NOTES-RL.md §8-§11 (group baselines, Dr.GRPO's length bias, k2
for reverse KL, dropping infra errors, filtering zero-variance groups, dynamic sampling, clip-higher).

Against collapse, each a switch: `dynamic_sampling` keeps sampling fresh task seeds until the batch holds
`tasks_per_step` groups with reward variance (bounded by `dynamic_max_rounds`); `clip_high` engages once a
batch is used for more than one update (`ppo_epochs` or `minibatches` > 1); `entropy_coef` adds an entropy
bonus; `tis_cap` reweights by π_old/π_sampler (truncated IS) for samplers that are not this forward.
"""

from __future__ import annotations

import copy
import json
import math
import random
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from envgym.agents.advantages import ESTIMATORS, AdvantageBatch, group_advantages, rebn_advantages
from envgym.agents.batching import pack_episodes
from envgym.agents.heldout import HeldOutConfig, HeldOutResult, heldout_success, read_heldout
from envgym.agents.objective import policy_loss_sum, truncated_is_weights
from envgym.agents.policies.hf import HFPolicy, HFPolicyConfig
from envgym.agents.recording import BackgroundTrajectoryWriter
from envgym.agents.rollout import RolloutConfig, TaskSpec, TokenEpisode, rollout
from envgym.agents.scoring import action_logprobs
from envgym.agents.self_distillation import SelfDistillation, mix_advantages, pack_teacher, sdpo_advantages
from envgym.agents.shared_prefix import (
    MIN_SHARED_PREFIX,
    can_share_prefix,
    common_prefix_length,
    shared_prefix_logprobs,
)
from envgym.curriculum import CurriculumConfig, DifficultyController, family_of

if TYPE_CHECKING:
    import gymnasium as gym
    import torch

__all__ = [
    "ProgressFn", "TrainConfig", "Trainer", "group_advantages", "make_env", "pack_episodes", "rebn_advantages",
]  # fmt: skip

ProgressFn = Callable[[str, int, int], None]
"""`on_progress(phase, done, total)`: phase 'held-out' (episodes done of this pass), 'rollout' or 'learn'
(steps done of the run, as the phase starts). For a progress display; the trainer never prints."""


# ----- configuration -----------------------------------------------------------------------------------
class TrainConfig(BaseModel):
    """Everything a run needs; load from YAML with `TrainConfig.from_yaml`."""

    model_config = ConfigDict(extra="forbid")  # a misspelt key is an error, not a silent default

    env_id: str = "envgym/GuessNumber-v0"
    env_kwargs: dict[str, Any] = Field(default_factory=dict)
    difficulty: float | None = Field(default=0.0, description="fixed difficulty; None lets the curriculum pick")
    curriculum: CurriculumConfig | None = None
    policy: HFPolicyConfig = Field(default_factory=HFPolicyConfig)
    rollout: RolloutConfig = Field(default_factory=RolloutConfig)
    seed: int = 0
    steps: int = Field(default=20, ge=1)
    tasks_per_step: int = Field(default=4, ge=1, description="task seeds per step (groups)")
    group_size: int = Field(default=4, ge=1, description="G episodes per task seed")
    advantage: str = Field(default="rloo", description=f"one of {sorted(ESTIMATORS)}")
    gamma: float = Field(default=1.0, ge=0.0, le=1.0, description="discount for rebn")
    lr: float = 1e-5
    weight_decay: float = 0.0
    ppo_epochs: int = Field(default=1, ge=1, description="passes over each batch; >1 makes the clip active")
    minibatches: int = Field(default=1, ge=1, description="optimizer steps per pass (episodes split evenly)")
    clip_low: float = 0.2
    clip_high: float = 0.28
    kl_beta: float = Field(default=0.0, ge=0.0, description="weight of k2 = ½(log π − log π_ref)²")
    entropy_coef: float = Field(default=0.0, ge=0.0, description="entropy bonus on action tokens (0: off)")
    tis_cap: float | None = Field(
        default=None, gt=0.0, description="truncated IS: weight tokens by min(π_old/π_sampler, cap); None: off"
    )
    filter_zero_variance: bool = True
    dynamic_sampling: bool = Field(
        default=False, description="sample fresh task seeds until tasks_per_step groups have reward variance"
    )
    dynamic_max_rounds: int = Field(default=4, ge=1, description="rollout rounds per step, first one included")
    truncated: Literal["mask", "score"] = Field(default="score", description="drop truncated episodes or keep")
    truncated_reward: float | None = Field(default=None, description="with 'score': override their return")
    loss_tokens_per_episode: float = Field(default=64.0, gt=0, description="loss ÷ (episodes × this constant)")
    micro_batch_size: int = Field(default=16, ge=1, description="episodes per forward (gradient accumulation)")
    max_grad_norm: float = 1.0
    gradient_checkpointing: bool = Field(default=False, description="recompute activations in backward")
    share_prefix: bool = Field(
        default=True, description="training forwards encode the rows' common prefix once (exact; see shared_prefix)"
    )
    shuffle_rewards: bool = Field(default=False, description="control: permute returns across the batch")
    flip_advantages: bool = Field(default=False, description="control: negate every advantage")
    record_trajectories: bool = True
    checkpoint_every: int = Field(default=10, ge=0, description="steps between checkpoints; 0: only at the end")
    heldout: HeldOutConfig = Field(default_factory=HeldOutConfig)
    sdpo_weight: float = Field(
        default=0.0, ge=0.0, le=1.0, description="w = 1−λ: A = (1−w)·A_traj + w·A_SD; 0 turns self-distillation off"
    )
    sdpo_feedback_template: str = Field(
        default="Feedback on an earlier attempt: {feedback}",
        description="teacher message; {feedback} is the episode's final observation text",
    )
    sdpo_sibling: bool = Field(default=True, description="append a successful sibling's actions when one exists")
    sdpo_sibling_template: str = Field(default=" A successful attempt: {actions}", description="{actions}: joined")
    threads: int | None = Field(default=None, description="torch CPU threads (None: leave as is)")

    @field_validator("advantage")
    @classmethod
    def _known_estimator(cls, value: str) -> str:
        if value not in ESTIMATORS:
            raise ValueError(f"unknown advantage estimator {value!r}; choose one of {sorted(ESTIMATORS)}")
        return value

    @classmethod
    def from_yaml(cls, path: str | Path) -> TrainConfig:
        data = yaml.safe_load(Path(path).read_text()) or {}
        return cls.model_validate(data)


# ----- building blocks ---------------------------------------------------------------------------------
def make_env(env_id: str, env_kwargs: dict[str, Any] | None = None) -> gym.Env:
    import gymnasium as gym

    import envgym  # noqa: F401  (registers ids)

    return gym.make(env_id, **(env_kwargs or {}))


def make_policy(config: HFPolicyConfig) -> HFPolicy:
    """`tiny` builds the random tiny model of the tests; anything else loads through transformers."""
    if config.model == "tiny":
        from envgym.agents.toy import tiny_model, tiny_tokenizer

        tok = tiny_tokenizer()
        return HFPolicy(tiny_model(len(tok)), tok, config, name="tiny")
    return HFPolicy.from_config(config)


def load_trained_weights(model: Any, run_dir: str | Path) -> int:
    """Copy the trainable weights of RUN_DIR/checkpoint into `model` (built from the run's config); returns
    the checkpoint's step."""
    import torch

    state = torch.load(Path(run_dir) / "checkpoint" / "state.pt", map_location="cpu", weights_only=False)
    _copy_params(model, state["params"])
    return int(state["step"])


def _copy_params(model: Any, params: dict[str, Any]) -> None:
    import torch

    named = dict(model.named_parameters())
    with torch.no_grad():
        for k, v in params.items():
            named[k].copy_(v.to(named[k].device))


def enable_activation_checkpointing(model: Any) -> None:
    """Recompute activations in the backward (transformers renamed gradient to activation checkpointing)."""
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _group_std(episodes: list[TokenEpisode], returns: list[float]) -> dict[int, float]:
    by_group: dict[int, list[float]] = defaultdict(list)
    for ep, r in zip(episodes, returns, strict=True):
        by_group[ep.task.group].append(r)
    return {g: float(np.std(v)) for g, v in by_group.items()}


def sampler_entropy(episodes: list[TokenEpisode]) -> float:
    """−mean log π_sampler(token) over every sampled action token: a Monte-Carlo estimate of the policy's
    entropy from the sampler's own log-probs, defined whether or not anything is trained (collapse shows)."""
    lps = [lp for ep in episodes for t in ep.turns for lp in t.action_logprobs]
    return -float(np.mean(lps)) if lps else float("nan")


# ----- the trainer ---------------------------------------------------------------------------------------
class Trainer:
    """Owns the policy, optimizer, envs, curriculum and run directory; `train()` runs the loop."""

    def __init__(
        self,
        config: TrainConfig,
        run_dir: str | Path,
        policy: HFPolicy | None = None,
        env_factory: Callable[[], gym.Env] | None = None,
    ) -> None:
        import torch

        self.config = config
        if config.threads:
            torch.set_num_threads(config.threads)
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        seed_everything(config.seed)
        self.policy = policy or make_policy(config.policy)
        self.model = self.policy.model
        self.device = self.policy.device
        if config.gradient_checkpointing:
            enable_activation_checkpointing(self.model)
        factory = env_factory or (lambda: make_env(config.env_id, config.env_kwargs))
        self.envs = [factory() for _ in range(config.tasks_per_step * config.group_size)]
        self.family = family_of(self.envs[0])
        self.controller = (
            DifficultyController(config.curriculum, seed=config.seed) if config.curriculum is not None else None
        )
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
        self.ref_model = None
        if config.kl_beta > 0 and config.policy.lora_r == 0:
            self.ref_model = copy.deepcopy(self.model).eval().requires_grad_(False)
        self.sdpo = (
            SelfDistillation(
                self.policy,
                self.score,
                config.sdpo_feedback_template,
                config.sdpo_sibling_template if config.sdpo_sibling else None,
            )
            if config.sdpo_weight > 0
            else None
        )
        self.rng = np.random.default_rng(config.seed)
        self.step = 0
        self.on_progress: ProgressFn | None = None
        (self.run_dir / "config.yaml").write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
        self.metrics_path = self.run_dir / "metrics.jsonl"
        self.trajectories_path = self.run_dir / "trajectories.jsonl"
        self.heldout_path = self.run_dir / "heldout.jsonl"
        self.load_checkpoint()  # before the writer opens: resuming truncates the trajectory file
        self.writer = BackgroundTrajectoryWriter(self.trajectories_path) if config.record_trajectories else None

    # ----- data --------------------------------------------------------------------------------------
    def sample_tasks(self, round_: int = 0) -> list[TaskSpec]:
        """The step's task seeds; later dynamic-sampling rounds draw seeds (and group ids) of their own."""
        cfg = self.config
        n = cfg.tasks_per_step
        tasks = []
        for g in range(n):
            if round_ == 0:
                seed = cfg.seed * 1_000_003 + self.step * n + g
            else:
                seed = cfg.seed * 1_000_003 + 500_000_000 + (self.step * cfg.dynamic_max_rounds + round_) * n + g
            difficulty = self.controller.sample(self.family) if self.controller else cfg.difficulty
            tasks += [TaskSpec(seed=seed, difficulty=difficulty, group=round_ * n + g) for _ in range(cfg.group_size)]
        return tasks

    def collect(self) -> tuple[list[TokenEpisode], list[TokenEpisode], dict[str, float]]:
        """(all episodes sampled this step, the episodes to learn from, sampling stats). Without dynamic
        sampling both lists are the one rollout; with it, rounds of fresh seeds are rolled out until
        `tasks_per_step` groups have reward variance (or `dynamic_max_rounds` is reached), and the batch is
        those groups (zero-variance ones carry no gradient)."""
        cfg = self.config
        first = rollout(self.policy, self.envs, self.sample_tasks(0), cfg.rollout, self.writer)
        if not cfg.dynamic_sampling:
            return first, first, {}
        every, rounds = list(first), 1
        informative = self._informative_groups(first)
        while len(informative) < cfg.tasks_per_step and rounds < cfg.dynamic_max_rounds:
            more = rollout(self.policy, self.envs, self.sample_tasks(rounds), cfg.rollout, self.writer)
            every += more
            informative += self._informative_groups(more)
            rounds += 1
        keep = set(informative[: cfg.tasks_per_step])
        batch = [ep for ep in every if ep.task.group in keep]
        stats = {"sampling_rounds": float(rounds), "groups_sampled": float(rounds * cfg.tasks_per_step),
                 "groups_informative": float(len(informative))}  # fmt: skip
        return every, batch, stats

    def _informative_groups(self, episodes: list[TokenEpisode]) -> list[int]:
        usable = self.usable(episodes)
        stds = _group_std(usable, [self.episode_return(ep) for ep in usable])
        return [g for g, s in stds.items() if s >= 1e-6]

    def usable(self, episodes: list[TokenEpisode]) -> list[TokenEpisode]:
        """Drop infra errors (never a fake zero) and, with truncated='mask', truncated episodes."""
        keep = [ep for ep in episodes if ep.infra_error is None and ep.turns]
        if self.config.truncated == "mask":
            keep = [ep for ep in keep if not ep.truncated]
        return keep

    def episode_return(self, ep: TokenEpisode) -> float:
        """The return the learner credits: the recorded one, or `truncated_reward` for a truncated episode
        (the record keeps what the env gave)."""
        cfg = self.config
        if ep.truncated and cfg.truncated == "score" and cfg.truncated_reward is not None:
            return cfg.truncated_reward
        return ep.return_

    def advantages(self, episodes: list[TokenEpisode]) -> tuple[list[list[float]], dict[str, float], list[bool]]:
        """Per episode, per turn advantages (from `ESTIMATORS[config.advantage]`), group statistics, and
        whether each episode's group has any reward variance."""
        cfg = self.config
        returns = [self.episode_return(ep) for ep in episodes]
        turn_rewards = [[t.reward for t in ep.turns] for ep in episodes]
        if cfg.shuffle_rewards:  # control: move whole episodes' outcomes around the batch
            order = self.rng.permutation(len(episodes))
            returns = [returns[i] for i in order]
            turn_rewards = [turn_rewards[i][: len(ep.turns)] + [0.0] * (len(ep.turns) - len(turn_rewards[i]))
                            for i, ep in zip(order, episodes, strict=True)]  # fmt: skip
        groups = [ep.task.group for ep in episodes]
        by_group: dict[int, list[float]] = defaultdict(list)
        for r, g in zip(returns, groups, strict=True):
            by_group[g].append(r)
        group_std = {g: float(np.std(v)) for g, v in by_group.items()}
        stds = list(group_std.values())
        informative = [group_std[g] >= 1e-6 for g in groups]
        stats = {
            "group_std": float(np.mean(stds)) if stds else 0.0,
            "zero_var_frac": float(np.mean([s < 1e-6 for s in stds])) if stds else 0.0,
        }
        per_turn = ESTIMATORS[cfg.advantage](AdvantageBatch(returns, groups, turn_rewards, cfg.gamma))
        if cfg.flip_advantages:
            per_turn = [[-a for a in t] for t in per_turn]
        return per_turn, stats, informative

    # ----- learning ----------------------------------------------------------------------------------
    def score(self, model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """log π of the batch's action tokens under `model`, at the sampling temperature."""
        return self._forward_logp(model, batch)[0]

    def _forward_logp(self, model: Any, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        temperature = self.config.policy.temperature or 1.0
        with self.policy.autocast():
            if self.config.share_prefix and can_share_prefix(model):
                prefix = common_prefix_length(batch["input_ids"], batch["attention_mask"])
                if prefix >= MIN_SHARED_PREFIX:
                    return shared_prefix_logprobs(model, batch, prefix, temperature)
            return action_logprobs(model, batch, temperature)

    def learn(
        self,
        episodes: list[TokenEpisode],
        per_turn: list[list[float]],
        n_generated: int,
        informative: list[bool] | None = None,
    ) -> dict[str, float]:
        """PPO-clipped policy-gradient updates on the token-level loss; `informative[i]` is False for
        episodes of zero-variance groups (skipped when `filter_zero_variance`)."""
        import torch

        cfg = self.config
        flags = informative if informative is not None else [True] * len(episodes)
        keep = [i for i in range(len(episodes)) if flags[i] or not cfg.filter_zero_variance]
        # a constant denominator (episodes generated per update × tokens per episode), fixed before any
        # micro-batch, so gradient accumulation does not re-weight episodes by length.
        denominator = n_generated / cfg.minibatches * cfg.loss_tokens_per_episode
        order = [keep[i] for i in self.rng.permutation(len(keep))] if cfg.minibatches > 1 else keep
        splits = [order[m :: cfg.minibatches] for m in range(cfg.minibatches)]
        sdpo = self.sdpo
        prefixes = sdpo.prefix_ids(episodes) if sdpo is not None and keep else []
        updates: list[list[dict[str, torch.Tensor]]] = []
        for part in splits:
            micro = [part[i : i + cfg.micro_batch_size] for i in range(0, len(part), cfg.micro_batch_size)]
            packed = [
                pack_episodes([episodes[i] for i in idx], [per_turn[i] for i in idx], self.policy.pad_id)
                for idx in micro
            ]
            if sdpo is not None:  # the same episodes behind their teacher prefixes, one per micro-batch
                for b, idx in zip(packed, micro, strict=True):
                    eps = [episodes[i] for i in idx]
                    b.update(pack_teacher(eps, [prefixes[i] for i in idx], self.policy.pad_id))
            updates.append([{k: v.to(self.device) for k, v in b.items()} for b in packed])
        batches = [b for u in updates for b in u]
        tokens = sum(int(b["label_mask"].sum()) for b in batches)
        seq_tokens = sum(int(b["attention_mask"].sum()) for b in batches)
        if not batches:  # every group had zero variance: nothing to learn from this batch
            empty = {"loss": 0.0, "grad_norm": 0.0, "policy_entropy": float("nan"), "clip_frac": 0.0,
                     "logprob_gap": 0.0, "updates": 0.0}  # fmt: skip
            return (
                {**empty, "trained_episodes": 0.0, "trained_tokens": 0.0, "seq_tokens": 0.0}
                | ({"kl": float("nan"), "kl_k2": float("nan")} if cfg.kl_beta > 0 else {})
                | ({"sdpo_adv": float("nan"), "sdpo_abs": float("nan")} if sdpo is not None else {})
            )
        self.model.train()
        off_policy = cfg.ppo_epochs > 1 or cfg.minibatches > 1
        with torch.no_grad():  # π_old from the training forward itself (same dtype and padding)
            for b in batches:
                if off_policy:
                    b["old_logprobs"] = self.score(self.model, b).detach()
                if cfg.kl_beta > 0:
                    b["ref_logprobs"] = self._reference_logp(b)
                if sdpo is not None:  # teacher θ̄ = the current weights, before this batch's updates
                    b["teacher_logprobs"] = sdpo.teacher_logp(self.model, b)
        sums: dict[str, float] = defaultdict(float)
        grad_norms: list[float] = []
        params = [p for p in self.model.parameters() if p.requires_grad]
        for epoch in range(cfg.ppo_epochs):
            for update in updates:
                if not update:
                    continue
                self.optimizer.zero_grad(set_to_none=True)
                for b in update:
                    logp, ent = self._forward_logp(self.model, b)
                    old_logp = b["old_logprobs"] if off_policy else logp.detach()
                    m = b["label_mask"]
                    adv = b["advantages"]
                    if sdpo is not None:  # A_SD against π_old (the student before any update), detached
                        sd = sdpo_advantages(b["teacher_logprobs"], old_logp, m)
                        adv = mix_advantages(adv, sd, m, cfg.sdpo_weight)
                        if epoch == 0:
                            sums["sd"] += float(sd[m].sum())
                            sums["sd_abs"] += float(sd[m].abs().sum())
                    weights = None
                    if cfg.tis_cap is not None:
                        weights = truncated_is_weights(old_logp, b["sampled_logprobs"], m, cfg.tis_cap)
                    loss_sum, stats = policy_loss_sum(
                        logp, old_logp, adv, m, cfg.clip_low, cfg.clip_high, b.get("ref_logprobs"), cfg.kl_beta,
                        is_weights=weights, entropy=ent, entropy_coef=cfg.entropy_coef,
                    )  # fmt: skip
                    loss = loss_sum / denominator
                    loss.backward()
                    sums["loss"] += float(loss.detach())
                    sums["clipped"] += float(stats["clipped"].sum())
                    if epoch == 0:
                        sums["entropy"] += float(ent.detach()[m].sum())
                        scored = b["old_logprobs"] if off_policy else logp.detach()  # before any update
                        sums["gap"] += float((scored - b["sampled_logprobs"])[m].abs().sum())
                        if weights is not None:
                            sums["tis"] += float(weights[m].sum())
                            sums["tis_capped"] += float((weights[m] >= cfg.tis_cap).sum())
                        if "k2" in stats:
                            sums["k1"] += float(stats["k1"].sum())
                            sums["k2"] += float(stats["k2"].sum())
                grad_norms.append(float(torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)))
                self.optimizer.step()
        n = max(tokens, 1)
        out = {
            "loss": sums["loss"] / cfg.ppo_epochs,
            "grad_norm": float(np.mean(grad_norms)),
            "policy_entropy": sums["entropy"] / n,
            "clip_frac": sums["clipped"] / (n * cfg.ppo_epochs),
            "logprob_gap": sums["gap"] / n,
            "updates": float(len(grad_norms)),
            "trained_episodes": float(len(keep)),
            "trained_tokens": float(tokens),
            "seq_tokens": float(seq_tokens),
        }
        if cfg.tis_cap is not None:
            out.update(tis_weight=sums["tis"] / n, tis_capped_frac=sums["tis_capped"] / n)
        if cfg.kl_beta > 0:
            out.update(kl=sums["k1"] / n, kl_k2=sums["k2"] / n)
        if sdpo is not None:
            out.update(sdpo_adv=sums["sd"] / n, sdpo_abs=sums["sd_abs"] / n)
        return out

    def _reference_logp(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.ref_model is not None:
            return self.score(self.ref_model, batch)
        with self.model.disable_adapter():  # LoRA: the frozen base model is the reference
            return self.score(self.model, batch)

    def self_distillation_advantages(self, episodes: list[TokenEpisode]) -> list[list[float]]:
        """A_SD = log q − log π per sampled action token with the current weights (needs sdpo_weight > 0)."""
        if self.sdpo is None:
            raise ValueError("self-distillation is off: set sdpo_weight > 0")
        return self.sdpo.advantages(self.model, episodes, self.device)

    # ----- loop --------------------------------------------------------------------------------------
    def train_step(self) -> dict[str, Any]:
        cfg = self.config
        t0 = time.perf_counter()
        self._progress("rollout", self.step, cfg.steps)
        sampled, episodes, sampling_stats = self.collect()
        t1 = time.perf_counter()
        if self.controller is not None:
            self.controller.update_batch(self.family, [
                (ep.task.difficulty, float(ep.success), ep.task.group) for ep in sampled
                if ep.infra_error is None and ep.task.difficulty is not None
            ])  # fmt: skip
        first = sampled[: cfg.tasks_per_step * cfg.group_size]  # the first round: the unfiltered task mix
        valid = [ep for ep in first if ep.infra_error is None]
        usable = self.usable(episodes)
        per_turn, gstats, informative = self.advantages(usable)
        if cfg.dynamic_sampling:  # the no-signal meter is about the task mix, before any filtering
            gstats["zero_var_frac"] = self.advantages(self.usable(first))[1]["zero_var_frac"]
        self._progress("learn", self.step, cfg.steps)
        learn_stats = self.learn(usable, per_turn, n_generated=len(first), informative=informative)
        t2 = time.perf_counter()
        self.step += 1
        by_diff: dict[str, list[float]] = defaultdict(list)
        for ep in valid:
            by_diff[f"{ep.task.difficulty:g}" if ep.task.difficulty is not None else "default"].append(ep.success)
        sampled_tokens = sum(ep.action_tokens for ep in sampled)
        metrics: dict[str, Any] = {
            "step": self.step,
            "success": float(np.mean([ep.success for ep in valid])) if valid else float("nan"),
            "return": float(np.mean([ep.return_ for ep in valid])) if valid else float("nan"),
            "entropy": sampler_entropy([ep for ep in sampled if ep.infra_error is None]),
            **gstats,
            **learn_stats,
            **sampling_stats,
            "episodes": len(sampled),
            "infra_dropped": len(first) - len(valid),
            "truncated_frac": float(np.mean([ep.truncated for ep in valid])) if valid else 0.0,
            "turns_per_episode": float(np.mean([len(ep.turns) for ep in valid])) if valid else 0.0,
            "action_tokens_per_episode": sampled_tokens / max(len(sampled), 1),
            "rollout_s": t1 - t0,
            "learn_s": t2 - t1,
            "rollout_tokens_per_s": sampled_tokens / max(t1 - t0, 1e-9),
            "learn_tokens_per_s": learn_stats.get("seq_tokens", 0.0) / max(t2 - t1, 1e-9),
            "tokens_per_s": sampled_tokens / max(t2 - t0, 1e-9),
            "success_by_difficulty": {k: float(np.mean(v)) for k, v in sorted(by_diff.items())},
        }
        if self.controller is not None:
            metrics["curriculum"] = self.controller.summary()
        with self.metrics_path.open("a") as f:
            f.write(json.dumps(_finite(metrics), default=_json_default) + "\n")
        if cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0:
            self.save_checkpoint()
        return metrics

    def evaluate_heldout(self) -> list[HeldOutResult]:
        """Score the held-out seeds now (no learning, no recording) and append the results to heldout.jsonl."""
        cfg = self.config
        results = heldout_success(
            self.policy, self.envs, cfg.heldout, cfg.rollout, cfg.difficulty, self.step,
            on_progress=lambda done, total: self._progress("held-out", done, total),
        )  # fmt: skip
        with self.heldout_path.open("a") as f:
            for r in results:
                f.write(json.dumps(_finite(r.model_dump())) + "\n")
        return results

    def _progress(self, phase: str, done: int, total: int) -> None:
        if self.on_progress is not None:
            self.on_progress(phase, done, total)

    def train(
        self, on_step: Callable[[dict[str, Any]], None] | None = None, on_progress: ProgressFn | None = None
    ) -> list[dict[str, Any]]:
        """Held-out pass (if configured), the steps, a final checkpoint and held-out pass. `on_step(metrics)`
        after each step; `on_progress` (see `ProgressFn`) as phases start and held-out chunks finish."""
        if on_progress is not None:
            self.on_progress = on_progress
        history = []
        heldout = self.config.heldout.episodes > 0
        if heldout and self.step == 0:
            self.evaluate_heldout()
        while self.step < self.config.steps:
            metrics = self.train_step()
            history.append(metrics)
            if on_step is not None:
                on_step(metrics)
        self.save_checkpoint()
        if heldout and not any(r.step == self.step for r in read_heldout(self.run_dir)):
            self.evaluate_heldout()
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        return history

    # ----- checkpoints -------------------------------------------------------------------------------
    def save_checkpoint(self) -> Path:
        """Model (or LoRA adapter) weights, optimizer, step, every RNG state (CUDA's too) and the length of
        the trajectory file at this step, written atomically."""
        import torch

        if self.writer is not None:
            self.writer.flush()
        ckpt = self.run_dir / "checkpoint"
        tmp = self.run_dir / "checkpoint.tmp"
        tmp.mkdir(exist_ok=True)
        trainable = {k: v.detach().cpu() for k, v in self.model.named_parameters() if v.requires_grad}
        torch.save(
            {
                "step": self.step,
                "params": trainable,
                "optimizer": self.optimizer.state_dict(),
                "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
                "python_rng": random.getstate(),
                "numpy_rng": self.rng.bit_generator.state,
                "curriculum": self.controller.state_dict() if self.controller else None,
                "trajectory_bytes": self.trajectories_path.stat().st_size if self.trajectories_path.is_file() else 0,
            },
            tmp / "state.pt",
        )
        if ckpt.exists():
            old = self.run_dir / "checkpoint.old"
            ckpt.rename(old)
            tmp.rename(ckpt)
            for f in old.iterdir():
                f.unlink()
            old.rmdir()
        else:
            tmp.rename(ckpt)
        return ckpt

    def load_checkpoint(self) -> bool:
        """Resume from `RUN_DIR/checkpoint` when present: metrics, held-out rows and trajectories past the
        checkpoint are discarded (they will be produced again). Without a checkpoint the run starts over, so
        what a crashed earlier attempt wrote is discarded too."""
        import torch

        path = self.run_dir / "checkpoint" / "state.pt"
        if not path.is_file():
            for stale in (self.metrics_path, self.heldout_path, self.trajectories_path):
                stale.unlink(missing_ok=True)
            return False
        state = torch.load(path, map_location="cpu", weights_only=False)
        _copy_params(self.model, state["params"])
        self.optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        if state.get("cuda_rng") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        if state.get("python_rng") is not None:
            random.setstate(state["python_rng"])
        self.rng.bit_generator.state = state["numpy_rng"]
        if self.controller is not None and state.get("curriculum"):
            self.controller.load_state_dict(state["curriculum"])
        self.step = int(state["step"])
        for rows in (self.metrics_path, self.heldout_path):
            if rows.is_file():
                lines = [ln for ln in rows.read_text().splitlines() if ln.strip()]
                kept = [ln for ln in lines if json.loads(ln).get("step", 0) <= self.step]
                rows.write_text("".join(ln + "\n" for ln in kept))
        if self.trajectories_path.is_file() and "trajectory_bytes" in state:
            with self.trajectories_path.open("r+b") as f:
                f.truncate(int(state["trajectory_bytes"]))
        return True

    def export(self, directory: str | Path) -> Path:
        """Save the trained model (or adapter) with its tokenizer for `HFPolicy`/`envgym eval`."""
        out = Path(directory)
        self.model.save_pretrained(out)
        self.policy.tokenizer.save_pretrained(out)
        return out


def _finite(obj: Any) -> Any:
    """NaN/inf become null so metrics.jsonl stays strict JSON."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    return obj


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
