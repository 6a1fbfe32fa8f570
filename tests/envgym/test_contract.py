"""The env contract, checked against every registered env that needs no Docker engine."""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envgym  # noqa: F401
from envgym.actions import Tool
from envgym.core import InfraError, StepOutcome, TextEnv, handles
from envgym.registry import ENTRIES
from envgym.text import fits

IDS = [e.id for e in ENTRIES if e.family in {"puzzles", "tools"}]

GARBAGE = [
    "",
    "   ",
    "\x00\x01\x02",
    "x" * 100_000,
    "".join(chr(c) for c in np.random.default_rng(0).integers(0, 0x10FFFF, 20_000) if not 0xD800 <= c < 0xE000),
    '{"name": ',
    '{"name": "definitely_not_a_tool", "arguments": {}}',
    '{"name": 5, "arguments": 7}',
    "\x1b[31m\x1b]0;title\x07 red \x1b[0m",
    "🙂 你好 ∑ \u202e",
    "```json\n[1, 2, 3]\n```",
]


def _first_tool(info: dict[str, Any]) -> str:
    return str(info["tools"][0]["function"]["name"])


@pytest.mark.parametrize("env_id", IDS)
def test_check_env(env_id: str) -> None:
    env = gym.make(env_id)
    check_env(env.unwrapped, skip_render_check=True)


@pytest.mark.parametrize("env_id", IDS)
def test_garbage_actions_give_feedback_not_exceptions(env_id: str) -> None:
    env = gym.make(env_id)
    _, info = env.reset(seed=7, options={"difficulty": 0.5})
    tool = _first_tool(info)
    actions = [
        *GARBAGE,
        f'{{"name": "{tool}", "arguments": {{"zzz": [1, {{}}]}}}}',
        f'{{"name": "{tool}", "arguments": "oops"}}',
    ]
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        assert fits(obs), f"observation out of the charset for action {action[:30]!r}"
        assert reward == 0.0
        assert info["feedback"]["error"], f"no error feedback for {action[:30]!r}"
        if terminated or truncated:
            env.reset(seed=7)


@pytest.mark.parametrize("env_id", IDS)
def test_same_seed_same_episode(env_id: str) -> None:
    runs = []
    for _ in range(2):
        env = gym.make(env_id)
        obs, info = env.reset(seed=123, options={"difficulty": 0.7})
        trace = [obs, info["task"]]
        for _ in range(5000):
            obs, reward, terminated, truncated, info = env.step(env.unwrapped.oracle_action())
            trace += [obs, reward]
            if terminated or truncated:
                break
        runs.append(trace)
    assert runs[0] == runs[1]
    assert runs[0][-1] == 1.0, "the oracle did not solve the task"


@pytest.mark.parametrize("env_id", IDS)
def test_unseeded_resets_record_a_seed_that_reproduces_the_task(env_id: str) -> None:
    env = gym.make(env_id)
    env.reset(seed=1)
    obs, info = env.reset()  # no seed: the env draws one from its own RNG
    again, _ = gym.make(env_id).reset(seed=info["task"]["seed"], options={"difficulty": info["task"]["difficulty"]})
    assert obs == again


def test_turn_budget_truncates_and_then_the_env_asks_for_reset() -> None:
    env = gym.make("envgym/GuessNumber-v0")
    _, info = env.reset(seed=0, options={"difficulty": 0.0})
    truncated = False
    for _ in range(info["max_turns"]):
        _, _, terminated, truncated, info = env.step("not a move")
        assert not terminated
    assert truncated and "budget" in info["feedback"]["summary"]
    obs, reward, terminated, _, info = env.step("1")
    assert terminated and reward == 0.0 and "reset" in info["feedback"]["error"]


def test_bad_difficulty_is_a_clear_error() -> None:
    env = gym.make("envgym/GuessNumber-v0")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        env.reset(options={"difficulty": 1.5})
    with pytest.raises(ValueError, match="invalid parameters"):
        env.reset(options={"params": {"upper": -3}})


def test_bad_params_are_one_line_naming_the_known_ones() -> None:
    """pydantic's own report is several lines with URLs and echoes the (possibly huge) values."""
    env = gym.make("envgym/GuessNumber-v0")
    with pytest.raises(ValueError) as caught:
        env.reset(options={"params": {"upper": -3, "no_such": "x" * 10_000}})
    message = str(caught.value)
    assert "\n" not in message and len(message) < 600 and "xxxx" not in message, message
    assert "upper:" in message and "no_such:" in message and "its parameters: " in message


class _Ping(Tool):
    """Ping the host."""

    name: ClassVar[str] = "ping"


class _FlakyHostEnv(TextEnv):
    env_id: ClassVar[str] = "envgym/Flaky-v0"
    tools: ClassVar[tuple[type[Tool], ...]] = (_Ping,)

    def _generate(self, difficulty: float, params: dict[str, Any]) -> tuple[str, dict[str, Any], int]:
        return "ping me", {}, 3

    def _apply(self, call: Tool) -> StepOutcome:
        raise InfraError("docker daemon went away")


class _NoHostEnv(_FlakyHostEnv):
    def _generate(self, difficulty: float, params: dict[str, Any]) -> tuple[str, dict[str, Any], int]:
        raise InfraError("image envgym/x:1 is missing")


def test_infra_error_during_reset_is_flagged_and_ends_the_episode() -> None:
    env = _NoHostEnv()
    obs, info = env.reset(seed=0)
    assert info["infra_error"] == "image envgym/x:1 is missing" and "not your fault" in obs
    _, reward, terminated, _, info = env.step('{"name": "ping", "arguments": {}}')
    assert terminated and reward == 0.0 and "reset" in info["feedback"]["error"]


