"""Trajectory-level RL with full-episode credit, in one readable file (CleanRL spirit).

One step: sample `tasks_per_step` task seeds (difficulty fixed or from the curriculum), run a group of
`group_size` episodes per seed (token-in/token-out rollouts, every episode recorded), turn each episode's
return into an advantage against its own group, broadcast it to every sampled action token of every turn,
and take a PPO-clipped policy-gradient step on the token-level loss divided by a constant. Why these choices:
see /work/shared/NOTES-RL.md §8-§11 (group baselines, Dr.GRPO's length bias, k2 for reverse KL, dropping
infra errors, filtering zero-variance groups).

Optional (`sdpo_weight > 0`, off by default): feedback-conditioned self-distillation (§11.6). The same model,
with no gradient, re-scores each episode's sampled action ids behind a teacher context (a feedback message
prepended to the episode's own prompt ids); the per-token advantage becomes
`(1 − w)·A_traj + w·(log q − log π_old)`.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import random
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import yaml
from pydantic import BaseModel, Field

from envgym.agents.policies.hf import HFPolicy, HFPolicyConfig
from envgym.agents.recording import BackgroundTrajectoryWriter
from envgym.agents.rollout import RolloutConfig, TaskSpec, TokenEpisode, rollout
from envgym.curriculum import CurriculumConfig, DifficultyController, family_of

if TYPE_CHECKING:
    import gymnasium as gym
    import torch

Estimator = Literal["rloo", "grpo", "drgrpo", "lite", "rebn"]


# ----- configuration -----------------------------------------------------------------------------------
class TrainConfig(BaseModel):
    """Everything a run needs; load from YAML with `TrainConfig.from_yaml`."""

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
    advantage: Estimator = "rloo"
    gamma: float = Field(default=1.0, ge=0.0, le=1.0, description="discount for rebn")
    lr: float = 1e-5
    weight_decay: float = 0.0
    ppo_epochs: int = Field(default=1, ge=1, description="passes over each batch; >1 makes the clip active")
    minibatches: int = Field(default=1, ge=1, description="optimizer steps per pass (episodes split evenly)")
    clip_low: float = 0.2
    clip_high: float = 0.28
    kl_beta: float = Field(default=0.0, ge=0.0, description="weight of k2 = ½(log π − log π_ref)²")
    filter_zero_variance: bool = True
    truncated: Literal["mask", "score"] = Field(default="score", description="drop truncated episodes or keep")
    truncated_reward: float | None = Field(default=None, description="with 'score': override their return")
    loss_tokens_per_episode: float = Field(default=64.0, gt=0, description="loss ÷ (episodes × this constant)")
    micro_batch_size: int = Field(default=16, ge=1, description="episodes per forward (gradient accumulation)")
    max_grad_norm: float = 1.0
    shuffle_rewards: bool = Field(default=False, description="control: permute returns across the batch")
    flip_advantages: bool = Field(default=False, description="control: negate every advantage")
    record_trajectories: bool = True
    checkpoint_every: int = Field(default=0, ge=0, description="0: only at the end")
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

    @classmethod
    def from_yaml(cls, path: str | Path) -> TrainConfig:
        data = yaml.safe_load(Path(path).read_text()) or {}
        return cls.model_validate(data)


# ----- advantages (pure functions over episodes) ---------------------------------------------------------
def group_advantages(
    returns: Sequence[float], groups: Sequence[int], estimator: Estimator = "rloo", eps: float = 1e-6
) -> list[float]:
    """One advantage per episode; `groups[i]` names the task seed episode i was run on (std: population)."""
    r = np.asarray(returns, dtype=np.float64)
    g = np.asarray(groups)
    adv = np.zeros_like(r)
    batch_std = float(r.std()) if len(r) else 0.0
    for key in np.unique(g):
        idx = np.nonzero(g == key)[0]
        rg = r[idx]
        mean, std, n = rg.mean(), rg.std(), len(rg)
        if estimator == "rloo":
            adv[idx] = 0.0 if n < 2 else rg - (rg.sum() - rg) / (n - 1)
        elif estimator == "grpo":
            adv[idx] = 0.0 if std < eps else (rg - mean) / (std + eps)
        elif estimator == "drgrpo":
            adv[idx] = rg - mean
        elif estimator == "lite":
            adv[idx] = 0.0 if batch_std < eps else (rg - mean) / (batch_std + eps)
        else:
            raise ValueError(f"{estimator!r} is not an episode-level estimator; use rebn_advantages")
    return [float(a) for a in adv]


def rebn_advantages(
    turn_rewards: Sequence[Sequence[float]], gamma: float = 1.0, eps: float = 1e-6
) -> list[list[float]]:
    """Per-turn returns-to-go G_t = Σ_k γ^(k−t) r_k, normalised over every turn in the batch (ReBN)."""
    togo: list[list[float]] = []
    for rewards in turn_rewards:
        g, out = 0.0, []
        for reward in reversed(rewards):
            g = float(reward) + gamma * g
            out.append(g)
        togo.append(out[::-1])
    flat = np.asarray([x for t in togo for x in t], dtype=np.float64)
    if flat.size == 0:
        return [[] for _ in togo]
    mean, std = flat.mean(), flat.std()
    return [[0.0 if std < eps else (x - mean) / (std + eps) for x in t] for t in togo]


# ----- token-level pieces --------------------------------------------------------------------------------
def pack_episodes(
    episodes: Sequence[TokenEpisode], turn_advantages: Sequence[Sequence[float]], pad_id: int
) -> dict[str, torch.Tensor]:
    """Right-padded batch; `label_mask[b, t]` marks label positions (token t+1) that are sampled actions."""
    import torch

    flat = [ep.flatten() for ep in episodes]
    width = max(len(ids) for ids, _, _ in flat)
    n = len(episodes)
    ids_t = torch.full((n, width), pad_id, dtype=torch.long)
    attn = torch.zeros((n, width), dtype=torch.long)
    mask = torch.zeros((n, width), dtype=torch.bool)
    adv = torch.zeros((n, width), dtype=torch.float32)
    sampled = torch.zeros((n, width), dtype=torch.float32)
    for b, ((ids, amask, turn_idx), ep) in enumerate(zip(flat, episodes, strict=True)):
        L = len(ids)
        ids_t[b, :L] = torch.tensor(ids)
        attn[b, :L] = 1
        mask[b, :L] = torch.tensor(amask)
        adv[b, :L] = torch.tensor([turn_advantages[b][k] if k >= 0 else 0.0 for k in turn_idx])
        lps = [lp for t in ep.turns for lp in t.action_logprobs]
        sampled[b, :L][torch.tensor(amask)] = torch.tensor(lps, dtype=torch.float32)
    # logits at t predict token t+1: every per-token quantity moves to label positions 1..T-1.
    return {
        "input_ids": ids_t,
        "attention_mask": attn,
        "labels": ids_t[:, 1:],
        "label_mask": mask[:, 1:],
        "advantages": adv[:, 1:],
        "sampled_logprobs": sampled[:, 1:],
    }


def label_logprobs(
    logits: torch.Tensor, labels: torch.Tensor, label_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """log π(label) and the policy entropy at masked label positions (zeros elsewhere). `logits` is [B, T, V]
    for the full sequence; only rows predicting an action token are normalised (saves memory)."""
    import torch

    shifted = logits[:, :-1]
    rows = shifted[label_mask].float()
    logp_rows = torch.log_softmax(rows, dim=-1)
    chosen = logp_rows.gather(-1, labels[label_mask][:, None])[:, 0]
    entropy = -(logp_rows.exp() * logp_rows).sum(-1)
    logp = torch.zeros(labels.shape, dtype=chosen.dtype, device=chosen.device).masked_scatter(label_mask, chosen)
    ent = torch.zeros(labels.shape, dtype=chosen.dtype, device=chosen.device).masked_scatter(
        label_mask, entropy.detach()
    )
    return logp, ent


def policy_loss_sum(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    label_mask: torch.Tensor,
    clip_low: float = 0.2,
    clip_high: float = 0.28,
    ref_logp: torch.Tensor | None = None,
    kl_beta: float = 0.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Σ over masked tokens of the clipped surrogate (+ β·k2); values at unmasked positions never matter."""
    import torch

    zero = torch.zeros_like(logp)
    logp = torch.where(label_mask, logp, zero)
    old = torch.where(label_mask, old_logp, zero)
    adv = torch.where(label_mask, advantages, zero)
    ratio = torch.exp(logp - old)
    clipped = torch.clamp(ratio, 1 - clip_low, 1 + clip_high)
    per_token = -torch.minimum(ratio * adv, clipped * adv)
    stats = {"clipped": ((ratio - clipped).abs() > 1e-8) & label_mask}
    if ref_logp is not None:
        diff = logp - torch.where(label_mask, ref_logp, zero)
        k2 = 0.5 * diff**2
        stats["k2"] = torch.where(label_mask, k2, zero).detach()
        stats["k1"] = torch.where(label_mask, diff, zero).detach()
        if kl_beta > 0:
            per_token = per_token + kl_beta * k2
    return torch.where(label_mask, per_token, zero).sum(), stats


