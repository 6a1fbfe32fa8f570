"""OpenEnv's own client (openenv-core from PyPI), unchanged, drives a served envgym env."""

from __future__ import annotations

import json
from collections.abc import Iterator

import gymnasium as gym
import pytest

import envgym  # noqa: F401
from envgym.server.app import ServeConfig
from envgym.server.background import serve_in_background

pytestmark = pytest.mark.slow  # importing openenv.core pulls in gradio and pandas (tens of seconds on 2 cores)


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with serve_in_background(ServeConfig(env_id="envgym/Sokoban-v0")) as (base, _):
        yield base


def test_openenv_generic_client_plays_an_episode_like_a_local_env(url: str) -> None:
    from openenv.core import GenericEnvClient

    local = gym.make("envgym/Sokoban-v0")
    obs, info = local.reset(seed=21, options={"difficulty": 0.3})
    with GenericEnvClient(base_url=url).sync() as client:
        result = client.reset(seed=21, difficulty=0.3)
        assert result.observation["text"] == obs and result.observation["info"] == info
        assert result.done is False and result.reward is None
        for _ in range(200):
            action = local.unwrapped.oracle_action()
            obs, reward, terminated, truncated, info = local.step(action)
            result = client.step({"text": action})
            assert result.observation["text"] == obs
            assert result.reward == reward and result.done == (terminated or truncated)
            if result.done:
                break
        assert result.reward == 1.0 and result.observation["info"]["solved"]
        state = client.state()
        assert state["env_id"] == "envgym/Sokoban-v0" and state["step_count"] == info["turn"]
        assert state["task"]["seed"] == 21


def test_openenv_client_gets_structured_errors_and_the_tool_call_form(url: str) -> None:
    from openenv.core import GenericEnvClient

    with GenericEnvClient(base_url=url).sync() as client:
        with pytest.raises(RuntimeError, match="VALIDATION_ERROR"):
            client.reset(seed=1, sandbox="local")
        result = client.reset(seed=1)
        tool = result.observation["info"]["tools"][0]["function"]["name"]
        result = client.step({"tool_call": {"name": tool, "arguments": {"direction": "up"}}})
        assert result.observation["info"]["tool_call"]["name"] == tool
        assert json.loads(json.dumps(result.observation["info"])) == result.observation["info"]


def test_openenv_schema_and_health_endpoints(url: str) -> None:
    import httpx

    assert httpx.get(f"{url}/health").json()["status"] == "healthy"
    schema = httpx.get(f"{url}/schema").json()
    assert set(schema) >= {"action", "observation"}
    assert "text" in schema["action"]["properties"]


def test_openenv_mcp_tool_client_lists_and_calls_the_env_tools(url: str) -> None:
    """OpenEnv's tool-calling client (`MCPToolClient`, list_tools / call_tool steps over /ws)."""
    from openenv.core.env_server.mcp_types import CallToolAction
    from openenv.core.mcp_client import MCPToolClient

    local = gym.make("envgym/Sokoban-v0")
    obs, info = local.reset(seed=5, options={"difficulty": 0.2})
    with MCPToolClient(base_url=url).sync() as client:
        before = client.list_tools()  # OpenEnv lists tools without a reset
        assert [t.name for t in before] == ["move"]
        client.reset(seed=5, difficulty=0.2)
        tools = client.list_tools(use_cache=False)
        schema = info["tools"][0]["function"]
        assert [(t.name, t.input_schema) for t in tools] == [(schema["name"], schema["parameters"])]
        for _ in range(200):
            action = local.unwrapped.oracle_action()
            obs, reward, terminated, truncated, step_info = local.step(action)
            call = step_info["tool_call"]
            result = client.step(CallToolAction(tool_name=call["name"], arguments=call["arguments"]))
            assert result.observation.result["data"] == obs and result.reward == reward
            if result.done:
                break
        assert result.reward == 1.0
        client.reset(seed=5)
        text = client.call_tool("move", direction="sideways")  # the env's feedback is the result, not an error
        assert "sideways" in text or "direction" in text.lower()
