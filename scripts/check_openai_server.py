"""Check `OpenAIPolicy` against a real OpenAI-compatible server (llama.cpp, vLLM, SGLang, a hosted API).

The same checks CI runs against the loopback stand-in (`tests/agents/test_openai_policy.py` runs this script
against it): every episode is saved whatever the server does; a context overflow ends its episode as
truncated (by the server's refusal, or earlier by the policy's budget); a timeout ends it as infra; tool
calls come back natively when `tool_choice` asks for them; an assistant prefill is continued.

    python scripts/check_openai_server.py --base-url http://127.0.0.1:8000/v1 --model smollm2

Prints one line per check and a JSON summary (`--json PATH`); exits 1 if an invariant broke (a crash, a lost
episode, a failure classified the wrong way). Success rates are reported, not checked: a small model may
solve nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from envgym.agents.evaluation import evaluate
from envgym.agents.policies.openai_policy import OpenAIPolicy, OpenAIPolicyConfig
from envgym.agents.trainer import make_env
from envgym.trajectory import Episode, read_episodes


def _run(args: argparse.Namespace, out: Path, **config: Any) -> tuple[Any, list[Episode]]:
    settings = {"model": args.model, "base_url": args.base_url, "api_key_env": args.api_key_env,
                "max_tokens": args.max_tokens, "timeout_s": args.timeout, "concurrency": args.concurrency,
                "backoff_s": 0.2, **config}  # fmt: skip
    policy = OpenAIPolicy(OpenAIPolicyConfig(**settings))
    result = evaluate(lambda: make_env(args.env), policy, episodes=args.episodes, difficulty=args.difficulty,
                      seed=0, batch_size=args.concurrency, out=out, max_turns=args.max_turns)  # fmt: skip
    return result, list(read_episodes(out / "trajectories.jsonl"))


def _stop_reasons(episodes: list[Episode]) -> list[str]:
    return [str(e.turns[-1].extra.get("stop_reason", "")) for e in episodes if e.outcome and e.outcome.truncated
            and e.turns]  # fmt: skip


def _infra(episodes: list[Episode]) -> list[str]:
    return [str(e.outcome.infra_error) for e in episodes if e.outcome and e.outcome.infra_error]


def _tool_turns(episodes: list[Episode]) -> int:
    return sum(bool(t.extra.get("tool_call")) for e in episodes for t in e.turns)


Check = Callable[[argparse.Namespace, Path], tuple[bool, str]]


def check_text(args: argparse.Namespace, out: Path) -> tuple[bool, str]:
    result, eps = _run(args, out, use_tools=False)
    ok = len(eps) == args.episodes
    return ok, f"saved {len(eps)}/{args.episodes}, success {result.success_rate:.0%}, infra {result.infra_errors}"


def check_tools(args: argparse.Namespace, out: Path) -> tuple[bool, str]:
    result, eps = _run(args, out, use_tools=True, tool_choice="required")
    turns = sum(len(e.turns) for e in eps)
    ok = len(eps) == args.episodes and (turns == 0 or _tool_turns(eps) > 0)
    return ok, (f"saved {len(eps)}/{args.episodes}, native tool calls {_tool_turns(eps)}/{turns} turns, "
                f"success {result.success_rate:.0%}, infra {result.infra_errors} {_infra(eps)[:1]}")  # fmt: skip


def check_overflow(args: argparse.Namespace, out: Path) -> tuple[bool, str]:
    padding = "Background (ignore): " + "lorem ipsum dolor sit amet " * (args.overflow_chars // 27)
    _, eps = _run(args, out, use_tools=False, system_prompt=padding, max_retries=0)
    infra = _infra(eps)  # the task alone does not fit: no action was played, so infra (excluded), not a zero
    ok = len(eps) == args.episodes and len(infra) == args.episodes and all("context overflow" in r for r in infra)
    return ok, f"saved {len(eps)}/{args.episodes}, infra (no action fits) {len(infra)}: {infra[:1]}"


def check_budget(args: argparse.Namespace, out: Path) -> tuple[bool, str]:
    result, eps = _run(args, out, use_tools=False, max_context_tokens=args.budget)
    reasons = _stop_reasons(eps)
    ok = len(eps) == args.episodes and result.infra_errors == 0
    ok = ok and not any("context overflow" in r for r in reasons)  # the policy stopped before the server refused
    return ok, f"saved {len(eps)}/{args.episodes}, stopped by the budget {sum('budget' in r for r in reasons)}"


def check_timeout(args: argparse.Namespace, out: Path) -> tuple[bool, str]:
    marker = "[envgym check: timeout]"  # the stand-in delays requests carrying it; a real server is just slow
    result, eps = _run(args, out, use_tools=False, timeout_s=args.short_timeout, max_retries=1, system_prompt=marker)
    ok = len(eps) == args.episodes and all("timed out" in r for r in _infra(eps)) and result.infra_errors > 0
    return ok, f"saved {len(eps)}/{args.episodes}, infra {result.infra_errors}: {_infra(eps)[:1]}"


def check_prefill(args: argparse.Namespace, out: Path) -> tuple[bool, str]:
    prefix = '{"name": "guess", "arguments": {"number": '
    _, eps = _run(args, out, use_tools=False, prefill=prefix)
    kept = sum(t.action.startswith(prefix) for e in eps for t in e.turns)
    turns = sum(len(e.turns) for e in eps)
    return len(eps) == args.episodes, f"saved {len(eps)}/{args.episodes}, actions start with the prefill {kept}/{turns}"


CHECKS: dict[str, Check] = {
    "text": check_text, "tools": check_tools, "overflow": check_overflow, "budget": check_budget,
    "timeout": check_timeout, "prefill": check_prefill,
}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--model", default="default")
    parser.add_argument("--api-key-env", default="OPENAI_API_KEY", help="variable holding the key (set to any value)")
    parser.add_argument("--env", default="envgym/GuessNumber-v0")
    parser.add_argument("--difficulty", type=float, default=0.2)
    parser.add_argument("--episodes", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--max-turns", type=int, default=6)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--short-timeout", type=float, default=0.05, help="seconds: shorter than any answer")
    parser.add_argument("--budget", type=int, default=250, help="context budget for the budget check (tokens)")
    parser.add_argument("--overflow-chars", type=int, default=60_000, help="system prompt size that must overflow")
    parser.add_argument("--only", nargs="*", choices=sorted(CHECKS), help="run these checks only")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    os.environ.setdefault(args.api_key_env, "sk-local")
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.only or list(CHECKS):
            try:
                ok, detail = CHECKS[name](args, Path(tmp) / name)
            except Exception as exc:  # the invariant: nothing escapes evaluate
                ok, detail = False, f"raised {exc!r}"
            results[name] = {"ok": ok, "detail": detail}
            print(f"{'ok  ' if ok else 'FAIL'} {name:9s} {detail}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"base_url": args.base_url, "model": args.model, "checks": results}, indent=2))
    return 0 if all(r["ok"] for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
