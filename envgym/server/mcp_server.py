"""One envgym session as an MCP server: the env's tools become MCP tools, a call is a step.

Why the low-level `mcp.server.Server` rather than decorated functions: envgym tools are pydantic models whose
JSON schemas already exist (`info["tools"]`, the OpenAI function schemas), so the MCP `inputSchema` is that
same `parameters` object, byte for byte, and a mixture env can change its tool set on reset. One MCP
connection owns one env (stdio: one process per session), closed when the connection ends.

Tools offered: `reset_task` (seed, difficulty) and, after a reset, the current task's tools. A tool result's
text is the env's observation; `structuredContent` carries reward, terminated, truncated, solved, turn and
infra_error; `isError` is set when the env's feedback reports an error (malformed or refused call).
"""

from __future__ import annotations

import json
import sys
from typing import Any

import gymnasium as gym

from envgym.extras import needs_extra

with needs_extra("server", also=("anyio",)):  # a missing one names the extra to install
    import anyio
    import anyio.to_thread
    from mcp import types
    from mcp.server.lowlevel import Server
    from mcp.server.stdio import stdio_server

RESET_TOOL = "reset_task"
RESET_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "seed": {"type": "integer", "minimum": 0, "description": "task seed; same seed, same task"},
        "difficulty": {"type": "number", "minimum": 0, "maximum": 1, "description": "0 trivial .. 1 hardest"},
    },
    "additionalProperties": False,
}


class EnvToolSession:
    """The env behind one MCP connection; every env call runs in a worker thread, one at a time."""

    def __init__(self, env: gym.Env) -> None:
        self.env = env
        self.tools: list[dict[str, Any]] = []
        self.started = False
        self._lock = anyio.Lock()

    def list_tools(self) -> list[types.Tool]:
        described = [(RESET_TOOL, "Start a new task (call this first). Returns the task description.", RESET_SCHEMA)]
        for schema in self.tools:
            function = schema["function"]
            described.append((function["name"], function.get("description"), function["parameters"]))
        # wire names (camelCase aliases) validate under both the 1.x and 2.x `mcp` models
        return [
            types.Tool.model_validate({"name": name, "description": text, "inputSchema": parameters})
            for name, text, parameters in described
        ]

    async def call(self, name: str, arguments: dict[str, Any]) -> types.CallToolResult:
        async with self._lock:
            if name == RESET_TOOL:
                return await self._reset(arguments)
            if not self.started:
                return _text_result(f"call {RESET_TOOL} first to start a task", {}, is_error=True)
            action = json.dumps({"name": name, "arguments": arguments})
            observation, reward, terminated, truncated, info = await anyio.to_thread.run_sync(self.env.step, action)
            structured = {
                "reward": float(reward),
                "terminated": bool(terminated),
                "truncated": bool(truncated),
                "solved": bool(info.get("solved", False)),
                "turn": info.get("turn"),
                "max_turns": info.get("max_turns"),
                "infra_error": info.get("infra_error"),
            }
            return _text_result(observation, structured, is_error=bool(info.get("feedback", {}).get("error")))

    async def _reset(self, arguments: dict[str, Any]) -> types.CallToolResult:
        unknown = set(arguments) - {"seed", "difficulty"}
        seed, difficulty = arguments.get("seed"), arguments.get("difficulty")
        if unknown or not (seed is None or (isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0)):
            return _text_result("reset_task takes an integer seed >= 0 and a difficulty in [0, 1]", {}, is_error=True)
        options = {} if difficulty is None else {"difficulty": difficulty}
        try:
            observation, info = await anyio.to_thread.run_sync(lambda: self.env.reset(seed=seed, options=options))
        except ValueError as exc:  # the env refused the difficulty
            return _text_result(str(exc).splitlines()[0], {}, is_error=True)
        self.tools, self.started = list(info.get("tools") or []), True
        structured = {
            "task": info.get("task"),
            "max_turns": info.get("max_turns"),
            "infra_error": info.get("infra_error"),
        }
        return _text_result(observation, structured, is_error=bool(info.get("infra_error")))

    def close(self) -> None:
        self.env.close()


def _text_result(text: str, structured: dict[str, Any], is_error: bool) -> types.CallToolResult:
    result = {"content": [{"type": "text", "text": text}], "structuredContent": structured or None, "isError": is_error}
    return types.CallToolResult.model_validate(result)


def build_server(session: EnvToolSession, env_id: str) -> Server[Any]:
    """An MCP server whose tools act in `session`'s env (the `mcp` 1.x decorator API, or 2.x constructor hooks)."""
    name = f"envgym {env_id}"
    instructions = f"An envgym environment ({env_id}). Call {RESET_TOOL} first, then act with the task's tools."

    async def list_tools_v2(ctx: Any, params: Any) -> Any:
        return types.ListToolsResult(tools=session.list_tools())

    async def call_tool_v2(ctx: Any, params: Any) -> types.CallToolResult:
        return await session.call(params.name, dict(params.arguments or {}))

    if not hasattr(Server, "call_tool"):  # mcp >= 2: handlers are constructor arguments
        hooks: dict[str, Any] = {"on_list_tools": list_tools_v2, "on_call_tool": call_tool_v2}
        return Server(name, instructions=instructions, **hooks)
    server: Any = Server(name, instructions=instructions)  # Any: the decorators exist in 1.x only

    @server.list_tools()
    async def list_tools() -> list[types.Tool]:
        return session.list_tools()

    # no schema validation here: a malformed call is the env's to answer (feedback that costs a turn)
    @server.call_tool(validate_input=False)
    async def call_tool(tool: str, arguments: dict[str, Any] | None) -> types.CallToolResult:
        return await session.call(tool, dict(arguments or {}))

    typed: Server[Any] = server
    return typed


def run_stdio(env_id: str, env_kwargs: dict[str, Any] | None = None) -> None:
    """Serve one session of `env_id` on stdin/stdout until the client hangs up; then close the env."""
    from envgym.server.app import check_env_id

    check_env_id(env_id)
    session = EnvToolSession(gym.make(env_id, disable_env_checker=True, **(env_kwargs or {})))
    server = build_server(session, env_id)

    async def main() -> None:
        async with stdio_server() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())

    try:
        anyio.run(main)
    finally:
        session.close()


if __name__ == "__main__":
    run_stdio(sys.argv[1], json.loads(sys.argv[2]) if len(sys.argv) > 2 else None)
