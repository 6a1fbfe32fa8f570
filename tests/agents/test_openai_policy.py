"""OpenAIPolicy through the real `openai` SDK against the stand-in server on loopback (real HTTP).

What must hold on a real server: native tool calls carried as `tool_calls` + `tool` messages, `tool_choice`
sent, and any failed request (4xx, 5xx, timeout, context overflow) ends that episode only, as infra or
truncated with the reason, while the others finish and every finished episode is saved.
"""

import json

import pytest

from envgym.agents.evaluation import evaluate, feedback_probe
from envgym.agents.policies.openai_policy import OpenAIPolicy, OpenAIPolicyConfig, tool_call_to_action
from envgym.agents.trainer import make_env
from envgym.integrations.openai_standin import Fault, StandinConfig, serve
from envgym.trajectory import read_episodes

ENV = "envgym/GuessNumber-v0"


def _policy(url: str, **kw) -> OpenAIPolicy:
    return OpenAIPolicy(OpenAIPolicyConfig(model="standin", base_url=url, api_key_env="FAKE_KEY", **kw))


def _eval(policy, tmp_path, episodes=6, batch_size=3, **kw):
    return evaluate(lambda: make_env(ENV), policy, episodes=episodes, difficulty=0.3, seed=0, batch_size=batch_size,
                    out=tmp_path, **kw)  # fmt: skip


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv("FAKE_KEY", "sk-test")


@pytest.mark.parametrize("use_tools", [True, False])
def test_solves_with_binary_search(tmp_path, use_tools):
    with serve() as (url, state):
        result = _eval(_policy(url, use_tools=use_tools), tmp_path)
    assert result.success_rate == 1.0 and result.episodes == 6 and result.infra_errors == 0
    assert all(("tools" in r) == use_tools for r in state.requests)
    assert all(r.get("tool_choice") == "auto" for r in state.requests if "tools" in r)


def test_native_tool_calls_come_back_as_tool_messages(tmp_path):
    with serve() as (url, state):
        _eval(_policy(url), tmp_path, episodes=2)
    later = [r["messages"] for r in state.requests if len(r["messages"]) > 1]
    assert later, "no multi-turn request was made"
    for messages in later:
        for a, b in zip(messages[1::2], messages[2::2], strict=False):
            assert a["role"] == "assistant" and a["content"] == "" and a["tool_calls"]
            assert b["role"] == "tool" and b["tool_call_id"] == a["tool_calls"][0]["id"]


def test_text_form_replays_calls_as_text(tmp_path):
    with serve() as (url, state):
        result = _eval(_policy(url, native_tools=False), tmp_path, episodes=2)
    assert result.success_rate == 1.0
    roles = {m["role"] for r in state.requests for m in r["messages"]}
    assert roles == {"user", "assistant"}


def test_tool_choice_is_what_makes_a_strict_server_call_tools(tmp_path):
    config = StandinConfig(tools_need_choice=True)
    with serve(config) as (url, _):
        ignored = _eval(_policy(url, tool_choice=None), tmp_path / "a", episodes=2)
    with serve(config) as (url, _):
        called = _eval(_policy(url, tool_choice="required"), tmp_path / "b", episodes=2)
    assert ignored.success_rate == called.success_rate == 1.0
    turns = lambda d: [t for e in read_episodes(d / "trajectories.jsonl") for t in e.turns]  # noqa: E731
    assert not any(t.extra.get("tool_call") for t in turns(tmp_path / "a"))
    assert all(t.extra.get("tool_call") for t in turns(tmp_path / "b"))


def test_a_failed_request_ends_its_episode_only_and_all_episodes_are_saved(tmp_path):
    faults = [Fault(turn=2, overflow=True), Fault(turn=1, status=500, times=2), Fault(turn=3, status=401)]
    with serve(StandinConfig(faults=faults)) as (url, _):
        result = _eval(_policy(url, backoff_s=0.01), tmp_path, episodes=8)
    saved = list(read_episodes(tmp_path / "trajectories.jsonl"))
    assert len(saved) == 8 and result.episodes == 8
    truncated = [e for e in saved if e.outcome.truncated]
    assert len(truncated) == 1 and "context overflow" in truncated[0].turns[-1].extra["stop_reason"]
    infra = [e for e in saved if e.infra]
    assert len(infra) == 1 and "HTTP 401" in infra[0].outcome.infra_error  # the 500s were retried
    assert result.infra_errors == 1 and result.truncated == 1
    assert sum(e.outcome.success for e in saved) == 6


def test_a_slow_answer_times_out_as_infra_after_retries(tmp_path):
    with serve(StandinConfig(faults=[Fault(turn=0, delay_s=2.0, times=2)])) as (url, _):
        result = _eval(
            _policy(url, timeout_s=0.5, max_retries=1, backoff_s=0.01), tmp_path, episodes=3, batch_size=1
        )  # one at a time: both slow answers go to the first episode
    saved = list(read_episodes(tmp_path / "trajectories.jsonl"))
    infra = [e for e in saved if e.infra]
    assert len(infra) == 1 and "timed out" in infra[0].outcome.infra_error
    assert result.episodes == 3 and result.success_rate == 1.0  # rates over the two scored episodes


