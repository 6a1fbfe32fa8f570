"""Rollout throughput against plain batched `generate` on the same model, batch and contexts.

Why this baseline: the rollout's job is to add env stepping, token bookkeeping and trajectory records on top
of sampling without slowing it down. We run a real multi-turn rollout, record every batch of contexts it
sampled from, then time plain `model.generate` on exactly those contexts (same batch shapes, same
max_new_tokens, sampling). Ratio = rollout tokens/s ÷ generate tokens/s (target ≥ 0.8). Rounds alternate to
share machine noise; medians are reported.

    .venv/bin/python benchmarks/rollout.py --model smollm2-135m --batch 16 --rounds 10
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any


class Recorder:
    """Passes sampling through and keeps each batch of contexts."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.name, self.batches = inner, inner.name, []

    def __getattr__(self, item: str) -> Any:
        return getattr(self.inner, item)

    def sample(self, contexts: Any) -> Any:
        self.batches.append([list(c) for c in contexts])
        return self.inner.sample(contexts)


def plain_generate(policy: Any, batches: list[list[list[int]]]) -> tuple[int, float]:
    import torch

    tokens, start = 0, time.perf_counter()
    stops = torch.tensor(policy.stop_ids)
    for contexts in batches:
        ids, mask = policy.left_pad(contexts)
        with torch.no_grad():
            out = policy.model.generate(
                input_ids=ids, attention_mask=mask, do_sample=True, top_k=0, top_p=1.0,
                max_new_tokens=policy.config.max_new_tokens, eos_token_id=policy.stop_ids, pad_token_id=policy.pad_id,
            )  # fmt: skip
        new = out[:, ids.shape[1] :].cpu()
        is_stop = torch.isin(new, stops)
        ends = torch.where(is_stop.any(1), is_stop.int().argmax(1) + 1, torch.full((new.shape[0],), new.shape[1]))
        tokens += int(ends.sum())
    return tokens, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m", help="smollm2-135m, tiny, or a model path")
    parser.add_argument("--env", default="envgym/GuessNumber-v0")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--max-new-tokens", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=10, help="more rounds: sub-second rounds are noisy")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from envgym.agents.policies.hf import HFPolicyConfig
    from envgym.agents.recording import BackgroundTrajectoryWriter
    from envgym.agents.rollout import RolloutConfig, TaskSpec, rollout
    from envgym.agents.trainer import make_env, make_policy

    policy = make_policy(HFPolicyConfig(model=args.model, max_new_tokens=args.max_new_tokens))
    envs = [make_env(args.env) for _ in range(args.batch)]
    cfg = RolloutConfig(max_turns=args.turns)
    ratios, r_tps, g_tps = [], [], []
    with tempfile.TemporaryDirectory() as tmp, BackgroundTrajectoryWriter(Path(tmp) / "t.jsonl") as writer:
        for r in range(args.rounds):
            rec = Recorder(policy)
            tasks = [TaskSpec(seed=1000 * r + i, difficulty=0.0) for i in range(args.batch)]
            start = time.perf_counter()
            episodes = rollout(rec, envs, tasks, cfg, writer)
            rollout_s = time.perf_counter() - start
            rollout_tokens = sum(ep.action_tokens for ep in episodes)
            gen_tokens, gen_s = plain_generate(policy, rec.batches)
            r_tps.append(rollout_tokens / rollout_s)
            g_tps.append(gen_tokens / gen_s)
            ratios.append(r_tps[-1] / g_tps[-1])
            print(f"round {r}: rollout {r_tps[-1]:.1f} tok/s ({rollout_s:.2f} s), generate {g_tps[-1]:.1f} tok/s "
                  f"({gen_s:.2f} s), ratio {ratios[-1]:.2f}", flush=True)  # fmt: skip
    print(
        f"model={args.model} batch={args.batch} turns={args.turns} max_new_tokens={args.max_new_tokens}: "
        f"rollout {statistics.median(r_tps):.1f} tok/s vs generate {statistics.median(g_tps):.1f} tok/s, "
        f"ratio {statistics.median(ratios):.2f} (target >= 0.80)"
    )


if __name__ == "__main__":
    main()
