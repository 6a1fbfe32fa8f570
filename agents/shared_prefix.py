"""The training forward with a shared prefix encoded once: exact, and about half the work on GRPO batches.

Why: a GRPO batch holds G episodes per task, and on envs whose first observation does not reveal the task
(GuessNumber) every episode starts with the same prompt, often half of its tokens. The rows' common prefix is
run through the decoder once (one row, with gradient), its keys and values are repeated to the batch, and only
the rest of each row is encoded on top of them. Attention sees exactly what it sees in the plain forward and
the backward sums the repeated prefix's gradients, so log-probs and gradients match the plain path (up to
float rounding; tests/agents/test_shared_prefix.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from envgym.agents.policies.sampling import cache_kwarg
from envgym.agents.scoring import head_only_safe, rows_logprobs

if TYPE_CHECKING:
    import torch

MIN_SHARED_PREFIX = 16
"""Below this many shared tokens the plain forward is used (the saving would not pay for the extra call)."""


def common_prefix_length(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> int:
    """Length of the prefix every row shares (real tokens only), kept one short of the shortest row so each
    row has a token of its own after it."""
    same = ((input_ids == input_ids[:1]) & attention_mask.bool()).all(0).long()
    shared = int(same.cumprod(0).sum())
    return min(shared, int(attention_mask.sum(1).min()) - 1)


def can_share_prefix(model: Any) -> bool:
    """Causal LMs whose logits are the output head of the decoder's states (see `scoring`), not while
    activations are recomputed (transformers turns the cache off then)."""
    checkpointing = getattr(model, "is_activation_checkpointing", None)
    if checkpointing is None:  # transformers before the rename
        checkpointing = getattr(model, "is_gradient_checkpointing", False)
    return head_only_safe(model) and not checkpointing


def shared_prefix_logprobs(
    model: Any, batch: dict[str, torch.Tensor], prefix: int, temperature: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """(log π, entropy) at the action label positions, as `scoring.action_logprobs`, with the first `prefix`
    tokens (identical in every row) encoded once."""
    import torch
    from transformers import DynamicCache

    ids, attn, mask = batch["input_ids"], batch["attention_mask"], batch["label_mask"]
    n, width = ids.shape
    decoder = model.get_decoder()
    arg = cache_kwarg(decoder)
    cache = DynamicCache()
    head = decoder(input_ids=ids[:1, :prefix], use_cache=True, **{arg: cache})
    cache.batch_repeat_interleave(n)  # differentiable: the backward sums the rows' gradients into the prefix
    positions = torch.arange(prefix, width, device=ids.device)[None].expand(n, -1)
    rest = decoder(input_ids=ids[:, prefix:], attention_mask=attn, position_ids=positions, use_cache=True,
                   **{arg: cache})  # fmt: skip
    hidden = torch.cat([head.last_hidden_state.expand(n, -1, -1), rest.last_hidden_state], dim=1)
    rows = model.get_output_embeddings()(hidden[:, :-1][mask])
    return rows_logprobs(rows, batch["labels"], mask, temperature)
