"""The FastAPI app of `envgym serve`: OpenEnv's `/ws` session protocol, `/health`, `/metrics`, `/schema`.

Why one WebSocket per session: the env lives as long as the connection, so a client that goes away (closed,
killed, silent past the idle timeout or the ping timeout) takes its env, and its sandboxes, with it. Every
frame goes through `protocol.parse_request`; whatever it is, the client gets an answer frame and the server
keeps serving everyone else.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

import gymnasium as gym

from envgym.extras import needs_extra

with needs_extra("server"):  # a missing one names the extra to install
    from fastapi import FastAPI, HTTPException, Request, WebSocket
    from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field

from envgym.server.protocol import (
    ErrorCode,
    ResetData,
    StepData,
    ToolOp,
    WireError,
    dumps,
    error_frame,
    observation_frame,
    parse_request,
)
from envgym.server.sessions import CapacityReached, Session, SessionManager

log = logging.getLogger("envgym.server")

# WebSocket close codes (RFC 6455 and the IANA registry)
CLOSE_NORMAL, CLOSE_POLICY, CLOSE_INTERNAL, CLOSE_TRY_LATER = 1000, 1008, 1011, 1013


class ServeConfig(BaseModel):
    """The operator's choices. Clients choose only what `ResetData` allows."""

    env_id: str
    env_kwargs: dict[str, Any] = Field(default_factory=dict, description="gym.make kwargs, set by the operator")
    max_sessions: int = Field(default=64, ge=1, le=4096)
    idle_timeout_s: float = Field(default=300.0, gt=0)
    max_message_bytes: int = Field(default=1 << 20, ge=1024)
    token: str | None = Field(default=None, description="bearer token; None serves without auth (loopback only!)")
    allow_params: bool = Field(default=True, description="accept clients' `params` (the env's native knobs)")


def check_env_id(env_id: str) -> None:
    """Refuse ids that are not registered envgym envs, with the list of what is."""
    import envgym  # noqa: F401  (registers the ids)

    if env_id not in gym.registry or not env_id.startswith("envgym/"):
        known = ", ".join(sorted(k for k in gym.registry if k.startswith("envgym/")))
        raise ValueError(f"unknown env id {env_id!r}; serve one of: {known}")


def _authorized(header: str | None, token: str | None) -> bool:
    if token is None:
        return True
    scheme, _, value = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode())


