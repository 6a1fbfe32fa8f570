"""`RemoteEnv` against a real server on loopback: the same episodes as a local env, and the env contract."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

import envgym  # noqa: F401
from envgym.registry import ENTRIES
from envgym.remote import RemoteEnv, RemoteEnvError, ws_url
from envgym.runner import run_episode
from envgym.server.app import ServeConfig
from envgym.server.background import serve_in_background

IDS = [e.id for e in ENTRIES if e.family in {"puzzles", "tools"}]


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, str]]:
    """One server per env id, all up for the module (each is a thread and a loopback port)."""
    from contextlib import ExitStack

    with ExitStack() as stack:
        yield {env_id: stack.enter_context(serve_in_background(ServeConfig(env_id=env_id)))[0] for env_id in IDS}


def _timeless(value: object) -> object:
    """The trace without measured durations (a sandbox command's `duration_s` differs run to run)."""
    if isinstance(value, dict):
        return {k: _timeless(v) for k, v in value.items() if k != "duration_s"}
    if isinstance(value, (list, tuple)):
        return type(value)(_timeless(v) for v in value)
    return value


def _episode(env: gym.Env, env_id: str, seed: int, actions: list[str] | None) -> tuple[list, list[str]]:
    """Play seed with the local oracle's actions (or replay `actions`); return the full trace and the actions."""
    oracle = gym.make(env_id)  # the action source: what a perfect agent sends at each state
    trace: list = []
    obs, info = env.reset(seed=seed, options={"difficulty": 0.4})
    oracle.reset(seed=seed, options={"difficulty": 0.4})
    trace.append((obs, info))
    chosen = actions if actions is not None else []
    for index in range(60):
        if actions is None:
            action = oracle.unwrapped.oracle_action() if index % 3 else "not a tool call"
            chosen.append(action)
        elif index >= len(actions):
            break
        else:
            action = actions[index]
        oracle.step(action)
        step = env.step(action)
        trace.append(step)
        if step[2] or step[3]:
            break
    return trace, chosen


@pytest.mark.parametrize("env_id", IDS)
def test_served_env_gives_the_same_episode_as_local(env_id: str, servers: dict[str, str]) -> None:
    local = gym.make(env_id)
    local_trace, actions = _episode(local, env_id, seed=11, actions=None)
    remote = RemoteEnv(servers[env_id])
    try:
        remote_trace, _ = _episode(remote, env_id, seed=11, actions=actions)
    finally:
        remote.close()
    assert len(remote_trace) == len(local_trace)
    for ours, theirs in zip(remote_trace, local_trace, strict=True):
        assert _timeless(ours) == _timeless(
            theirs
        )  # observation, reward, flags and the whole info dict, types included
        assert [type(v) for v in ours] == [type(v) for v in theirs]


@pytest.mark.parametrize("env_id", ["envgym/GuessNumber-v0", "envgym/Sokoban-v0", "envgym/ToolUse-SQL-v0"])
def test_served_env_passes_check_env(env_id: str, servers: dict[str, str]) -> None:
    env = RemoteEnv(servers[env_id])
    try:
        check_env(env, skip_render_check=True)
    finally:
        env.close()


def test_runner_records_a_remote_episode_like_a_local_one(servers: dict[str, str]) -> None:
    class Halving:
        name = "halving"

        def __init__(self) -> None:
            self.low, self.high = 1, 10**9

        def act(self, env: object, observation: str, info: dict) -> str:
            if "between" in observation:
                words = observation.split("between ")[1].split()
                self.low, self.high = int(words[0]), int(words[2].rstrip("."))
            elif "higher" in observation.lower():
                self.low = self.guess + 1
            elif "lower" in observation.lower():
                self.high = self.guess - 1
            self.guess = (self.low + self.high) // 2
            return str(self.guess)

    url = servers["envgym/GuessNumber-v0"]
    remote = RemoteEnv(url)
    try:
        remote_episode = run_episode(remote, Halving(), seed=5, options={"difficulty": 0.3})
    finally:
        remote.close()
    local_episode = run_episode(gym.make("envgym/GuessNumber-v0"), Halving(), seed=5, options={"difficulty": 0.3})
    assert remote_episode.outcome is not None and local_episode.outcome is not None
    assert remote_episode.outcome.success and local_episode.outcome.success
    assert [t.observation for t in remote_episode.turns] == [t.observation for t in local_episode.turns]
    assert remote_episode.env_id == local_episode.env_id == "envgym/GuessNumber-v0"


def test_client_cannot_widen_the_env(servers: dict[str, str]) -> None:
    env = RemoteEnv(servers["envgym/ToolUse-Compute-v0"])
    try:
        with pytest.raises(ValueError, match="accepts only the reset options"):
            env.reset(seed=1, options={"sandbox": "local"})
        with pytest.raises(RemoteEnvError, match="VALIDATION_ERROR"):
            env.reset(seed=1, options={"difficulty": 3.0})
        with pytest.raises(RemoteEnvError, match="VALIDATION_ERROR"):
            env.reset(seed=1, options={"params": {"nested": {"sandbox": "local"}}})
        obs, info = env.reset(seed=1, options={"difficulty": 0.5})  # the session survives all of that
        assert info["task"]["seed"] == 1
    finally:
        env.close()


def test_url_forms() -> None:
    assert ws_url("http://h:1") == "ws://h:1/ws"
    assert ws_url("https://h/p/") == "wss://h/p/ws"
    assert ws_url("ws://h:1/ws") == "ws://h:1/ws"
    with pytest.raises(ValueError, match="must start with"):
        ws_url("ftp://h")


def test_eval_with_a_token_policy_is_the_same_on_a_remote_env(servers: dict[str, str], tmp_path: Path) -> None:
    """envgym's own evaluate + batched token rollout (the trainer's path) against RemoteEnv, unchanged."""
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    from envgym.agents.evaluation import evaluate
    from envgym.agents.toy import tiny_policy

    url = servers["envgym/GuessNumber-v0"]
    runs = {}
    for where, factory in (
        ("remote", lambda: RemoteEnv(url)),
        ("local", lambda: gym.make("envgym/GuessNumber-v0")),
    ):
        policy = tiny_policy(max_new_tokens=4, seed=1, temperature=0.0)
        result = evaluate(
            factory, policy, episodes=4, difficulty=0.2, seed=3, batch_size=4, max_turns=3, out=tmp_path / where
        )
        records = [json.loads(line) for line in (tmp_path / where / "trajectories.jsonl").read_text().splitlines()]
        turns = [[(t["action"], t["observation"], t["reward"]) for t in r["turns"]] for r in records]
        runs[where] = (result.model_dump(), [r["env_id"] for r in records], [r["task"] for r in records], turns)
    assert runs["remote"] == runs["local"]
    assert sum(len(t) for t in runs["local"][3]) >= 4


def test_a_lost_server_is_an_infra_error_not_an_exception_mid_rollout() -> None:
    with serve_in_background(ServeConfig(env_id="envgym/GuessNumber-v0")) as (url, _):
        env = RemoteEnv(url)
        env.reset(seed=1)
    obs, reward, terminated, truncated, info = env.step("5")  # the server is gone now
    assert terminated and reward == 0.0 and info["infra_error"] and "lost the connection" in obs
    local = gym.make("envgym/GuessNumber-v0")
    local.reset(seed=1)
    local_info = local.step("5")[4]
    assert set(info) == set(local_info)  # the same keys, so vector-env info merging still works
    assert {k: type(v) for k, v in info.items() if k != "infra_error"} == {
        k: type(v) for k, v in local_info.items() if k != "infra_error"
    }
    with pytest.raises(OSError):  # a reset needs a live server: it says so at once
        env.reset(seed=2)
    env.close()


def test_gym_make_and_vector_envs_take_a_remote_env(servers: dict[str, str]) -> None:
    from gymnasium.envs.registration import EnvSpec

    url = servers["envgym/Maze-v0"]
    spec = EnvSpec("envgym/Remote-v0", entry_point="envgym.remote:RemoteEnv", kwargs={"url": url})
    env = gym.make(spec)  # wrappers (order enforcing, passive checker) included
    obs, info = env.reset(seed=2)
    assert info["task"]["env"].startswith("envgym/Maze-v0")
    env.close()
    vector = gym.vector.SyncVectorEnv([lambda: RemoteEnv(url) for _ in range(3)])
    observations, infos = vector.reset(seed=[1, 2, 3])
    assert len(observations) == 3 and list(infos["task"]["seed"]) == [1, 2, 3]
    observations, rewards, terminated, truncated, infos = vector.step(["up", "down", "left"])
    assert list(infos["turn"]) == [1, 1, 1]
    vector.close()


def test_trainer_trains_on_remote_envs(servers: dict[str, str], tmp_path: Path) -> None:
    """The trainer, unchanged, with `env_factory` pointing at a served env (one session per env it holds)."""
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    from envgym.agents.rollout import RolloutConfig
    from envgym.agents.toy import tiny_policy
    from envgym.agents.trainer import TrainConfig, Trainer
    from envgym.trajectory import read_episodes

    url = servers["envgym/GuessNumber-v0"]
    config = TrainConfig(
        env_id="envgym/GuessNumber-v0", steps=1, tasks_per_step=2, group_size=2, lr=1e-3,
        rollout=RolloutConfig(max_turns=2), difficulty=0.0,
    )  # fmt: skip
    trainer = Trainer(config, tmp_path, policy=tiny_policy(max_new_tokens=3), env_factory=lambda: RemoteEnv(url))
    history = trainer.train()
    assert [m["step"] for m in history] == [1]
    episodes = list(read_episodes(tmp_path / "trajectories.jsonl"))
    assert len(episodes) == 4 and all(ep.env_id == "envgym/GuessNumber-v0" for ep in episodes)
    seeds = [ep.task["seed"] for ep in episodes]
    assert seeds[0] == seeds[1] and seeds[2] == seeds[3]  # groups share a task seed through the server too