# ----- feedback-conditioned self-distillation (SDPO-style, NOTES-RL §11.6) ------------------------------
def sdpo_feedback_text(
    episode: TokenEpisode,
    siblings: Sequence[TokenEpisode] = (),
    template: str = "Feedback on an earlier attempt: {feedback}",
    sibling_template: str | None = " A successful attempt: {actions}",
) -> str:
    """The teacher's extra context for one episode: its final observation (the feedback the policy saw last,
    or never saw when the episode ended on it), plus the actions of the first successful sibling (same group,
    another episode) when `sibling_template` is given."""
    turns = episode.record.turns if episode.record is not None else []
    text = template.format(feedback=turns[-1].observation if turns else "")
    if sibling_template is not None:
        for sib in siblings:
            if sib is not episode and sib.success and sib.record is not None and sib.record.turns:
                text += sibling_template.format(actions=" ".join(t.action for t in sib.record.turns))
                break
    return text


def teacher_episodes(episodes: Sequence[TokenEpisode], prefixes: Sequence[Sequence[int]]) -> list[TokenEpisode]:
    """The same episodes behind a teacher prefix: `prefix + prompt_ids`, sampled action and observation ids
    unchanged, so `flatten()` masks exactly the same action tokens, shifted right by len(prefix)."""
    return [
        dataclasses.replace(ep, prompt_ids=list(prefix) + list(ep.prompt_ids))
        for ep, prefix in zip(episodes, prefixes, strict=True)
    ]


