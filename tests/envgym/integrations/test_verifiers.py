"""verifiers' own runner (`evaluate_sync`) evaluates an envgym env against a local OpenAI-compatible server.

The server is the loopback stand-in (real HTTP, through the `openai` SDK verifiers uses); it plays guess-the-
number by bisection from the conversation, so rollouts are solved only if verifiers carries the turns right.
"""

import json

import gymnasium as gym
import pytest
import verifiers as vf

from envgym.integrations.openai_standin import serve
from envgym.integrations.verifiers import EnvgymMultiTurnEnv, load_environment

ENV = "envgym/GuessNumber-v0"


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv("FAKE_KEY", "sk-test")


def _run(env, responder=None, n=4):
    kwargs = {"responder": responder} if responder else {}
    with serve(**kwargs) as (url, state):
        client = vf.ClientConfig(api_key_var="FAKE_KEY", api_base_url=url, max_retries=0, timeout=30)
        out = env.evaluate_sync(client=client, model="standin", num_examples=n, rollouts_per_example=1,
                                max_concurrent=2)  # fmt: skip
    return out["outputs"], state.requests


@pytest.mark.parametrize("use_tools", [True, False])
def test_verifiers_runner_solves_through_the_env(use_tools):
    env = load_environment(ENV, num_examples=4, seed=0, difficulty=0.3, use_tools=use_tools)
    assert isinstance(env, vf.MultiTurnEnv) and isinstance(env, EnvgymMultiTurnEnv)
    outputs, requests = _run(env)
    assert len(outputs) == 4
    assert all(o["reward"] == 1.0 and o["metrics"]["solved"] == 1.0 and o["error"] is None for o in outputs)
    assert all(o["stop_condition"] == "envgym_episode_over" for o in outputs)
    assert all(bool(r.get("tools")) == use_tools for r in requests)
    if use_tools:  # tool results answer their call ids; tool-call turns carry "" (the server refuses null)
        tool_turns = [m for r in requests for m in r["messages"] if m["role"] == "tool"]
        assert tool_turns and all(m["tool_call_id"].startswith("call_") for m in tool_turns)


def test_the_reward_is_the_envs_return():
    def always_three(messages):
        return {"name": "guess", "arguments": {"number": 3}}

    local = gym.make(ENV)
    first = next(s for s in range(500) if _solved_by_three(local, s))
    env = load_environment(ENV, num_examples=4, seed=first, difficulty=0.0)
    outputs, _ = _run(env, always_three)
    for o in outputs:
        local.reset(seed=o["info"]["seed"], options={"difficulty": 0.0})
        total, done = 0.0, False
        while not done:
            _, reward, terminated, truncated, _ = local.step(json.dumps(always_three([])))
            total, done = total + float(reward), terminated or truncated
        assert o["reward"] == total
    assert {o["reward"] for o in outputs} == {0.0, 1.0}  # the first seed hides a 3, the others not all


def _solved_by_three(env, seed):
    env.reset(seed=seed, options={"difficulty": 0.0})
    return env.step("3")[4]["solved"]


def test_verifiers_own_loader_finds_the_module():
    env = vf.load_environment("envgym.integrations.verifiers", envgym_id=ENV, num_examples=2, difficulty=0.3)
    assert isinstance(env, EnvgymMultiTurnEnv)
    outputs, _ = _run(env, n=2)
    assert [o["reward"] for o in outputs] == [1.0, 1.0]
