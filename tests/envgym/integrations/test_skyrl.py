"""An envgym env driven through skyrl-gym's own registry and `BaseTextEnv` interface."""

import json

import pytest
import skyrl_gym
from omegaconf import OmegaConf
from skyrl_gym.envs.base_text_env import BaseTextEnv

from envgym.integrations.skyrl import register, skyrl_rows

ENV = "envgym/GuessNumber-v0"


def _make(row):
    extras = {k: v for k, v in row.items() if k not in ("prompt", "env_class")}
    return skyrl_gym.make(row["env_class"], env_config=OmegaConf.create({}), extras=extras)


def test_oracle_play_through_skyrl_gym():
    register()
    row = skyrl_rows(ENV, tasks=1, seed=5, difficulty=0.4)[0]
    env = _make(row)
    assert isinstance(env, BaseTextEnv)
    chat, meta = env.init(row["prompt"])
    assert chat[-1]["role"] == "user" and "guess" in chat[-1]["content"].lower()
    assert meta["task"]["seed"] == 5 and meta["task"]["difficulty"] == 0.4 and meta["tools"]
    out = env.step("not an action")  # malformed: feedback and a turn spent, never an exception
    assert not out["done"] and out["metadata"]["feedback"]["error"]
    total = out["reward"]
    while not out["done"]:
        action = env.env.unwrapped.oracle_action()
        out = env.step(action)
        total += out["reward"]
        if not out["done"]:
            assert out["observations"][0]["role"] == "user"
    assert out["metadata"]["solved"] and total > 0 and env.get_metrics()["solved"] == 1.0
    env.close()


def test_rows_replay_the_same_task_and_infra_is_flagged():
    register()
    row = skyrl_rows(ENV, tasks=1, seed=9, difficulty=0.2)[0]
    a, b = _make(row), _make({**row, "extra_info": {"seed": 9}, "seed": 9})
    assert a.init(row["prompt"])[0] == b.init(row["prompt"])[0]
    assert json.loads(a.env.unwrapped.oracle_action()) == json.loads(b.env.unwrapped.oracle_action())

    def broken(*args, **kwargs):
        raise RuntimeError("sandbox died")

    a.env.step = broken
    out = a.step("3")
    assert out["done"] and out["metadata"]["infra_error"] and a.get_metrics()["infra_error"] == 1.0


def test_missing_env_id_is_a_clear_error():
    register()
    with pytest.raises(ValueError, match="env_id"):
        skyrl_gym.make("envgym", extras={"seed": 1})
