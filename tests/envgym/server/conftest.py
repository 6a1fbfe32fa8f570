"""Helpers for server tests: a raw WebSocket client, for saying things a well-behaved client never would."""

from __future__ import annotations

import json
from typing import Any

from websockets.sync.client import ClientConnection, connect

from envgym.remote import CONNECT_EXTRA


def raw_client(base_url: str, token: str | None = None, max_size: int | None = None) -> ClientConnection:
    headers = {"Authorization": f"Bearer {token}"} if token else None
    url = base_url.replace("http://", "ws://") + "/ws"
    return connect(url, additional_headers=headers, max_size=max_size, open_timeout=10, **CONNECT_EXTRA)


def ask(ws: ClientConnection, frame: str | bytes | dict[str, Any]) -> dict[str, Any]:
    """Send one frame, return the parsed answer."""
    ws.send(json.dumps(frame) if isinstance(frame, dict) else frame)
    reply: dict[str, Any] = json.loads(ws.recv(timeout=30))
    return reply


def error_code(reply: dict[str, Any]) -> str | None:
    return str(reply["data"]["code"]) if reply.get("type") == "error" else None