class SessionHandler:
    """Runs the ops of one session; every env call happens in the manager's pool."""

    def __init__(self, manager: SessionManager, env_id: str, allow_params: bool = True) -> None:
        self.manager = manager
        self.env_id = env_id
        self.allow_params = allow_params

    async def reset(self, session: Session, data: ResetData) -> str:
        if data.params and not self.allow_params:
            raise WireError(
                ErrorCode.VALIDATION_ERROR, "this server does not accept 'params'; send seed and difficulty"
            )
        reset = functools.partial(session.env.reset, seed=data.seed, options=data.options())
        try:
            observation, info = await self.manager.call(reset)
        except ValueError as exc:  # the env refused the difficulty or params
            raise WireError(ErrorCode.VALIDATION_ERROR, str(exc).splitlines()[0][:500]) from None
        session.episode_id = data.episode_id or uuid.uuid4().hex
        session.step_count, session.last_info, session.task = 0, info, info.get("task")
        session.tools = list(info.get("tools") or [])
        session.done = bool(info.get("infra_error"))
        self.manager.metrics.counters["resets"] += 1
        return observation_frame(observation, None, False, False, info, done=session.done)

    async def _advance(self, session: Session, text: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        if session.episode_id is None:
            raise WireError(ErrorCode.VALIDATION_ERROR, "send a reset before the first step")
        started = time.perf_counter()
        observation, reward, terminated, truncated, info = await self.manager.call(session.env.step, text)
        self.manager.metrics.step_seconds += time.perf_counter() - started
        self.manager.metrics.counters["steps"] += 1
        session.step_count += 1
        session.last_info = info
        session.done = bool(terminated or truncated)
        return observation, float(reward), bool(terminated), bool(truncated), info

    async def step(self, session: Session, data: StepData) -> str:
        observation, reward, terminated, truncated, info = await self._advance(session, data.action_text())
        return observation_frame(observation, reward, terminated, truncated, info, session.done)

    async def tool_op(self, session: Session, op: ToolOp) -> str:
        """OpenEnv's `list_tools` / `call_tool` steps: the env's tools by their schemas; a call is one step.

        As in OpenEnv, `error` is for infrastructure failures only; what the env says about a bad call (unknown
        tool, wrong arguments) is the result, and it costs a turn like any other action.
        """
        if op.type == "list_tools":
            schemas = session.tools if session.episode_id is not None else self._class_tools(session)
            tools = [
                {
                    "name": tool["function"]["name"],
                    "description": tool["function"].get("description") or "",
                    "input_schema": tool["function"]["parameters"],
                }
                for tool in schemas
            ]
            frame: dict[str, Any] = {
                "observation": {"tools": tools, "metadata": {}},
                "reward": None,
                "done": session.done,
            }
            return dumps({"type": "observation", "data": frame})
        observation, reward, terminated, truncated, info = await self._advance(session, op.action_text())
        error = {"error_type": "execution_error", "message": info["infra_error"]} if info.get("infra_error") else None
        result = {"data": observation, "terminated": terminated, "truncated": truncated, "info": info}
        frame = {
            "observation": {"tool_name": op.tool_name, "result": result, "error": error, "metadata": {}},
            "reward": reward,
            "done": session.done,
        }
        return dumps({"type": "observation", "data": frame})

    @staticmethod
    def _class_tools(session: Session) -> list[dict[str, Any]]:
        """Before the first reset (OpenEnv lists tools without one): the env's tools as its class declares them."""
        from envgym.actions import tool_schemas

        current = getattr(session.env.unwrapped, "current_tools", None)
        return tool_schemas(current()) if callable(current) else []

    def state(self, session: Session) -> str:
        info = session.last_info
        data = {
            "episode_id": session.episode_id,
            "step_count": session.step_count,
            "env_id": self.env_id,
            "done": session.done,
            "task": session.task,
            "turn": info.get("turn", 0),
            "max_turns": info.get("max_turns"),
        }
        return dumps({"type": "state", "data": data})


def create_app(config: ServeConfig) -> FastAPI:
    """The ASGI app serving `config.env_id`; run it with uvicorn (see `envgym.server.cli`)."""
    check_env_id(config.env_id)
    # no passive env checker: the contract tests check every env, and gymnasium's checker breaks (TypeError on
    # the next step) once a reset has raised, e.g. on a client's invalid params
    kwargs = {"disable_env_checker": True, **config.env_kwargs}
    manager = SessionManager(lambda: gym.make(config.env_id, **kwargs), config.max_sessions)
    handler = SessionHandler(manager, config.env_id, config.allow_params)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await manager.close_all()

    app = FastAPI(title=f"envgym serve {config.env_id}", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.manager = manager
    app.state.config = config

    def require_token(request: Request) -> None:
        if not _authorized(request.headers.get("authorization"), config.token):
            raise HTTPException(status_code=401, detail="missing or wrong bearer token")

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "healthy"}

    @app.get("/metrics", response_class=PlainTextResponse)
    async def metrics(request: Request) -> str:
        require_token(request)
        return manager.metrics.render(manager.active, manager.max_sessions)

    @app.get("/metadata")
    async def metadata(request: Request) -> dict[str, Any]:
        require_token(request)
        spec = gym.spec(config.env_id)
        cls = spec.entry_point if isinstance(spec.entry_point, str) else repr(spec.entry_point)
        return {"name": config.env_id, "description": f"envgym env {config.env_id} ({cls})", "version": "0"}

    @app.get("/schema")
    async def schema(request: Request) -> JSONResponse:
        require_token(request)
        observation = {
            "type": "object",
            "properties": {
                "text": {"type": "string"},
                "terminated": {"type": "boolean"},
                "truncated": {"type": "boolean"},
                "info": {"type": "object"},
            },
        }
        return JSONResponse(
            {"action": StepData.model_json_schema(), "observation": observation, "reset": ResetData.model_json_schema()}
        )

    @app.websocket("/ws")
    async def session_socket(websocket: WebSocket) -> None:
        await websocket.accept()
        if not _authorized(websocket.headers.get("authorization"), config.token):
            manager.metrics.counters["unauthorized"] += 1
            await _refuse(websocket, ErrorCode.UNAUTHORIZED, "missing or wrong bearer token", CLOSE_POLICY)
            return
        try:
            session = await manager.open()
        except CapacityReached as exc:
            await _refuse(websocket, ErrorCode.CAPACITY_REACHED, str(exc), CLOSE_TRY_LATER)
            return
        except Exception as exc:
            log.exception("could not create env %s", config.env_id)
            await _refuse(websocket, ErrorCode.FACTORY_ERROR, f"could not create the env: {exc}"[:500], CLOSE_INTERNAL)
            return
        reason = "disconnect"
        try:
            reason = await _serve_session(websocket, session, handler, config)
        except Exception:  # the peer vanished mid-send, or the transport failed: the session ends, nothing else
            reason = "transport"
        finally:
            await manager.close(session, reason)
            with suppress(Exception):  # the peer may already be gone
                await websocket.close(CLOSE_NORMAL)

    return app


async def _serve_session(websocket: WebSocket, session: Session, handler: SessionHandler, config: ServeConfig) -> str:
    """Answer frames until the client closes, disconnects or idles out; return why the session ended.

    While an env call runs, the socket is still watched: a client that vanishes mid-step ends the session at
    once (its env is closed while the step's thread finishes on its own), and a frame that arrives meanwhile
    is answered next, in order. At most one frame is read ahead, so a flood meets TCP backpressure.
    """
    counters = handler.manager.metrics.counters
    incoming: asyncio.Task[Any] | None = None
    try:
        while True:
            if incoming is None:
                incoming = asyncio.ensure_future(websocket.receive())
            try:
                message = await asyncio.wait_for(asyncio.shield(incoming), timeout=config.idle_timeout_s)
            except TimeoutError:
                counters["sessions_idle"] += 1
                await websocket.send_text(error_frame(ErrorCode.IDLE_TIMEOUT, "session idle too long; closed"))
                return "idle"
            incoming = None
            if message["type"] == "websocket.disconnect":
                return "disconnect"
            session.last_active = time.monotonic()
            raw = message.get("text")
            if raw is None:
                raw = message.get("bytes")
            work = asyncio.ensure_future(_answer(raw, session, handler, config))
            incoming = asyncio.ensure_future(websocket.receive())
            await asyncio.wait({work, incoming}, return_when=asyncio.FIRST_COMPLETED)
            if not work.done():
                if incoming.result()["type"] == "websocket.disconnect":
                    work.add_done_callback(_consume)  # its thread runs to its end; nobody waits for it
                    return "disconnect"
                await work  # a pipelined frame: it is answered after this one
            reply = work.result()
            if reply is None:
                return "client_close"
            await websocket.send_text(reply)
    finally:
        if incoming is not None and not incoming.done():
            incoming.cancel()


async def _answer(
    raw: str | bytes | None, session: Session, handler: SessionHandler, config: ServeConfig
) -> str | None:
    """The reply frame to one client frame (None for `close`); never raises."""
    counters = handler.manager.metrics.counters
    try:
        request = parse_request(raw, config.max_message_bytes)
        if request.type == "close":
            return None
        if request.type == "reset":
            assert request.reset is not None
            return await handler.reset(session, request.reset)
        if request.tool_op is not None:
            return await handler.tool_op(session, request.tool_op)
        if request.type == "step":
            assert request.step is not None
            return await handler.step(session, request.step)
        return handler.state(session)
    except WireError as exc:
        counters[f"errors|code={exc.code.value}"] += 1
        return error_frame(exc.code, exc.message)
    except Exception as exc:  # an env bug: report it to this client only, keep the session
        log.exception("session %s: env call failed", session.id)
        counters[f"errors|code={ErrorCode.EXECUTION_ERROR.value}"] += 1
        return error_frame(ErrorCode.EXECUTION_ERROR, f"{type(exc).__name__}: {exc}"[:500])


def _consume(task: asyncio.Future[Any]) -> None:
    """Retrieve an abandoned task's outcome so asyncio does not log it as never retrieved."""
    if not task.cancelled():
        task.exception()


async def _refuse(websocket: WebSocket, code: ErrorCode, message: str, close_code: int) -> None:
    with suppress(Exception):  # the peer may already be gone
        await websocket.send_text(error_frame(code, message))
        await websocket.close(close_code, reason=code.value)
