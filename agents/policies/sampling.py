"""Token sampling from a causal LM, with its own loop instead of `generate`, and a KV cache kept across turns.

Why our own loop:
- no logits processor can sneak in: the checkpoint's `generation_config` (repetition_penalty, top-k,
  suppressed tokens, ...) is never read, so what is sampled is exactly softmax(logits / T) and the recorded
  log-prob is the log-prob of that distribution (the trainer's importance ratios rely on it);
- memory: each step keeps only the chosen token's log-prob, never the full-vocabulary logits of every
  generated token;
- speed: in a multi-turn rollout each turn's context extends the previous one, so the cache of the last batch
  is kept (`SamplerCache`) and a later turn feeds only its new tokens (the unfed last sampled token plus the
  observation). Rows of one batch then have holes (padding in the middle); explicit position ids and the
  attention mask make every real token see exactly the tokens it would see without holes;
- dedupe: rows with identical contexts (a GRPO group's first turn; every first turn of an env whose prompt
  does not reveal the task, like GuessNumber's) are encoded once and their cache rows copied to the batch.
  Greedy sampling then decodes each distinct context once too (identical inputs give identical outputs).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


@dataclass
class SampledRow:
    """One row's sample: ids (stop token included when sampled) and their log-probs under softmax(logits/T)."""

    token_ids: list[int]
    logprobs: list[float]
    stopped: bool


@dataclass
class SamplerCache:
    """The KV cache of the last sampled batch and, per row, the token ids it holds (real tokens only)."""

    kv: Any
    rows: list[list[int]]
    mask: torch.Tensor  # [B, W] attention mask over cache columns (0 on padding and holes)


def cache_kwarg(model: Any) -> str:
    """transformers renamed `past_key_values` to `cache`; use whichever this version's forward takes."""
    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def _match_rows(cache: SamplerCache | None, contexts: Sequence[Sequence[int]]) -> list[int] | None:
    """For each context, a cached row it strictly extends (each row used once), or None if any has none."""
    if cache is None:
        return None
    index: dict[tuple[int, ...], list[int]] = {}
    for r, row in enumerate(cache.rows):
        index.setdefault(tuple(row), []).append(r)
    lengths = sorted({len(row) for row in cache.rows}, reverse=True)
    picked: list[int] = []
    for ctx in contexts:
        found = None
        for length in lengths:
            if length < len(ctx) and index.get(tuple(ctx[:length])):
                found = index[tuple(ctx[:length])].pop()
                break
        if found is None:
            return None
        picked.append(found)
    return picked


