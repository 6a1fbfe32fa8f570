"""Multi-turn rollout throughput with the KV cache kept across turns, against the same rollout re-encoding
the whole context every turn (the baseline), in the same run.

Why this baseline: each turn's context is a strict prefix of the next, so without reuse a later turn's cost is
almost all prefill of what was already encoded. Both arms run the same policy, envs, task seeds and sampling
seeds (the sampled ids agree, see tests/agents/test_sampler.py), rounds alternate between the arms to share
machine noise, and medians are reported. Ratio = cached tokens/s ÷ uncached tokens/s (target ≥ 1.5 at 3 turns).
GuessNumber at difficulty 1 has an 11-guess budget, so every episode runs the full `turns`.

    .venv/bin/python benchmarks/rollout.py --model smollm2-135m --batch 16 --turns 3 6 10 --rounds 3
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any


def timed_rollout(policy: Any, envs: list[Any], turns: int, seed: int, reuse: bool) -> tuple[int, float]:
    import torch

    from envgym.agents.rollout import RolloutConfig, TaskSpec, rollout

    policy.config = policy.config.model_copy(update={"reuse_kv_cache": reuse})
    torch.manual_seed(seed)
    tasks = [TaskSpec(seed=1000 * seed + i, difficulty=1.0) for i in range(len(envs))]
    start = time.perf_counter()
    episodes = rollout(policy, envs, tasks, RolloutConfig(max_turns=turns, max_context_tokens=100_000))
    return sum(ep.action_tokens for ep in episodes), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m", help="smollm2-135m, tiny, or a model path")
    parser.add_argument("--env", default="envgym/GuessNumber-v0")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--turns", type=int, nargs="+", default=[3, 6, 10])
    parser.add_argument("--max-new-tokens", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from envgym.agents.policies.hf import HFPolicyConfig
    from envgym.agents.trainer import make_env, make_policy

    policy = make_policy(HFPolicyConfig(model=args.model, max_new_tokens=args.max_new_tokens, device="cpu"))
    envs = [make_env(args.env) for _ in range(args.batch)]
    timed_rollout(policy, envs, 1, seed=999, reuse=True)  # warm-up: first-call allocations, template caches
    rows = []
    for turns in args.turns:
        tps: dict[bool, list[float]] = {False: [], True: []}
        for r in range(args.rounds):
            for reuse in (False, True) if r % 2 == 0 else (True, False):
                tokens, seconds = timed_rollout(policy, envs, turns, seed=r, reuse=reuse)
                tps[reuse].append(tokens / seconds)
                print(f"turns {turns} round {r} {'cached  ' if reuse else 'uncached'}: {tokens} tokens in "
                      f"{seconds:.2f} s ({tokens / seconds:.1f} tok/s)", flush=True)  # fmt: skip
        cached, plain = statistics.median(tps[True]), statistics.median(tps[False])
        rows.append((turns, plain, cached, cached / plain))
    print(f"\nmodel={args.model} env={args.env} batch={args.batch} max_new_tokens={args.max_new_tokens} "
          f"threads={args.threads} rounds={args.rounds} (medians)")  # fmt: skip
    print("turns  uncached tok/s  cached tok/s  ratio")
    for turns, plain, cached, ratio in rows:
        print(f"{turns:5d}  {plain:14.1f}  {cached:12.1f}  {ratio:5.2f}" + ("  (target >= 1.5)" if turns == 3 else ""))


if __name__ == "__main__":
    main()
