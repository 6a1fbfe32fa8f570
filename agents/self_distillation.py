"""Feedback-conditioned self-distillation (SDPO-style, NOTES-RL §11.6), off by default.

The same model, with no gradient, re-scores each episode's sampled action ids behind a teacher context (a
user message carrying the episode's feedback, plus a successful sibling's actions, prepended to the episode's
own prompt ids); the per-token advantage becomes `(1 − w)·A_traj + w·(log q − log π_old)`. Why a stop-gradient
advantage and not a loss on q: the teacher is the policy itself, so it must not be pulled towards the student.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from envgym.agents.batching import pack_episodes
from envgym.agents.rollout import TokenEpisode

if TYPE_CHECKING:
    import torch

Scorer = Callable[[Any, dict[str, "torch.Tensor"]], "torch.Tensor"]
"""(model, packed batch) -> log-probs at its action label positions."""

TEACHER_KEYS = ("input_ids", "attention_mask", "labels", "label_mask")


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
    return {f"teacher_{k}": packed[k] for k in TEACHER_KEYS}


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


class SelfDistillation:
    """Builds teacher prefixes with the policy's chat template and scores the teacher with `score`."""

    def __init__(
        self,
        policy: Any,
        score: Scorer,
        feedback_template: str,
        sibling_template: str | None,
    ) -> None:
        self.policy = policy
        self.score = score
        self.feedback_template = feedback_template
        self.sibling_template = sibling_template

    def prefix_ids(self, episodes: Sequence[TokenEpisode]) -> list[list[int]]:
        """Per episode, the ids of a user message carrying its feedback (rendered alone with the chat
        template), to be prepended to its prompt ids. Siblings are episodes of the same group."""
        groups: dict[int, list[TokenEpisode]] = defaultdict(list)
        for ep in episodes:
            groups[ep.task.group].append(ep)
        out = []
        for ep in episodes:
            text = sdpo_feedback_text(ep, groups[ep.task.group], self.feedback_template, self.sibling_template)
            rendered = self.policy.render([{"role": "user", "content": text}], add_generation_prompt=False)
            out.append(self.policy.encode_text(rendered))
        return out

    def teacher_logp(self, model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """log q of the sampled action ids behind the teacher prefix (no grad), moved to the student's label
        positions. Both masks select the same tokens in the same order, which is checked."""
        import torch

        teacher = {k: batch[f"teacher_{k}"] for k in TEACHER_KEYS}
        with torch.no_grad():
            logp = self.score(model, teacher).detach()
        tmask, smask = teacher["label_mask"], batch["label_mask"]
        if not torch.equal(teacher["labels"][tmask], batch["labels"][smask]):
            raise RuntimeError("teacher and student action ids differ: token-in/token-out broken")
        out = torch.zeros(smask.shape, dtype=logp.dtype, device=logp.device)
        return out.masked_scatter(smask, logp[tmask])

    def advantages(self, model: Any, episodes: Sequence[TokenEpisode], device: Any) -> list[list[float]]:
        """A_SD = log q − log π per sampled action token, per episode, with the model's current weights (for
        tests, probes and debugging; the trainer computes the same thing per micro-batch)."""
        import torch

        eps = list(episodes)
        if not eps:
            return []
        b = pack_episodes(eps, [[0.0] * len(ep.turns) for ep in eps], self.policy.pad_id)
        b.update(pack_teacher(eps, self.prefix_ids(eps), self.policy.pad_id))
        b = {k: v.to(device) for k, v in b.items()}
        with torch.no_grad():
            student = self.score(model, b)
        sd = sdpo_advantages(self.teacher_logp(model, b), student, b["label_mask"]).cpu()
        mask = b["label_mask"].cpu()
        return [sd[i][mask[i]].tolist() for i in range(len(eps))]
