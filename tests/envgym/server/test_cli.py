"""`envgym serve` as a user runs it: a real process, a real port, refusals for unsafe setups."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from envgym.remote import RemoteEnv


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _envgym(*args: str, **env: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "envgym.cli", *args]
    return subprocess.Popen(cmd, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_serve_process_serves_with_a_token_and_stops_cleanly() -> None:
    port = _free_port()
    proc = _envgym("serve", "envgym/Maze-v0", "--port", str(port), ENVGYM_SERVE_TOKEN="tok")
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        env = RemoteEnv(url, token="tok")
        obs, info = env.reset(seed=3)
        assert info["task"]["env"].startswith("envgym/Maze-v0")
        env.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    # uvicorn shuts down gracefully, then re-raises the signal it caught, as a process killed by it would
    assert proc.returncode in (0, -signal.SIGTERM), err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("serve", "envgym/Maze-v0", "--host", "0.0.0.0"), "without a token"),
        (("serve", "CartPole-v1"), "unknown env id"),
        (("serve", "envgym/Maze-v0", "--env-kwargs", "[1]"), "must be a JSON object"),
    ],
)
def test_serve_refuses_unsafe_or_wrong_setups_in_one_line(args: tuple[str, ...], message: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "ENVGYM_SERVE_TOKEN"}
    proc = subprocess.run(
        [sys.executable, "-m", "envgym.cli", *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode != 0
    assert message in proc.stderr and "Traceback" not in proc.stderr