def test_retry_survives_one_slow_answer(tmp_path):
    with serve(StandinConfig(faults=[Fault(turn=0, delay_s=2.0)])) as (url, _):
        result = _eval(_policy(url, timeout_s=0.5, max_retries=1, backoff_s=0.01), tmp_path, episodes=2)
    assert result.infra_errors == 0 and result.success_rate == 1.0


def test_context_budget_stops_before_the_server_refuses(tmp_path):
    with serve(StandinConfig(context_tokens=500)) as (url, state):
        result = _eval(_policy(url, max_context_tokens=500, max_tokens=64), tmp_path, episodes=3)
    saved = list(read_episodes(tmp_path / "trajectories.jsonl"))
    assert result.infra_errors == 0 and any(e.outcome.truncated for e in saved)
    reasons = [e.turns[-1].extra.get("stop_reason", "") for e in saved if e.outcome.truncated]
    assert all(r.startswith("context budget") for r in reasons)  # the policy stopped; the server never refused
    with serve(StandinConfig(context_tokens=500)) as (url, state):
        trimmed = _eval(_policy(url, max_context_tokens=500, max_tokens=64, on_context_overflow="trim"),
                        tmp_path / "trim", episodes=3)  # fmt: skip
    kept = list(read_episodes(tmp_path / "trim" / "trajectories.jsonl"))
    assert trimmed.infra_errors == 0 and not any("stop_reason" in t.extra for e in kept for t in e.turns)
    assert trimmed.mean_turns > result.mean_turns  # played on with the oldest exchanges dropped


def test_prefill_continues_an_assistant_turn(tmp_path):
    prefix = '{"name": "guess", "arguments": {"number": '
    with serve() as (url, state):
        result = _eval(_policy(url, use_tools=False, prefill=prefix), tmp_path, episodes=2)
    assert result.success_rate == 1.0
    assert all(r["messages"][-1] == {"role": "assistant", "content": prefix} for r in state.requests)


def test_tool_call_mapping():
    assert json.loads(tool_call_to_action("guess", '{"number": 4}')) == {"name": "guess", "arguments": {"number": 4}}
    assert json.loads(tool_call_to_action("guess", "")) == {"name": "guess", "arguments": {}}


def test_missing_key_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("NOPE_KEY", raising=False)
    with pytest.raises(RuntimeError, match="NOPE_KEY"):
        OpenAIPolicy(OpenAIPolicyConfig(api_key_env="NOPE_KEY"))


def test_feedback_probe_sees_a_policy_that_reads_feedback():
    with serve() as (url, _):
        probe = feedback_probe(lambda: make_env(ENV), _policy(url, use_tools=False), episodes=8, difficulty=0.3)
    assert probe.with_feedback == 1.0 and probe.hidden_feedback < 1.0 and probe.uses_feedback


def test_eval_cli_passes_the_knobs_and_survives_a_refusal(tmp_path, monkeypatch):
    import typer
    from typer.testing import CliRunner

    from envgym.agents.cli import register

    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)  # typer keeps sub-command names only with >1 command
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with serve(StandinConfig(faults=[Fault(turn=1, status=400, message="bad request")])) as (url, state):
        args = ["eval", "--policy", "openai", "--model", "standin", "--base-url", url, "--env", ENV,
                "--episodes", "4", "--difficulty", "0.3", "--out", str(tmp_path), "--concurrency", "2",
                "--system-prompt", "Play well.", "--max-tokens", "32", "--tool-choice", "required",
                "--timeout", "30", "--retries", "0"]  # fmt: skip
        result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "infra errors 1" in result.output and "HTTP 400" in result.output
    assert len(list(read_episodes(tmp_path / "trajectories.jsonl"))) == 4
    assert json.loads((tmp_path / "eval.json").read_text())["success_rate"] == 1.0
    assert all(r["messages"][0] == {"role": "system", "content": "Play well."} for r in state.requests)
    assert all(r["max_tokens"] == 32 and r["tool_choice"] == "required" for r in state.requests)


def test_the_real_server_check_script_passes_against_the_standin(tmp_path, capsys):
    import runpy
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "scripts" / "check_openai_server.py"
    main = runpy.run_path(str(script))["main"]
    slow = Fault(match="[envgym check: timeout]", delay_s=1.0, times=1000)
    with serve(StandinConfig(faults=[slow])) as (url, _):
        code = main(["--base-url", url, "--model", "standin", "--api-key-env", "FAKE_KEY", "--episodes", "2",
                     "--concurrency", "2", "--json", str(tmp_path / "checks.json")])  # fmt: skip
    printed = capsys.readouterr().out
    checks = json.loads((tmp_path / "checks.json").read_text())["checks"]
    assert code == 0, printed
    assert set(checks) == {"text", "tools", "overflow", "budget", "timeout", "prefill"}
    assert "actions start with the prefill" in checks["prefill"]["detail"]


def test_an_overflow_before_any_action_is_infra_not_a_zero(tmp_path):
    with serve(StandinConfig(faults=[Fault(turn=0, overflow=True)])) as (url, _):
        result = _eval(_policy(url), tmp_path, episodes=2, batch_size=1)
    first = next(read_episodes(tmp_path / "trajectories.jsonl"))
    assert first.infra and first.outcome.infra_error.startswith("before the first action: context overflow")
    assert result.infra_errors == 1 and result.success_rate == 1.0