def pack_teacher(
    episodes: Sequence[TokenEpisode], prefixes: Sequence[Sequence[int]], pad_id: int
) -> dict[str, torch.Tensor]:
    """`pack_episodes` of the teacher episodes, keys prefixed `teacher_` (advantages are irrelevant here)."""
    teach = teacher_episodes(episodes, prefixes)
    packed = pack_episodes(teach, [[0.0] * len(ep.turns) for ep in teach], pad_id)
    return {f"teacher_{k}": packed[k] for k in ("input_ids", "attention_mask", "labels", "label_mask")}


def sdpo_advantages(teacher_logp: torch.Tensor, student_logp: torch.Tensor, label_mask: torch.Tensor) -> torch.Tensor:
    """A_SD = log q − log π per masked token, detached (a stop-gradient advantage, never a loss on q)."""
    import torch

    diff = teacher_logp.detach() - student_logp.detach()
    return torch.where(label_mask, diff, torch.zeros_like(diff))


def mix_advantages(traj: torch.Tensor, sd: torch.Tensor, label_mask: torch.Tensor, weight: float) -> torch.Tensor:
    """A = (1 − w)·A_traj + w·A_SD on masked tokens (w = `sdpo_weight` = 1 − λ of NOTES-RL §11.6)."""
    import torch

    mixed = (1.0 - weight) * traj + weight * sd
    return torch.where(label_mask, mixed, torch.zeros_like(mixed))


