"""The per-token policy objective: PPO clip with decoupled bounds, k2 KL, truncated importance sampling and an
optional entropy bonus, summed over action tokens (the caller divides by a constant).

Why each piece (NOTES-RL §8, §10): clip-higher (ε_high > ε_low) lets low-probability tokens with a positive
advantage grow, against entropy collapse; k2 = ½(log π − log π_ref)² gives the reverse-KL gradient; truncated
IS reweights by π_old/π_sampler (capped) when the sampler is not the trainer's own forward (an inference
server, another dtype), so the update stays an estimate for the trainer's policy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def truncated_is_weights(
    old_logp: torch.Tensor, sampled_logp: torch.Tensor, label_mask: torch.Tensor, cap: float
) -> torch.Tensor:
    """min(π_old / π_sampler, cap) per action token (1 elsewhere), no gradient."""
    import torch

    ratio = torch.exp((old_logp - sampled_logp).detach()).clamp(max=cap)
    return torch.where(label_mask, ratio, torch.ones_like(ratio))


def policy_loss_sum(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    label_mask: torch.Tensor,
    clip_low: float = 0.2,
    clip_high: float = 0.28,
    ref_logp: torch.Tensor | None = None,
    kl_beta: float = 0.0,
    is_weights: torch.Tensor | None = None,
    entropy: torch.Tensor | None = None,
    entropy_coef: float = 0.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Σ over masked tokens of the clipped surrogate (× IS weight) (+ β·k2) (− c·entropy); values at
    unmasked positions never matter. `stats["clipped"]` marks tokens whose gradient the clip zeroed: ratio
    above 1+ε_high with a positive advantage, or below 1−ε_low with a negative one."""
    import torch

    zero = torch.zeros_like(logp)
    logp = torch.where(label_mask, logp, zero)
    old = torch.where(label_mask, old_logp, zero)
    adv = torch.where(label_mask, advantages, zero)
    ratio = torch.exp(logp - old)
    clipped = torch.clamp(ratio, 1 - clip_low, 1 + clip_high)
    per_token = -torch.minimum(ratio * adv, clipped * adv)
    if is_weights is not None:
        per_token = per_token * is_weights
    zeroed = ((adv > 0) & (ratio > 1 + clip_high)) | ((adv < 0) & (ratio < 1 - clip_low))
    stats = {"clipped": zeroed.detach() & label_mask}
    if ref_logp is not None:
        diff = logp - torch.where(label_mask, ref_logp, zero)
        k2 = 0.5 * diff**2
        stats["k2"] = torch.where(label_mask, k2, zero).detach()
        stats["k1"] = torch.where(label_mask, diff, zero).detach()
        if kl_beta > 0:
            per_token = per_token + kl_beta * k2
    if entropy is not None and entropy_coef > 0:
        per_token = per_token - entropy_coef * entropy
    return torch.where(label_mask, per_token, zero).sum(), stats
