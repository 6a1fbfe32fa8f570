"""GPU smoke test for the learner, prepared for a machine with CUDA (none was available when it was written).

Measures, on one device, for the packaged job's model and env: rollout tokens/s with and without the KV cache
kept across turns, learn tokens/s, peak GPU memory, and a short learning curve with held-out success before
and after (the same `Trainer` as `envgym train`, unchanged). Writes results/gpu_smoke.json.

    .venv/bin/python experiments/gpu_smoke.py [--model smollm2-135m] [--steps 12] [--bf16-weights]
"""

import argparse
import json
import sys
import tempfile
import time

from common import RESULTS


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="smollm2-135m", help="alias, local dir or hub id (if a hub is reachable)")
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--tasks", type=int, default=16, help="task seeds per step (× group 8)")
    p.add_argument("--heldout", type=int, default=128)
    p.add_argument("--bf16-weights", action="store_true")
    p.add_argument("--gradient-checkpointing", action="store_true")
    a = p.parse_args()

    import torch

    if not torch.cuda.is_available():
        sys.exit("no CUDA device: this script measures the GPU path (run it on a machine with one)")
    from envgym.agents.cli import default_config_path
    from envgym.agents.heldout import HeldOutConfig
    from envgym.agents.rollout import RolloutConfig, TaskSpec, rollout
    from envgym.agents.trainer import TrainConfig, Trainer, make_policy

    base = TrainConfig.from_yaml(default_config_path())
    policy_cfg = base.policy.model_copy(update={"model": a.model, "device": "cuda", "bf16_weights": a.bf16_weights})
    config = base.model_copy(update={
        "steps": a.steps, "tasks_per_step": a.tasks, "group_size": 8, "policy": policy_cfg,
        "micro_batch_size": 64, "gradient_checkpointing": a.gradient_checkpointing,
        "heldout": HeldOutConfig(episodes=a.heldout, temperatures=[0.0, 1.0]),
    })  # fmt: skip
    policy = make_policy(policy_cfg)
    out: dict = {"device": torch.cuda.get_device_name(0), "model": a.model, "bf16_weights": a.bf16_weights}
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(config, run_dir, policy=policy)
        for turns in (3, 6, 10):  # rollout throughput, cached vs uncached, hard tasks so episodes run full length
            for reuse in (False, True):
                policy.config = policy.config.model_copy(update={"reuse_kv_cache": reuse})
                torch.manual_seed(0)
                tasks = [TaskSpec(seed=i, difficulty=1.0) for i in range(len(trainer.envs))]
                torch.cuda.synchronize()
                start = time.perf_counter()
                eps = rollout(policy, trainer.envs, tasks, RolloutConfig(max_turns=turns, max_context_tokens=10**5))
                torch.cuda.synchronize()
                tokens = sum(ep.action_tokens for ep in eps)
                out[f"rollout_tok_s_turns{turns}_{'cached' if reuse else 'uncached'}"] = tokens / (
                    time.perf_counter() - start
                )
        policy.config = policy.config.model_copy(update={"reuse_kv_cache": True})
        torch.cuda.reset_peak_memory_stats()
        history = trainer.train(on_step=lambda m: print(f"step {m['step']}: success {m['success']:.3f} "
                                                        f"entropy {m['entropy']:.3f}", flush=True))  # fmt: skip
        out["peak_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
        out["learn_tok_s"] = sum(m["seq_tokens"] for m in history) / sum(m["learn_s"] for m in history)
        out["rollout_tok_s_training"] = sum(m["action_tokens_per_episode"] * m["episodes"] for m in history) / sum(
            m["rollout_s"] for m in history
        )
        out["curve"] = [{k: m.get(k) for k in ("step", "success", "entropy", "zero_var_frac")} for m in history]
        from envgym.agents.heldout import read_heldout

        out["heldout"] = [r.model_dump() for r in read_heldout(run_dir)]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "gpu_smoke.json").write_text(json.dumps(out, indent=2))
    print(json.dumps({k: v for k, v in out.items() if k != "curve"}, indent=2))


if __name__ == "__main__":
    main()
