"""`RemoteEnv`: a `gymnasium.Env` that proxies an env served by `envgym serve`, so local code runs unchanged.

Why a proxy and not a client library: envgym's runner, eval and trainer (and any gymnasium code) take a
`gym.Env`; this one has the same spaces, the same `(observation, reward, terminated, truncated, info)` and
the same info keys as the served env, one WebSocket session per instance. A lost connection mid-episode is
the infrastructure's fault, so `step` reports it in `info["infra_error"]` (as a local env does) instead of
raising in the middle of a rollout; the next `reset` opens a new session.

    from envgym.remote import RemoteEnv
    env = RemoteEnv("ws://127.0.0.1:8000", token=None)
    observation, info = env.reset(seed=3, options={"difficulty": 0.5})
"""

from __future__ import annotations

import inspect
import json
from contextlib import suppress
from typing import Any, ClassVar

import gymnasium as gym

from envgym.extras import needs_extra
from envgym.text import text_space

with needs_extra("server"):  # a missing one names the extra to install
    from websockets.exceptions import ConnectionClosed, WebSocketException
    from websockets.sync.client import ClientConnection, connect

RESET_OPTIONS = frozenset({"difficulty", "params", "episode_id"})
# websockets >= 17 wants `legacy=True` to return a plain connection outside a `with` block; older ones lack it
CONNECT_EXTRA: dict[str, Any] = {"legacy": True} if "legacy" in inspect.signature(connect).parameters else {}


class RemoteEnvError(RuntimeError):
    """The server refused a request (bad options, capacity, auth); the message says which and why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{message} ({code})")
        self.code = code


def ws_url(url: str) -> str:
    """`http(s)://host:port[/prefix]` or `ws(s)://...` to the session endpoint `ws(s)://host:port[/prefix]/ws`."""
    for plain, secure in (("http://", "ws://"), ("https://", "wss://")):
        if url.startswith(plain):
            url = secure + url[len(plain) :]
    if not url.startswith(("ws://", "wss://")):
        raise ValueError(f"server url must start with http://, https://, ws:// or wss://, got {url!r}")
    url = url.rstrip("/")
    return url if url.endswith("/ws") else url + "/ws"


class RemoteEnv(gym.Env[str, str]):
    """One session of a served env. `close()` ends the session, and the server closes the env."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi"], "render_fps": 1}  # type: ignore[misc]

    def __init__(
        self,
        url: str,
        token: str | None = None,
        timeout: float = 900.0,
        connect_timeout: float = 10.0,
        render_mode: str | None = None,
    ) -> None:
        self.url = ws_url(url)
        self.token = token
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.render_mode = render_mode
        self.observation_space = text_space()
        self.action_space = text_space()
        self._ws: ClientConnection | None = None
        self.last_observation = ""
        self.task: dict[str, Any] | None = None
        self.tools: list[dict[str, Any]] = []
        self.turn = 0
        self.max_turns = 0
        self.env_id, self.version = "envgym/Remote", "0"
        self.state()  # connect now: a wrong url, token or a full server fails here, not mid-rollout

    # ----- transport ----------------------------------------------------------------------------------
    def _connection(self) -> ClientConnection:
        if self._ws is None:
            headers = {"Authorization": f"Bearer {self.token}"} if self.token else None
            self._ws = connect(
                self.url,
                additional_headers=headers,
                max_size=None,
                open_timeout=self.connect_timeout,
                **CONNECT_EXTRA,
            )
        return self._ws

    def _drop(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            with suppress(Exception):  # already gone
                ws.close()

    def _request(self, message: dict[str, Any]) -> dict[str, Any]:
        ws = self._connection()
        try:
            with suppress(ConnectionClosed):  # a refusing server says why, then closes: read its reason below
                ws.send(json.dumps(message))
            reply = json.loads(ws.recv(timeout=self.timeout))
        except BaseException:
            self._drop()  # a half-done exchange leaves the stream out of step: start over next time
            raise
        if reply.get("type") == "error":
            error = reply.get("data", {})
            code, text = str(error.get("code", "UNKNOWN")), str(error.get("message", "server error"))
            if code in ("CAPACITY_REACHED", "UNAUTHORIZED", "IDLE_TIMEOUT", "FACTORY_ERROR"):
                self._drop()  # the server has closed this session
            raise RemoteEnvError(code, text)
        data: dict[str, Any] = reply["data"]
        return data

    # ----- gymnasium API ------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """The server's view of this session (episode id, step count, env id, task)."""
        state = self._request({"type": "state"})
        env_id = str(state.get("env_id") or self.env_id)
        self.env_id = env_id
        return state

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict]:
        super().reset(seed=seed)
        unknown = set(options or {}) - RESET_OPTIONS
        if unknown:
            raise ValueError(
                f"a served env accepts only the reset options {sorted(RESET_OPTIONS)}; got {sorted(unknown)}"
            )
        data: dict[str, Any] = {k: v for k, v in (options or {}).items() if v is not None}
        if seed is not None:
            data["seed"] = int(seed)
        payload = self._request({"type": "reset", "data": data})
        observation, info = payload["observation"]["text"], payload["observation"]["info"]
        self.task = info.get("task")
        if self.task and self.task.get("env"):
            self.env_id, _, self.version = str(self.task["env"]).partition("@")
        self.tools = list(info.get("tools") or [])
        self.turn, self.max_turns = int(info.get("turn", 0)), int(info.get("max_turns", 0))
        self.last_observation = observation
        return observation, info

    def step(self, action: str) -> tuple[str, float, bool, bool, dict]:
        try:
            payload = self._request({"type": "step", "data": {"text": action}})
        except (WebSocketException, OSError, TimeoutError) as exc:
            return self._lost(exc)
        observation = payload["observation"]
        info = observation["info"]
        self.turn = int(info.get("turn", self.turn))
        self.last_observation = observation["text"]
        return (
            observation["text"],
            float(payload.get("reward") or 0.0),
            bool(observation["terminated"]),
            bool(observation["truncated"]),
            info,
        )

    def _lost(self, exc: BaseException) -> tuple[str, float, bool, bool, dict]:
        """The session is gone (server restarted, network down): an infra error, as a local env reports it."""
        message = f"lost the connection to {self.url}: {type(exc).__name__}: {exc}"
        feedback = {
            "summary": "Infrastructure failure (not your fault).",
            "details": None,
            "error": message,
            "hint": None,
        }
        info = {
            "feedback": feedback,
            "reward_components": {},
            "solved": False,
            "infra_error": message,
            "tool_call": {},
            "commands": [],
            "turn": self.turn,
            "max_turns": self.max_turns,
        }
        return f"{feedback['summary']}\nError: {message}", 0.0, True, False, info

    def render(self) -> str | None:
        return self.last_observation if self.render_mode == "ansi" else None

    def close(self) -> None:
        if self._ws is not None:
            with suppress(Exception):  # the server is gone already; nothing to release
                self._ws.send(json.dumps({"type": "close"}))
        self._drop()
        super().close()
