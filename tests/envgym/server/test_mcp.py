"""An MCP client (the official SDK's own client session, over stdio) acts in an envgym env through its tools."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import gymnasium as gym
from mcp.client.stdio import StdioServerParameters

import envgym  # noqa: F401


@asynccontextmanager
async def _client(env_id: str) -> AsyncIterator[Any]:
    """The SDK's client on `python -m envgym.server.mcp_server ENV_ID` (mcp 1.x `ClientSession`, 2.x `Client`)."""
    params = StdioServerParameters(command=sys.executable, args=["-m", "envgym.server.mcp_server", env_id])
    try:
        from mcp import Client  # type: ignore[attr-defined]  # mcp >= 2
    except ImportError:
        from mcp import ClientSession
        from mcp.client.stdio import stdio_client

        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            yield session
    else:
        async with Client(params) as client:
            yield client


async def _call(client: Any, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """A tool result as its wire JSON (camelCase: `content`, `structuredContent`, `isError`) in either SDK."""
    result = await client.call_tool(name, arguments)
    wire: dict[str, Any] = result.model_dump(by_alias=True, mode="json")
    return wire


async def _tools(client: Any) -> dict[str, dict[str, Any]]:
    listed = await client.list_tools()
    return {t.name: t.model_dump(by_alias=True, mode="json")["inputSchema"] for t in listed.tools}


def test_mcp_tools_match_the_env_tool_schemas_and_play_an_episode() -> None:
    local = gym.make("envgym/Sokoban-v0")
    obs, info = local.reset(seed=8, options={"difficulty": 0.2})

    async def play() -> None:
        async with _client("envgym/Sokoban-v0") as client:
            assert list(await _tools(client)) == ["reset_task"]
            result = await _call(client, "reset_task", {"seed": 8, "difficulty": 0.2})
            assert result["content"][0]["text"] == obs and not result["isError"]
            assert result["structuredContent"]["task"] == info["task"]
            schemas = {t["function"]["name"]: t["function"]["parameters"] for t in info["tools"]}
            assert {k: v for k, v in (await _tools(client)).items() if k != "reset_task"} == schemas
            for _ in range(200):
                action = local.unwrapped.oracle_action()
                obs_l, reward, terminated, truncated, step_info = local.step(action)
                call = step_info["tool_call"]
                result = await _call(client, call["name"], call["arguments"])
                assert result["content"][0]["text"] == obs_l
                assert result["structuredContent"]["reward"] == reward
                if terminated or truncated:
                    break
            assert result["structuredContent"]["solved"] is True

    anyio.run(play)


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
        async with _client("envgym/Sokoban-v0") as client:
            before = await _call(client, "move", {"direction": "up"})
            assert before["isError"] and "reset_task" in before["content"][0]["text"]
            for name, arguments in BAD_CALLS:
                await _call(client, "reset_task", {"seed": 1})
                result = await _call(client, name, arguments)
                assert result["isError"], (name, result)
            again = await _call(client, "reset_task", {"seed": 2})
            assert not again["isError"] and again["structuredContent"]["task"]["seed"] == 2

    anyio.run(misuse)
