"""Episode helpers for tests of env families (ours and users'): play one episode with the oracle or the random
reference agent, and check that the oracle recovers from random moves.

Why in the package: every family's test file needs exactly these loops, and an env author outside this repo
needs them too.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np


def play(
    env: Any, seed: int, difficulty: float, agent: str, rng: np.random.Generator | None = None
) -> tuple[bool, list[str]]:
    """One episode with the oracle or the random agent; returns (solved, observations)."""
    obs, _ = env.reset(seed=seed, options={"difficulty": difficulty})
    observations = [obs]
    rng = rng if rng is not None else np.random.default_rng(seed)
    while True:
        action = env.oracle_action() if agent == "oracle" else env.random_action(rng)
        obs, reward, terminated, truncated, info = env.step(action)
        observations.append(obs)
        if terminated or truncated:
            return bool(info["solved"]) and reward == 1.0, observations


def recovers(env: Any, seed: int, difficulty: float, random_moves: int) -> bool:
    """The oracle still solves after random moves were played (turn budget lifted for the check)."""
    env.max_turns_override = 10_000
    try:
        env.reset(seed=seed, options={"difficulty": difficulty})
        rng = np.random.default_rng(seed)
        for _ in range(random_moves):
            _, _, terminated, truncated, _ = env.step(env.random_action(rng))
            if terminated or truncated:
                return True  # solved by luck, or lost for good (a mine): nothing to recover
        for _ in range(2000):
            _, reward, terminated, truncated, _ = env.step(env.oracle_action())
            if terminated or truncated:
                return bool(reward == 1.0)
        return False
    finally:
        env.max_turns_override = None


# What a replay may legitimately not repeat: wall-clock measurements, and the description of the host's sandbox
# (backend, limits), which depends on the machine, not on the task.
_VOLATILE = frozenset({"duration_s", "sandbox"})


def _stable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in _VOLATILE}
    if isinstance(value, list | tuple):
        return [_stable(v) for v in value]
    return value


def _digest(record: Any) -> str:
    text = json.dumps(_stable(record), sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def trajectory_digests(env: Any, seed: int, difficulty: float, agent: str = "oracle", limit: int = 500) -> list[str]:
    """One short hash per record of an episode (the reset, then each step with its action): a frozen fixture
    of these catches any change to what an agent sees, and the first differing index says where."""
    obs, info = env.reset(seed=seed, options={"difficulty": difficulty})
    digests = [_digest([obs, info])]
    rng = np.random.default_rng(seed)
    for _ in range(limit):
        action = env.oracle_action() if agent == "oracle" else env.random_action(rng)
        obs, reward, terminated, truncated, info = env.step(action)
        digests.append(_digest([action, obs, reward, terminated, truncated, info]))
        if terminated or truncated:
            break
    return digests


def frozen_fixture(path: str | Path) -> dict[str, list[str]]:
    """Digests keyed `env_id|difficulty|seed|agent`, as `record_frozen` wrote them."""
    return json.loads(Path(path).read_text())  # type: ignore[no-any-return]


def record_frozen(path: str | Path, env_ids: list[str], seeds: tuple[int, ...] = (0, 1, 2)) -> None:
    """Freeze oracle and random-agent episodes (difficulties 0, 0.5, 1) of these envs into a fixture."""
    import gymnasium as gym

    data = {}
    for env_id in env_ids:
        env = gym.make(env_id).unwrapped
        for difficulty in (0.0, 0.5, 1.0):
            for seed in seeds:
                for agent, limit in (("oracle", 500), ("random", 60)):
                    key = f"{env_id}|{difficulty:g}|{seed}|{agent}"
                    data[key] = trajectory_digests(env, seed, difficulty, agent, limit)
        env.close()
    Path(path).write_text(json.dumps(data, indent=0))


def frozen_mismatches(fixture: dict[str, list[str]], env_id: str) -> list[str]:
    """Replay every frozen episode of `env_id`; one line per episode that diverged (empty: all identical)."""
    import gymnasium as gym

    env = gym.make(env_id).unwrapped
    problems = []
    try:
        for key, expected in fixture.items():
            name, difficulty, seed, agent = key.split("|")
            if name != env_id:
                continue
            got = trajectory_digests(env, int(seed), float(difficulty), agent, limit=len(expected) - 1)
            diverged = next((i for i, (a, b) in enumerate(zip(expected, got, strict=False)) if a != b), None)
            if diverged is not None:
                problems.append(f"{key}: diverged at record {diverged} (0 = reset)")
            elif len(got) != len(expected):
                problems.append(f"{key}: {len(got)} records, the fixture has {len(expected)}")
    finally:
        env.close()
    return problems
