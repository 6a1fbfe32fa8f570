"""Log-probs of the sampled action tokens under a model: the training forward.

Why logits only at action rows: a training batch is mostly prompt and observation tokens, and full-vocabulary
logits at every position (B × T × V floats, V ≈ 150k for current models) dominate memory. We run the
decoder, pick the hidden states that predict an action token (label positions, shifted by one) and apply the
output head to those rows only. Why divide by T: the sampler samples from softmax(logits / T) and records
those log-probs; the trainer's ratios and KL must be of the same distribution.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


def label_logprobs(
    logits: torch.Tensor, labels: torch.Tensor, label_mask: torch.Tensor, temperature: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """log π(label) and the entropy at masked label positions (zeros elsewhere), π = softmax(logits / T).
    `logits` is [B, T, V] for the full sequence; only rows predicting an action token are normalised."""
    return rows_logprobs(logits[:, :-1][label_mask], labels, label_mask, temperature)


def rows_logprobs(
    rows: torch.Tensor, labels: torch.Tensor, label_mask: torch.Tensor, temperature: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """As `label_logprobs`, from the logits of the masked rows only ([N, V], N = label_mask.sum())."""
    import torch

    logp_rows = torch.log_softmax(rows.float() / (temperature or 1.0), dim=-1)
    chosen = logp_rows.gather(-1, labels[label_mask][:, None])[:, 0]
    entropy = -(logp_rows.exp() * logp_rows).sum(-1)
    zeros = torch.zeros(labels.shape, dtype=chosen.dtype, device=chosen.device)
    return zeros.masked_scatter(label_mask, chosen), zeros.masked_scatter(label_mask, entropy)


def head_only_safe(model: Any) -> bool:
    """Models whose logits are more than `lm_head(hidden)` (soft-capping, a logit scale) take the full path."""
    config = getattr(model, "config", None)
    return (
        getattr(config, "final_logit_softcapping", None) is None
        and getattr(config, "logit_scale", None) is None
        and callable(getattr(model, "get_decoder", None))
        and model.get_output_embeddings() is not None
    )


def action_logprobs(
    model: Any, batch: dict[str, torch.Tensor], temperature: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """(log π, entropy) at the batch's action label positions, [B, T−1] each, zeros elsewhere; the entropy
    keeps its graph (an entropy bonus needs it), callers detach it for logging."""
    mask = batch["label_mask"]
    if not head_only_safe(model):
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        return label_logprobs(logits, batch["labels"], mask, temperature)
    hidden = model.get_decoder()(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    rows = model.get_output_embeddings()(hidden.last_hidden_state[:, :-1][mask])
    return rows_logprobs(rows, batch["labels"], mask, temperature)
