"""A real leaderboard server on loopback (subprocess, random free port) and helpers to make run dirs."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gymnasium as gym
import httpx
import pytest

import envgym  # noqa: F401
from envgym.agents.policies.scripted import OracleAgent, RandomAgent
from envgym.leaderboard.db import create_token, make_engine, session_factory
from envgym.runner import run_episode
from envgym.trajectory import TrajectoryWriter

SEEDS = [0, 1, 2]
OPTIONS = {"difficulty": 0.5}
SPLITS = [
    {"name": "mini", "seeds": SEEDS, "options": OPTIONS},
    {"name": "swe-mini", "seeds": [0, 1], "options": OPTIONS, "envs": ["envgym/SWE-v0"]},
]


def record_run(run_dir: Path, env_id: str, agent: Any, seeds: list[int] = SEEDS) -> Path:
    env = gym.make(env_id)
    with TrajectoryWriter(run_dir / "trajectories.jsonl") as writer:
        for seed in seeds:
            writer.write(run_episode(env, agent, seed=seed, options=dict(OPTIONS)))
    env.close()
    return run_dir


@pytest.fixture(scope="session")
def oracle_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("oracle")
    record_run(run, "envgym/Sudoku-v0", OracleAgent())
    return record_run(run, "envgym/ToolUse-v0", OracleAgent())


@pytest.fixture(scope="session")
def random_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return record_run(tmp_path_factory.mktemp("random"), "envgym/Sudoku-v0", RandomAgent(seed=3))


def dump_dom(url: str) -> str:
    """The DOM after scripts ran, from Debian's chromium (apt-get install -y chromium)."""
    import shutil

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but chromium is not installed (apt-get install -y chromium)")
        pytest.skip("chromium not installed (apt-get install -y chromium)")
    argv = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", url]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True).stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """`envgym leaderboard serve` in a subprocess; restartable on the same db and port."""

    def __init__(self, workdir: Path, preamble: str = "", **options: Any) -> None:
        self.preamble = preamble
        self.db = f"sqlite:///{workdir / 'board.db'}"
        self.splits = workdir / "splits.json"
        self.splits.write_text(json.dumps(SPLITS))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.options = options
        self.log = workdir / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def token(self, submitter: str) -> str:
        engine = make_engine(self.db)
        with session_factory(engine)() as session:
            token = create_token(session, submitter)
        engine.dispose()
        return token

    def start(self, **override: Any) -> None:
        opts = {**self.options, **override}
        argv = [sys.executable, "-c", self.preamble + "from envgym.cli import main; main()", "leaderboard", "serve"]
        argv += ["--db", self.db, "--port", str(self.port), "--splits", str(self.splits)]
        for key, value in opts.items():
            argv += [f"--{key.replace('_', '-')}", str(value)]
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        self.proc = subprocess.Popen(argv, stdout=self.log.open("ab"), stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/api/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.3)
        raise RuntimeError("server did not come up in 60 s")

    def kill(self) -> None:
        """SIGKILL: a crash, no clean shutdown."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def wait_graded(self, submission_id: int, timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = httpx.get(f"{self.url}/api/submissions/{submission_id}", timeout=10).json()
            if status["status"] in ("graded", "failed"):
                return status
            time.sleep(0.3)
        raise TimeoutError(f"submission {submission_id} not graded in {timeout} s")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("server"), max_bundle_mb=0.25)
    srv.start()
    yield srv
    srv.stop()