# ----- the trainer ---------------------------------------------------------------------------------------
def make_env(env_id: str, env_kwargs: dict[str, Any] | None = None) -> gym.Env:
    import gymnasium as gym

    import envgym  # noqa: F401  (registers ids)
    from envgym.agents import toy

    toy.register_toy_envs()
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


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


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
        self.rng = np.random.default_rng(config.seed)
        self.step = 0
        self.writer = (
            BackgroundTrajectoryWriter(self.run_dir / "trajectories.jsonl") if config.record_trajectories else None
        )
        (self.run_dir / "config.yaml").write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
        self.metrics_path = self.run_dir / "metrics.jsonl"
        self.load_checkpoint()

    # ----- data --------------------------------------------------------------------------------------
    def sample_tasks(self) -> list[TaskSpec]:
        cfg = self.config
        tasks = []
        for g in range(cfg.tasks_per_step):
            seed = int(cfg.seed * 1_000_003 + self.step * cfg.tasks_per_step + g)
            difficulty = self.controller.sample(self.family) if self.controller else cfg.difficulty
            tasks += [TaskSpec(seed=seed, difficulty=difficulty, group=g) for _ in range(cfg.group_size)]
        return tasks

    def usable(self, episodes: list[TokenEpisode]) -> list[TokenEpisode]:
        """Drop infra errors (never a fake zero) and, with truncated='mask', truncated episodes."""
        keep = [ep for ep in episodes if ep.infra_error is None and ep.turns]
        if self.config.truncated == "mask":
            keep = [ep for ep in keep if not ep.truncated]
        elif self.config.truncated_reward is not None:
            for ep in keep:
                if ep.truncated:
                    ep.return_ = self.config.truncated_reward
        return keep

    def advantages(self, episodes: list[TokenEpisode]) -> tuple[list[list[float]], dict[str, float], list[bool]]:
        """Per episode, per turn advantages (constant over turns except for rebn), group statistics, and
        whether each episode's group has any reward variance."""
        cfg = self.config
        returns = [ep.return_ for ep in episodes]
        if cfg.shuffle_rewards:
            returns = list(self.rng.permutation(np.asarray(returns)))
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
        if cfg.advantage == "rebn":
            turn_rewards = [[t.reward for t in ep.turns] for ep in episodes]
            if cfg.shuffle_rewards:  # move whole episodes' reward sequences around
                order = self.rng.permutation(len(turn_rewards))
                turn_rewards = [turn_rewards[i][: len(ep.turns)] + [0.0] * (len(ep.turns) - len(turn_rewards[i]))
                                for i, ep in zip(order, episodes, strict=True)]  # fmt: skip
            per_turn = rebn_advantages(turn_rewards, cfg.gamma)
        else:
            adv = group_advantages(returns, groups, cfg.advantage)
            per_turn = [[a] * len(ep.turns) for a, ep in zip(adv, episodes, strict=True)]
        if cfg.flip_advantages:
            per_turn = [[-a for a in t] for t in per_turn]
        return per_turn, stats, informative

    # ----- learning ----------------------------------------------------------------------------------
    def _autocast(self) -> Any:
        return self.policy._autocast()

    def _forward_logp(self, model: Any, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        with self._autocast():
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        return label_logprobs(logits, batch["labels"], batch["label_mask"])

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
        sdpo = cfg.sdpo_weight > 0
        prefixes = self.sdpo_prefix_ids(episodes) if sdpo and keep else []
        updates: list[list[dict[str, torch.Tensor]]] = []
        for part in splits:
            micro = [part[i : i + cfg.micro_batch_size] for i in range(0, len(part), cfg.micro_batch_size)]
            packed = [
                pack_episodes([episodes[i] for i in idx], [per_turn[i] for i in idx], self.policy.pad_id)
                for idx in micro
            ]
            if sdpo:  # the same episodes behind their teacher prefixes, one teacher batch per micro-batch
                for b, idx in zip(packed, micro, strict=True):
                    eps = [episodes[i] for i in idx]
                    b.update(pack_teacher(eps, [prefixes[i] for i in idx], self.policy.pad_id))
            updates.append([{k: v.to(self.device) for k, v in b.items()} for b in packed])
        batches = [b for u in updates for b in u]
        tokens = sum(int(b["label_mask"].sum()) for b in batches)
        seq_tokens = sum(int(b["attention_mask"].sum()) for b in batches)
        if not batches:  # every group had zero variance: nothing to learn from this batch
            empty = {"loss": 0.0, "grad_norm": 0.0, "entropy": float("nan"), "clip_frac": 0.0, "logprob_gap": 0.0}
            return (
                {**empty, "trained_episodes": 0.0, "trained_tokens": 0.0, "seq_tokens": 0.0}
                | ({"kl": float("nan"), "kl_k2": float("nan")} if cfg.kl_beta > 0 else {})
                | ({"sdpo_adv": float("nan"), "sdpo_abs": float("nan")} if sdpo else {})
            )
        self.model.train()
        off_policy = cfg.ppo_epochs > 1 or cfg.minibatches > 1
        with torch.no_grad():  # π_old from the training forward itself (same dtype and padding)
            for b in batches:
                if off_policy:
                    b["old_logprobs"] = self._forward_logp(self.model, b)[0].detach()
                if cfg.kl_beta > 0:
                    b["ref_logprobs"] = self._reference_logp(b)
                if sdpo:  # teacher θ̄ = the current weights, before this batch's updates
                    b["teacher_logprobs"] = self._teacher_logp(b)
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
                    if sdpo:  # A_SD against π_old (the student as sampled/scored before any update), detached
                        sd = sdpo_advantages(b["teacher_logprobs"], old_logp, m)
                        adv = mix_advantages(adv, sd, m, cfg.sdpo_weight)
                        if epoch == 0:
                            sums["sd"] += float(sd[m].sum())
                            sums["sd_abs"] += float(sd[m].abs().sum())
                    loss_sum, stats = policy_loss_sum(
                        logp, old_logp, adv, m, cfg.clip_low, cfg.clip_high, b.get("ref_logprobs"), cfg.kl_beta,
                    )  # fmt: skip
                    loss = loss_sum / denominator
                    loss.backward()
                    sums["loss"] += float(loss.detach())
                    sums["clipped"] += float(stats["clipped"].sum())
                    if epoch == 0:
                        sums["entropy"] += float(ent[m].sum())
                        scored = b["old_logprobs"] if off_policy else logp.detach()  # before any update
                        sums["gap"] += float((scored - b["sampled_logprobs"])[m].abs().sum())
                        if "k2" in stats:
                            sums["k1"] += float(stats["k1"].sum())
                            sums["k2"] += float(stats["k2"].sum())
                grad_norms.append(float(torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)))
                self.optimizer.step()
        n = max(tokens, 1)
        out = {
            "loss": sums["loss"] / cfg.ppo_epochs,
            "grad_norm": float(np.mean(grad_norms)),
            "entropy": sums["entropy"] / n,
            "clip_frac": sums["clipped"] / (n * cfg.ppo_epochs),
            "logprob_gap": sums["gap"] / n,
            "updates": float(len(grad_norms)),
            "trained_episodes": float(len(keep)),
            "trained_tokens": float(tokens),
            "seq_tokens": float(seq_tokens),
        }
        if cfg.kl_beta > 0:
            out.update(kl=sums["k1"] / n, kl_k2=sums["k2"] / n)
        if sdpo:
            out.update(sdpo_adv=sums["sd"] / n, sdpo_abs=sums["sd_abs"] / n)
        return out

    def _reference_logp(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.ref_model is not None:
            return self._forward_logp(self.ref_model, batch)[0]
        with self.model.disable_adapter():  # LoRA: the frozen base model is the reference
            return self._forward_logp(self.model, batch)[0]

    # ----- self-distillation (only called when sdpo_weight > 0) ----------------------------------------
    def sdpo_prefix_ids(self, episodes: Sequence[TokenEpisode]) -> list[list[int]]:
        """Per episode, the ids of a user message carrying its feedback (rendered alone with the chat
        template), to be prepended to its prompt ids. Siblings are episodes of the same group."""
        cfg = self.config
        groups: dict[int, list[TokenEpisode]] = defaultdict(list)
        for ep in episodes:
            groups[ep.task.group].append(ep)
        out = []
        for ep in episodes:
            text = sdpo_feedback_text(
                ep, groups[ep.task.group], cfg.sdpo_feedback_template,
                cfg.sdpo_sibling_template if cfg.sdpo_sibling else None,
            )  # fmt: skip
            rendered = self.policy._render([{"role": "user", "content": text}], add_generation_prompt=False)
            out.append(self.policy._encode_text(rendered))
        return out

    def _teacher_logp(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """log q of the sampled action ids behind the teacher prefix (no grad), moved to the student's label
        positions. Both masks select the same tokens in the same order, which is checked."""
        import torch

        teacher = {k: batch[f"teacher_{k}"] for k in ("input_ids", "attention_mask", "labels", "label_mask")}
        with torch.no_grad():
            logp = self._forward_logp(self.model, teacher)[0].detach()
        tmask, smask = teacher["label_mask"], batch["label_mask"]
        if not torch.equal(teacher["labels"][tmask], batch["labels"][smask]):
            raise RuntimeError("teacher and student action ids differ: token-in/token-out broken")
        out = torch.zeros(smask.shape, dtype=logp.dtype, device=logp.device)
        return out.masked_scatter(smask, logp[tmask])

    def self_distillation_advantages(self, episodes: Sequence[TokenEpisode]) -> list[list[float]]:
        """A_SD = log q − log π per sampled action token, per episode, with the current weights (for tests,
        probes and debugging; `learn` computes the same thing per micro-batch)."""
        import torch

        eps = list(episodes)
        if not eps:
            return []
        b = pack_episodes(eps, [[0.0] * len(ep.turns) for ep in eps], self.policy.pad_id)
        b.update(pack_teacher(eps, self.sdpo_prefix_ids(eps), self.policy.pad_id))
        b = {k: v.to(self.device) for k, v in b.items()}
        with torch.no_grad():
            student = self._forward_logp(self.model, b)[0]
        sd = sdpo_advantages(self._teacher_logp(b), student, b["label_mask"]).cpu()
        mask = b["label_mask"].cpu()
        return [sd[i][mask[i]].tolist() for i in range(len(eps))]

    # ----- loop --------------------------------------------------------------------------------------
    def train_step(self) -> dict[str, Any]:
        cfg = self.config
        tasks = self.sample_tasks()
        t0 = time.perf_counter()
        episodes = rollout(self.policy, self.envs, tasks, cfg.rollout, self.writer)
        t1 = time.perf_counter()
        if self.controller is not None:
            self.controller.update_batch(self.family, [
                (ep.task.difficulty, float(ep.success), ep.task.group) for ep in episodes
                if ep.infra_error is None and ep.task.difficulty is not None
            ])  # fmt: skip
        valid = [ep for ep in episodes if ep.infra_error is None]
        usable = self.usable(episodes)
        per_turn, gstats, informative = self.advantages(usable)
        learn_stats = self.learn(usable, per_turn, n_generated=len(episodes), informative=informative)
        t2 = time.perf_counter()
        self.step += 1
        by_diff: dict[str, list[float]] = defaultdict(list)
        for ep in valid:
            by_diff[f"{ep.task.difficulty:g}" if ep.task.difficulty is not None else "default"].append(ep.success)
        sampled_tokens = sum(ep.action_tokens for ep in episodes)
        metrics: dict[str, Any] = {
            "step": self.step,
            "success": float(np.mean([ep.success for ep in valid])) if valid else float("nan"),
            "return": float(np.mean([ep.return_ for ep in valid])) if valid else float("nan"),
            **gstats,
            **learn_stats,
            "episodes": len(episodes),
            "infra_dropped": len(episodes) - len(valid),
            "truncated_frac": float(np.mean([ep.truncated for ep in valid])) if valid else 0.0,
            "turns_per_episode": float(np.mean([len(ep.turns) for ep in valid])) if valid else 0.0,
            "action_tokens_per_episode": sampled_tokens / max(len(episodes), 1),
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

    def train(self, on_step: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
        history = []
        while self.step < self.config.steps:
            metrics = self.train_step()
            history.append(metrics)
            if on_step is not None:
                on_step(metrics)
        self.save_checkpoint()
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        return history

    # ----- checkpoints -------------------------------------------------------------------------------
    def save_checkpoint(self) -> Path:
        """Model (or LoRA adapter) weights, optimizer, step and RNG states, written atomically."""
        import torch

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
                "numpy_rng": self.rng.bit_generator.state,
                "curriculum": self.controller.state_dict() if self.controller else None,
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
        """Resume from `RUN_DIR/checkpoint` when present (metrics past the checkpoint are discarded)."""
        import torch

        path = self.run_dir / "checkpoint" / "state.pt"
        if not path.is_file():
            return False
        state = torch.load(path, map_location="cpu", weights_only=False)
        _copy_params(self.model, state["params"])
        self.optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        self.rng.bit_generator.state = state["numpy_rng"]
        if self.controller is not None and state.get("curriculum"):
            self.controller.load_state_dict(state["curriculum"])
        self.step = int(state["step"])
        if self.metrics_path.is_file():
            lines = [ln for ln in self.metrics_path.read_text().splitlines() if ln.strip()]
            kept = [ln for ln in lines if json.loads(ln).get("step", 0) <= self.step]
            self.metrics_path.write_text("".join(ln + "\n" for ln in kept))
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
