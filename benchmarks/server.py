"""Server benchmark: a served env against the same env in-process, measured in one run, printed as ratios.

    .venv/bin/python benchmarks/server.py [--env envgym/Sokoban-v0] [--steps 2000] [--seconds 5]

1. Per-step overhead at 1 session: `RemoteEnv.step` (WebSocket on loopback to an `envgym serve` process) minus
   a local `env.step` of the same env, same actions. Target: at most 2 ms added per step.
2. Throughput at 1 / 16 / 64 concurrent sessions (async clients in one process, each its own session), in
   steps per second, against the local single-thread step rate.
The server runs as its own process (as deployed), so client and server do not share a GIL; on a 2-core
machine they do share the cores, which is part of what is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import gymnasium as gym
import httpx
from websockets.asyncio.client import connect

import envgym  # noqa: F401
from envgym.remote import RemoteEnv

ACTIONS = ["up", "left", "down", "right"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(env_id: str, max_sessions: int) -> Iterator[str]:
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "envgym.cli",
        "serve",
        env_id,
        "--port",
        str(port),
        "--max-sessions",
        str(max_sessions),
    ]
    proc = subprocess.Popen(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("envgym serve did not come up")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def per_step(env: gym.Env, steps: int) -> tuple[list[float], float]:
    """Seconds per step over `steps` steps of fixed actions, resetting when an episode ends; also the wall
    time of the whole loop, resets included (the throughput baseline)."""
    times: list[float] = []
    loop_started = time.perf_counter()
    env.reset(seed=0, options={"difficulty": 0.5})
    for index in range(steps):
        action = ACTIONS[index % 4]
        started = time.perf_counter()
        _, _, terminated, truncated, _ = env.step(action)
        times.append(time.perf_counter() - started)
        if terminated or truncated:
            env.reset(seed=index, options={"difficulty": 0.5})
    return times, time.perf_counter() - loop_started


async def session_loop(url: str, seconds: float, counts: list[int]) -> None:
    async with connect(url.replace("http://", "ws://") + "/ws", max_size=None) as ws:
        await ws.send(json.dumps({"type": "reset", "data": {"seed": 0, "difficulty": 0.5}}))
        await ws.recv()
        steps, deadline, index = 0, time.perf_counter() + seconds, 0
        while time.perf_counter() < deadline:
            await ws.send(json.dumps({"type": "step", "data": {"text": ACTIONS[index % 4]}}))
            reply = json.loads(await ws.recv())
            index += 1
            steps += 1
            if reply["data"]["done"]:
                await ws.send(json.dumps({"type": "reset", "data": {"seed": index, "difficulty": 0.5}}))
                await ws.recv()
        counts.append(steps)


async def throughput(url: str, sessions: int, seconds: float) -> float:
    counts: list[int] = []
    await asyncio.gather(*(session_loop(url, seconds, counts) for _ in range(sessions)))
    return sum(counts) / seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--env", default="envgym/Sokoban-v0")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()

    local = gym.make(args.env)
    per_step(local, 200)  # warm caches
    local_times, local_wall = per_step(local, args.steps)
    local_med = statistics.median(local_times)
    local_rate = len(local_times) / local_wall
    print(
        f"env {args.env}, {args.steps} steps; local step median {local_med * 1e3:.3f} ms; "
        f"local loop {local_rate:,.0f} steps/s (resets included)"
    )

    with server(args.env, max_sessions=64) as url:
        remote = RemoteEnv(url)
        per_step(remote, 200)
        remote_times, _ = per_step(remote, args.steps)
        remote.close()
        remote_med = statistics.median(remote_times)
        p90 = sorted(remote_times)[int(0.9 * len(remote_times))]
        added = (remote_med - local_med) * 1e3
        verdict = "within" if added <= 2.0 else "OVER"
        print(
            f"served step median {remote_med * 1e3:.3f} ms (p90 {p90 * 1e3:.3f} ms): "
            f"+{added:.3f} ms per step ({verdict} the 2 ms target), {remote_med / local_med:.1f}x local"
        )
        for sessions in (1, 16, 64):
            rate = asyncio.run(throughput(url, sessions, args.seconds))
            print(
                f"throughput {sessions:3d} session(s): {rate:9,.0f} steps/s = "
                f"{rate / local_rate:.3f}x the local loop ({rate / sessions:,.0f} per session)"
            )


if __name__ == "__main__":
    main()