def test_max_turns_override_reaches_mixture_families() -> None:
    env = gym.make("envgym/Puzzle-v0", max_turns=3)
    _, info = env.reset(seed=5)
    assert info["max_turns"] == 3 and env.unwrapped.sub.max_turns == 3


def test_infra_errors_are_flagged_not_scored() -> None:
    env = _FlakyHostEnv()
    env.reset(seed=0)
    _, reward, terminated, _, info = env.step('{"name": "ping", "arguments": {}}')
    assert terminated and reward == 0.0
    assert info["infra_error"] == "docker daemon went away"


@pytest.mark.parametrize("vector_cls", ["sync", "async"])
def test_vector_envs_run_100_steps(vector_cls: str) -> None:
    fns = [lambda: gym.make("envgym/Puzzle-v0") for _ in range(8)]
    vec = gym.vector.SyncVectorEnv(fns) if vector_cls == "sync" else gym.vector.AsyncVectorEnv(fns, shared_memory=False)
    try:
        obs, _ = vec.reset(seed=list(range(8)))
        assert len(obs) == 8 and all(isinstance(o, str) and o for o in obs)
        rng = np.random.default_rng(0)
        for step in range(100):
            actions = tuple(str(int(rng.integers(0, 9))) if step % 3 else "junk" for _ in range(8))
            obs, rewards, terminated, truncated, _ = vec.step(actions)
            assert len(obs) == 8 and rewards.shape == (8,)
            assert all(isinstance(o, str) for o in obs)
    finally:
        vec.close()


def test_help_documents_every_info_key() -> None:
    doc = TextEnv.__doc__ or ""
    for key in ("feedback", "tools", "task", "infra_error", "reward_components", "tool_call", "solved", "turn"):
        assert f"`{key}`" in doc, key


def test_tool_schemas_are_shared_read_only_and_serialize_as_plain_json() -> None:
    import copy
    import json
    import pickle

    env = gym.make("envgym/GuessNumber-v0").unwrapped
    _, first = env.reset(seed=0)
    _, second = env.reset(seed=1)
    assert first["tools"] is second["tools"]
    with pytest.raises(TypeError, match="read-only"):
        first["tools"][0]["function"]["name"] = "hijack"
    with pytest.raises(TypeError, match="read-only"):
        first["tools"].append({})
    assert json.loads(json.dumps(first["tools"])) == first["tools"]
    assert pickle.loads(pickle.dumps(first["tools"])) == first["tools"]
    mine = copy.deepcopy(first["tools"])
    mine[0]["function"]["name"] = "changed"  # a deep copy is the caller's own, mutable
    assert second["tools"][0]["function"]["name"] == "guess"


def test_env_pickles_small_and_task_is_the_boundary_model() -> None:
    import pickle

    env = gym.make("envgym/Sokoban-v0").unwrapped
    _, info = env.reset(seed=3)
    assert len(pickle.dumps(env)) < 100_000
    assert env.task is not None and env.task.model_dump() == info["task"]


class _SlowEnv(_FlakyHostEnv):
    time_budget_s = 0.0

    def _apply(self, call: Tool) -> StepOutcome:
        from envgym.core import Feedback

        return StepOutcome(feedback=Feedback(summary="pong"))


def test_wall_clock_budget_truncates_like_the_turn_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    import envgym.core

    ticks = iter(range(100))
    monkeypatch.setattr(envgym.core.time, "monotonic", lambda: float(next(ticks)))
    env = _SlowEnv()
    env.reset(seed=0)
    obs, _, terminated, truncated, info = env.step('{"name": "ping", "arguments": {}}')
    assert truncated and not terminated and "Wall-clock budget" in info["feedback"]["summary"] and "pong" in obs


def test_sandbox_is_none_unless_an_env_runs_commands() -> None:
    assert gym.make("envgym/GuessNumber-v0").unwrapped.sandbox is None
    mixture = gym.make("envgym/Puzzle-v0").unwrapped
    mixture.reset(seed=0)
    assert mixture.sandbox is None


def test_mixture_flags_a_family_reset_infra_error() -> None:
    from envgym.families import MixtureEnv

    env = MixtureEnv({"NoHost": _NoHostEnv}, None, None, lambda cls: cls())
    obs, info = env.reset(seed=0)
    assert info["infra_error"] == "image envgym/x:1 is missing" and "not your fault" in obs


class _Pong(Tool):
    """Answer a ping."""

    name: ClassVar[str] = "pong"


class _TwoToolEnv(_FlakyHostEnv):
    tools: ClassVar[tuple[type[Tool], ...]] = (_Ping, _Pong)

    @handles(_Ping)
    def _on_ping(self, call: _Ping) -> StepOutcome:
        from envgym.core import Feedback

        return StepOutcome(feedback=Feedback(summary="ping handled"))

    _apply = TextEnv._apply  # back to the table dispatch (the parent class raises)


def test_tools_dispatch_by_name_and_an_unhandled_tool_says_so() -> None:
    env = _TwoToolEnv()
    env.reset(seed=0)
    _, _, _, _, info = env.step('{"name": "ping", "arguments": {}}')
    assert info["feedback"]["summary"] == "ping handled"
    assert _TwoToolEnv._handlers == {"ping": "_on_ping"}
    with pytest.raises(NotImplementedError, match="no @handles method for tool 'pong'"):
        env.step('{"name": "pong", "arguments": {}}')
