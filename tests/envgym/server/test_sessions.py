"""Session lifecycle: limits, reaping of vanished and idle clients, auth, health and metrics, big observations."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable

import gymnasium as gym
import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from envgym.remote import RemoteEnv, RemoteEnvError
from envgym.server.app import ServeConfig, create_app
from envgym.server.background import serve_in_background

from .conftest import ask, error_code, raw_client


def _wait_for(condition: Callable[[], bool], within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def _our_containers() -> int:
    """Containers of this test run; `sparse` lists without inspecting each, so one removed meanwhile is fine."""
    from envgym.sandboxes import lifecycle
    from envgym.sandboxes.docker_client import docker_client

    label = f"{lifecycle.LABEL_RUN}={lifecycle.RUN_ID}"
    return len(docker_client().containers.list(all=True, sparse=True, filters={"label": label}))


def _metric(url: str, name: str, token: str | None = None) -> float:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    for line in httpx.get(f"{url}/metrics", headers=headers).text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


CLIENT = textwrap.dedent(
    """
    import json, sys, threading, time
    from envgym.remote import RemoteEnv
    env = RemoteEnv(sys.argv[1])
    env.reset(seed=4, options={"params": json.loads(sys.argv[4])} if sys.argv[4] != "{}" else None)
    env.step(sys.argv[2])
    if sys.argv[3]:  # start a long step and die while it runs
        threading.Thread(target=env.step, args=(sys.argv[3],), daemon=True).start()
        time.sleep(3)
    print("mid-episode", flush=True)
    time.sleep(600)
    """
)


def _killed_mid_episode(url: str, action: str, long_action: str = "", params: str = "{}") -> None:
    """Start a client process, let it take one step (and start another), then SIGKILL it (no goodbye)."""
    cmd = [sys.executable, "-c", CLIENT, url, action, long_action, params]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "mid-episode"
    finally:
        proc.kill()
        proc.wait()


def test_killed_client_frees_its_session_within_10_s() -> None:
    with serve_in_background(ServeConfig(env_id="envgym/Sokoban-v0")) as (url, server):
        _killed_mid_episode(url, "up")
        assert _wait_for(lambda: _metric(url, "envgym_sessions_active") == 0, within=10)
        assert _metric(url, 'envgym_sessions_closed_total{reason="disconnect"}') == 1


@pytest.mark.docker
def test_killed_client_frees_its_docker_sandbox_within_10_s() -> None:
    before = _our_containers()
    config = ServeConfig(env_id="envgym/ToolUse-Compute-v0", env_kwargs={"sandbox": "docker"})
    with serve_in_background(config) as (url, _):
        call = json.dumps({"name": "python", "arguments": {"code": "print(6 * 7)"}})
        _killed_mid_episode(url, call)
        assert _our_containers() == before + 1, "the session's sandbox should be running"
        assert _wait_for(lambda: _our_containers() == before, within=10), "the sandbox outlived its client by 10 s"


def _killed_during_a_long_step(command_timeout: float, within: float) -> bool:
    """Kill a client while its step (a 100 s sleep, cut at `command_timeout`) runs; is the sandbox gone in time?"""
    before = _our_containers()
    config = ServeConfig(env_id="envgym/ToolUse-Compute-v0", env_kwargs={"sandbox": "docker"})
    with serve_in_background(config) as (url, _):
        quick = json.dumps({"name": "python", "arguments": {"code": "print(1)"}})
        slow = json.dumps({"name": "python", "arguments": {"code": "import time; time.sleep(100)"}})
        _killed_mid_episode(url, quick, slow, params=json.dumps({"timeout_s": command_timeout}))
        assert _our_containers() == before + 1
        freed = _wait_for(lambda: _our_containers() == before, within=within)
        assert _wait_for(lambda: _metric(url, "envgym_sessions_active") == 0, within=within)
        return freed


@pytest.mark.docker
def test_client_killed_during_a_step_frees_its_sandbox_when_the_step_ends() -> None:
    """The session ends at once; the env closes when its step's thread lets go (here a 5 s command timeout).

    Not sooner: `PersistentShell.close` waits for the running exec's lock, so `DockerSandbox.close` cannot abort a
    step from another thread (removing the container before closing the shell, in sandboxes/docker.py, would).
    """
    assert _killed_during_a_long_step(command_timeout=5, within=15)


@pytest.mark.docker
def test_server_shutdown_closes_every_session_and_its_sandbox() -> None:
    before = _our_containers()
    config = ServeConfig(env_id="envgym/ToolUse-Compute-v0", env_kwargs={"sandbox": "docker"})
    call = json.dumps({"name": "python", "arguments": {"code": "print(2)"}})
    with serve_in_background(config) as (url, _):
        envs = [RemoteEnv(url) for _ in range(2)]
        for env in envs:
            env.reset(seed=1)
            env.step(call)
        assert _our_containers() == before + 2
    assert _wait_for(lambda: _our_containers() == before, within=10)
    for env in envs:  # the clients learn it as an infra error, not an exception
        assert env.step(call)[4]["infra_error"]


def test_idle_session_is_closed_with_an_error_frame() -> None:
    with serve_in_background(ServeConfig(env_id="envgym/GuessNumber-v0", idle_timeout_s=0.5)) as (url, _):
        ws = raw_client(url)
        ask(ws, {"type": "reset", "data": {"seed": 1}})
        reply = json.loads(ws.recv(timeout=30))  # sent by the server after half a second of silence
        assert error_code(reply) == "IDLE_TIMEOUT"
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=30)
        assert _wait_for(lambda: _metric(url, "envgym_sessions_active") == 0, within=10)


def test_session_limit_refuses_clearly_and_frees_slots() -> None:
    with serve_in_background(ServeConfig(env_id="envgym/GuessNumber-v0", max_sessions=2)) as (url, _):
        first, second = RemoteEnv(url), RemoteEnv(url)
        with pytest.raises(RemoteEnvError, match="CAPACITY_REACHED") as refused:
            RemoteEnv(url)
        assert "retry later" in str(refused.value)
        first.close()
        assert _wait_for(lambda: _metric(url, "envgym_sessions_active") == 1, within=10)
        third = RemoteEnv(url)
        third.reset(seed=1)
        second.close()
        third.close()
        assert _metric(url, "envgym_sessions_refused_total") == 1


@pytest.mark.parametrize("env_id", ["envgym/Sokoban-v0", "envgym/ToolUse-Lookup-v0"])
def test_64_concurrent_sessions(env_id: str) -> None:
    with serve_in_background(ServeConfig(env_id=env_id, max_sessions=64)) as (url, _):
        envs = [RemoteEnv(url) for _ in range(64)]
        try:
            assert _metric(url, "envgym_sessions_active") == 64
            seeds = [env.reset(seed=i)[1]["task"]["seed"] for i, env in enumerate(envs)]
            assert seeds == list(range(64))
            for env in envs:
                assert env.step("nonsense")[4]["turn"] == 1
        finally:
            for env in envs:
                env.close()
        assert _wait_for(lambda: _metric(url, "envgym_sessions_active") == 0, within=10)


def test_bearer_token_guards_sessions_and_metrics_not_health() -> None:
    token = "s3cret-token"
    with serve_in_background(ServeConfig(env_id="envgym/GuessNumber-v0", token=token)) as (url, _):
        for wrong in (None, "nope"):
            with pytest.raises(RemoteEnvError, match="UNAUTHORIZED"):
                RemoteEnv(url, token=wrong)
        env = RemoteEnv(url, token=token)
        assert env.reset(seed=1)[1]["task"]["seed"] == 1
        env.close()
        assert httpx.get(f"{url}/health").json() == {"status": "healthy"}
        assert httpx.get(f"{url}/metrics").status_code == 401
        assert httpx.get(f"{url}/schema").status_code == 401
        assert _metric(url, "envgym_unauthorized_total", token=token) == 2


class HugeObservationEnv(gym.Env[str, str]):
    """Observations far past any frame default (5 MB): the server must still deliver them."""

    def __init__(self) -> None:
        from envgym.text import text_space

        self.observation_space = gym.spaces.Text(max_length=6_000_000, min_length=0, charset=text_space().character_set)
        self.action_space = text_space()

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[str, dict]:
        super().reset(seed=seed)
        return "a" * 5_000_000, {"task": {"seed": seed}, "turn": 0, "max_turns": 1}

    def step(self, action: str) -> tuple[str, float, bool, bool, dict]:
        return "b" * 5_000_000, 1.0, True, False, {"turn": 1}


def test_observations_of_any_size() -> None:
    gym.register("envgym/TestHugeObservation-v0", entry_point=HugeObservationEnv)
    try:
        with serve_in_background(ServeConfig(env_id="envgym/TestHugeObservation-v0")) as (url, _):
            env = RemoteEnv(url)
            assert len(env.reset(seed=1)[0]) == 5_000_000
            obs, reward, terminated, *_ = env.step("x")
            assert len(obs) == 5_000_000 and reward == 1.0 and terminated
            env.close()
    finally:
        gym.registry.pop("envgym/TestHugeObservation-v0", None)


def test_unknown_env_id_is_refused_with_the_list() -> None:
    with pytest.raises(ValueError, match=r"unknown env id 'CartPole-v1'.*envgym/Sokoban-v0"):
        create_app(ServeConfig(env_id="CartPole-v1"))


@pytest.mark.docker
@pytest.mark.slow
def test_16_concurrent_swe_sessions_and_their_sandboxes_are_freed() -> None:
    from concurrent.futures import ThreadPoolExecutor

    before = _our_containers()
    ls = json.dumps({"name": "bash", "arguments": {"command": "ls"}})
    with serve_in_background(ServeConfig(env_id="envgym/SWE-v0", max_sessions=16)) as (url, _):
        envs = [RemoteEnv(url) for _ in range(16)]

        def play(pair: tuple[int, RemoteEnv]) -> tuple[bool, str | None]:
            index, env = pair
            _, info = env.reset(seed=index)
            _, _, _, _, step_info = env.step(ls)
            return step_info["infra_error"] is None, info["infra_error"]

        try:
            with ThreadPoolExecutor(16) as pool:
                results = list(pool.map(play, enumerate(envs)))
            assert results == [(True, None)] * 16
            assert _metric(url, "envgym_sessions_active") == 16
            assert _our_containers() >= before + 16
        finally:
            for env in envs[:8]:
                env.close()
            for env in envs[8:]:  # the other half vanish without a goodbye
                assert env._ws is not None
                env._ws.socket.close()
        assert _wait_for(lambda: _metric(url, "envgym_sessions_active") == 0, within=10)
        # Closing an SWE env waits for the grading sandbox it was staging in the background (container start,
        # buggy tree, a prestarted pytest), then removes it: with 16 of them on 2 cores that takes more than 10 s.
        assert _wait_for(lambda: _our_containers() == before, within=90), "SWE sandboxes outlived their sessions"
