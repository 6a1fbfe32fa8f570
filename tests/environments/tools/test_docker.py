"""The sandboxed families on the Docker backend (marked `docker`: needs a running engine)."""

from __future__ import annotations

import gymnasium as gym
import pytest

from .conftest import call, play_oracle


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.parametrize("env_id", ["envgym/ToolUse-Compute-v0", "envgym/ToolUse-Files-v0"])
def test_oracle_and_timeouts_on_docker(env_id: str) -> None:
    env = gym.make(env_id, sandbox="docker", params={"timeout_s": 2.0})
    for seed, difficulty in ((0, 0.0), (1, 1.0)):
        assert play_oracle(env, seed, difficulty)[0] == 1.0
    _, info = env.reset(seed=2, options={"difficulty": 0.5})
    assert info["sandbox"]["backend"] == "docker"
    if env_id.endswith("Compute-v0"):
        _, _, terminated, _, info = env.step(call("python", code="while True:\n    pass"))
        assert info["feedback"]["error"] == "timeout" and not terminated
    env.close()
