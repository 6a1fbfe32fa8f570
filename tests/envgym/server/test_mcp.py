"""An MCP client (the official SDK's own `Client`, over stdio) acts in an envgym env through its tools."""

from __future__ import annotations

import sys
from typing import Any

import anyio
import gymnasium as gym
from mcp import Client
from mcp.client.stdio import StdioServerParameters

import envgym  # noqa: F401


def _stdio(env_id: str) -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable, args=["-m", "envgym.server.mcp_server", env_id])


def _run(coro: Any) -> Any:
    return anyio.run(coro)


def test_mcp_tools_match_the_env_tool_schemas_and_play_an_episode() -> None:
    local = gym.make("envgym/Sokoban-v0")
    obs, info = local.reset(seed=8, options={"difficulty": 0.2})

    async def play() -> None:
        async with Client(_stdio("envgym/Sokoban-v0")) as client:
            listed = await client.list_tools()
            assert [t.name for t in listed.tools] == ["reset_task"]
            result = await client.call_tool("reset_task", {"seed": 8, "difficulty": 0.2})
            assert result.content[0].text == obs and not result.is_error
            assert result.structured_content["task"] == info["task"]
            listed = await client.list_tools()
            schemas = {t["function"]["name"]: t["function"]["parameters"] for t in info["tools"]}
            assert {t.name: t.input_schema for t in listed.tools if t.name != "reset_task"} == schemas
            for _ in range(200):
                action = local.unwrapped.oracle_action()
                obs_l, reward, terminated, truncated, step_info = local.step(action)
                call = step_info["tool_call"]
                result = await client.call_tool(call["name"], call["arguments"])
                assert result.content[0].text == obs_l
                assert result.structured_content["reward"] == reward
                if terminated or truncated:
                    break
            assert result.structured_content["solved"] is True

    _run(play)


BAD_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("move", {"direction": "diagonal"}),
    ("move", {"direction": ["up"] * 10_000}),
    ("move", {}),
    ("no_such_tool", {}),
    ("reset_task", {"seed": "x"}),
    ("reset_task", {"seed": True}),
    ("reset_task", {"seed": 1, "sandbox": "local"}),  # never a gym.make kwarg
    ("reset_task", {"difficulty": 5}),
]


def test_bad_calls_are_tool_errors_and_the_session_goes_on() -> None:
    async def misuse() -> None:
        async with Client(_stdio("envgym/Sokoban-v0")) as client:
            before = await client.call_tool("move", {"direction": "up"})
            assert before.is_error and "reset_task" in before.content[0].text
            for name, arguments in BAD_CALLS:
                await client.call_tool("reset_task", {"seed": 1})
                result = await client.call_tool(name, arguments)
                assert result.is_error, (name, result)
            again = await client.call_tool("reset_task", {"seed": 2})
            assert not again.is_error and again.structured_content["task"]["seed"] == 2

    _run(misuse)
