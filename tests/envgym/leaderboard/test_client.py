"""`envgym submit` against a broken or hostile server reply: one line and the right exit code, never a
traceback, and every string of the server's printed as plain, visible text (no markup, no escape sequences)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from envgym.cli import app

SCORE = {"success_rate": 1, "claimed_success_rate": 1, "mean_return": 1, "graded": 1, "tasks": 1, "diverged": 0}
REPLIES: dict[str, tuple[tuple[int, Any], tuple[int, Any]]] = {  # (upload reply, status reply)
    "markup in status_url": ((202, {"id": 1, "status_url": "[/bold]"}), (200, {"status": "graded", "scores": {}})),
    "escapes in problems": ((400, {"error": "x", "problems": ["\x1b]0;owned\x07\x1b[2J"]}), (404, {})),
    "markup in an env id": (
        (202, {"id": 1, "status_url": "/api/submissions/1"}),
        (200, {"status": "graded", "scores": {"[link=http://evil.example/]click[/link]": SCORE}}),
    ),
    "a list body": ((400, [1, 2]), (404, {})),
    "not json": ((202, b"<html>proxy</html>"), (404, {})),
    "wrong types": ((202, {"id": "1; drop", "status_url": 5}), (404, {})),
    "status not json": ((202, {"id": 1, "status_url": "/s"}), (200, b"\xff\xfe")),
    "scores of the wrong shape": ((202, {"id": 1, "status_url": "/s"}), (200, {"status": "graded", "scores": [1]})),
}


class FakeBoard(BaseHTTPRequestHandler):
    replies: tuple[tuple[int, Any], tuple[int, Any]] = REPLIES["a list body"]

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, reply: tuple[int, Any]) -> None:
        code, body = reply
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self._send(self.replies[0])

    def do_GET(self) -> None:
        self._send(self.replies[1])


@pytest.fixture()
def board() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeBoard)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("case", sorted(REPLIES))
def test_submit_survives_any_reply(
    case: str, board: str, oracle_run: Path, envgym_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(FakeBoard, "replies", REPLIES[case])
    monkeypatch.setenv("ENVGYM_TOKEN", "egl_test")
    result = envgym_cli.invoke(app, ["submit", str(oracle_run), "--to", board, "--split", "dev", "--timeout", "5"])
    output = result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), output
    assert "Traceback" not in output and "internal error" not in output, output
    assert "\x1b" not in output and "\x07" not in output, output  # escapes are shown, never sent
    if case == "markup in an env id":
        assert result.exit_code == 0 and "[link=http:" in output, output  # shown as text (the cell is cut)
    elif case == "markup in status_url":
        assert result.exit_code == 0 and "[/bold]" in output, output
    else:
        assert result.exit_code != 0 and len(output.strip().splitlines()) >= 1, output
    if case == "a list body":
        assert "HTTP 400: [1, 2]" in output