class TokenSampler:
    """Plain temperature sampling (T = 0: greedy) over a causal LM; `sample` optionally reuses a cache."""

    def __init__(
        self, model: Any, pad_id: int, stop_ids: Sequence[int], device: torch.device, dedupe: bool = True
    ) -> None:
        import torch

        self.model = model
        self.dedupe = dedupe
        self.pad_id = pad_id
        self.stop_ids = torch.tensor(sorted(set(stop_ids)), device=device)
        self.device = device
        self._cache_arg = cache_kwarg(model)

    def _forward(self, ids: torch.Tensor, mask: torch.Tensor, kv: Any) -> torch.Tensor:
        """Logits of the last column only (`logits_to_keep=1`), extending `kv` in place."""
        positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, -ids.shape[1] :]
        out = self.model(
            input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1,
            **{self._cache_arg: kv},
        )  # fmt: skip
        return out.logits[:, -1]

    def sample(
        self,
        contexts: Sequence[Sequence[int]],
        max_new_tokens: int,
        temperature: float,
        cache: SamplerCache | None = None,
    ) -> tuple[list[SampledRow], SamplerCache]:
        """Sample one continuation per context. With `cache` (from the previous call), rows whose context
        extends a cached row feed only the new tokens; otherwise everything is encoded from scratch.
        Identical contexts are encoded once (and, when greedy, decoded once) and copied to their rows."""
        import torch
        from transformers import DynamicCache

        n = len(contexts)
        firsts, inverse = _distinct(contexts) if self.dedupe else (list(range(n)), list(range(n)))
        distinct = [list(contexts[i]) for i in firsts]
        picked = _match_rows(cache, distinct)
        if cache is not None and picked is not None:
            kv = cache.kv
            kv.batch_select_indices(torch.tensor(picked, device=self.device))
            mask = cache.mask[picked]
            new = [ctx[len(cache.rows[r]) :] for ctx, r in zip(distinct, picked, strict=True)]
        else:
            kv = DynamicCache()
            mask = torch.zeros((len(distinct), 0), dtype=torch.long, device=self.device)
            new = distinct
        width = max(len(row) for row in new)
        block = torch.tensor([[self.pad_id] * (width - len(row)) + row for row in new], device=self.device)
        block_mask = torch.tensor([[0] * (width - len(row)) + [1] * len(row) for row in new], device=self.device)
        mask = torch.cat([mask, block_mask], dim=1)
        copies = len(distinct) < n
        # greedy: identical contexts decode identically, so each is decoded once and copied at the end;
        # sampling: copy right after the prefill, before the first draw, so every row draws as it would alone
        late = copies and temperature == 0.0
        index = torch.tensor(inverse, device=self.device)
        with torch.no_grad():
            logits = self._forward(block, mask, kv)
            if copies and not late:
                kv.batch_select_indices(index)
                logits, mask = logits[index], mask[index]
            rows, fed, mask = self._decode(
                logits, mask, kv, distinct if late else contexts, max_new_tokens, temperature
            )
        if late:
            kv.batch_select_indices(index)
            mask = mask[index]
            rows = [SampledRow(list(rows[j].token_ids), list(rows[j].logprobs), rows[j].stopped) for j in inverse]
            fed = [list(fed[j]) for j in inverse]
        return rows, SamplerCache(kv=kv, rows=fed, mask=mask)

    def _decode(
        self,
        logits: torch.Tensor,
        mask: torch.Tensor,
        kv: Any,
        contexts: Sequence[Sequence[int]],
        max_new_tokens: int,
        temperature: float,
    ) -> tuple[list[SampledRow], list[list[int]], torch.Tensor]:
        """The token loop from the prefill's last logits: (rows, ids each row's cache holds, cache mask)."""
        import torch

        fed = [list(c) for c in contexts]
        n = len(contexts)
        tokens: list[list[int]] = [[] for _ in range(n)]
        logps: list[list[float]] = [[] for _ in range(n)]
        live = torch.ones(n, dtype=torch.bool, device=self.device)
        stopped = [False] * n
        for step in range(max_new_tokens):
            logp = torch.log_softmax(logits.float() / (temperature or 1.0), dim=-1)
            chosen = logp.argmax(-1) if temperature == 0.0 else torch.multinomial(logp.exp(), 1)[:, 0]
            chosen_lp = logp.gather(-1, chosen[:, None])[:, 0]
            was_live = live.clone()
            is_stop = torch.isin(chosen, self.stop_ids)
            ids_l, lps_l, live_l, stop_l = (t.tolist() for t in (chosen, chosen_lp, was_live, is_stop))
            for i in range(n):
                if live_l[i]:
                    tokens[i].append(ids_l[i])
                    logps[i].append(lps_l[i])
                    stopped[i] = stop_l[i]
            live = was_live & ~is_stop
            if not bool(live.any()) or step == max_new_tokens - 1:
                break
            # feed this step's tokens (a just-stopped row's stop token too: the next turn needs it cached)
            column = torch.where(was_live, chosen, torch.full_like(chosen, self.pad_id))
            mask = torch.cat([mask, was_live.long()[:, None]], dim=1)
            for i in range(n):
                if live_l[i]:
                    fed[i].append(ids_l[i])
            logits = self._forward(column[:, None], mask, kv)
        rows = [SampledRow(t, lp, s) for t, lp, s in zip(tokens, logps, stopped, strict=True)]
        return rows, fed, mask


def _distinct(contexts: Sequence[Sequence[int]]) -> tuple[list[int], list[int]]:
    """(index of each distinct context's first row, each row's position among the distinct contexts)."""
    seen: dict[tuple[int, ...], int] = {}
    firsts: list[int] = []
    inverse: list[int] = []
    for i, ctx in enumerate(contexts):
        key = tuple(ctx)
        if key not in seen:
            seen[key] = len(firsts)
            firsts.append(i)
        inverse.append(seen[key])
    return firsts, inverse
