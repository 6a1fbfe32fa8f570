"""Episodes to padded tensors for the training forward.

Why its own module: the trainer and self-distillation both pack episodes, and the one-position label shift
(logits at t predict token t+1) must be done in exactly one place.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from envgym.agents.rollout import TokenEpisode

if TYPE_CHECKING:
    import torch


def pack_episodes(
    episodes: Sequence[TokenEpisode], turn_advantages: Sequence[Sequence[float]], pad_id: int
) -> dict[str, torch.Tensor]:
    """Right-padded batch; `label_mask[b, t]` marks label positions (token t+1) that are sampled actions;
    `sampled_logprobs` holds the sampler's own log-probs there."""
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
