"""Every tool-use id: gymnasium's checker, the oracle solves every seeded task, same seed -> same task,
malformed calls give feedback and leave the env usable, answers are revealed only at the end."""

from __future__ import annotations

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

from envgym.text import fits

from .conftest import SANDBOXED, TOOL_IDS, call, play_oracle

DIFFICULTIES = (0.0, 0.5, 1.0)
FAST_EPISODES = 200
SANDBOX_EPISODES = 12  # sandboxed families spawn python/grep per call: the full 200 run is marked slow


@pytest.mark.parametrize("env_id", TOOL_IDS)
def test_check_env(env_id: str) -> None:
    env = gym.make(env_id)
    check_env(env.unwrapped, skip_render_check=True)
    env.close()


def _oracle_rate(env_id: str, difficulty: float, episodes: int) -> list[int]:
    env = gym.make(env_id)
    failed = [seed for seed in range(episodes) if play_oracle(env, seed, difficulty)[0] != 1.0]
    env.close()
    return failed


@pytest.mark.parametrize("difficulty", DIFFICULTIES)
@pytest.mark.parametrize("env_id", TOOL_IDS)
def test_oracle_solves_every_task(env_id: str, difficulty: float) -> None:
    episodes = SANDBOX_EPISODES if env_id in SANDBOXED else FAST_EPISODES
    assert _oracle_rate(env_id, difficulty, episodes) == []


@pytest.mark.slow
@pytest.mark.parametrize("difficulty", DIFFICULTIES)
@pytest.mark.parametrize("env_id", sorted(SANDBOXED))
def test_oracle_solves_200_sandboxed_tasks(env_id: str, difficulty: float) -> None:
    assert _oracle_rate(env_id, difficulty, 200) == []


@pytest.mark.parametrize("env_id", TOOL_IDS)
def test_same_seed_same_task_and_gold(env_id: str) -> None:
    seen = []
    for _ in range(2):
        env = gym.make(env_id)
        obs, info = env.reset(seed=99, options={"difficulty": 0.75})
        seen.append((obs, info["task"], info["tools"], env.unwrapped.oracle_action()))
        env.close()
    assert seen[0] == seen[1]
    env = gym.make(env_id)
    other, _ = env.reset(seed=100, options={"difficulty": 0.75})
    env.close()
    assert other != seen[0][0]


@pytest.mark.parametrize("env_id", TOOL_IDS)
def test_malformed_calls_give_feedback_and_env_stays_usable(env_id: str) -> None:
    env = gym.make(env_id, max_turns=40)
    _, info = env.reset(seed=3, options={"difficulty": 0.5})
    first = info["tools"][0]["function"]["name"]
    bad = [
        '{"name": "sql", "arguments": {"query": "SELECT 1"',  # bad JSON
        call("rm_rf", path="/"),  # unknown tool
        call(first, **{"unexpected": 1}),  # extra / missing arguments
        call("submit_answer", answer={"nested": "dict"}),  # wrong type
    ]
    for action in bad:
        obs, reward, terminated, truncated, info = env.step(action)
        assert info["feedback"]["error"] and fits(obs) and reward == 0.0 and not terminated
    for _ in range(30):
        _, reward, terminated, truncated, _ = env.step(env.unwrapped.oracle_action())
        if terminated or truncated:
            break
    assert reward == 1.0
    env.close()


@pytest.mark.parametrize("env_id", ["envgym/ToolUse-SQL-v0", "envgym/ToolUse-Lookup-v0", "envgym/ToolUse-API-v0"])
def test_answer_revealed_only_when_the_episode_is_over(env_id: str) -> None:
    env = gym.make(env_id, params={"attempts": 2})
    env.reset(seed=5, options={"difficulty": 0.5})
    expected = env.unwrapped.task_spec.expected.display()
    obs, reward, terminated, _, _ = env.step(call("submit_answer", answer="certainly wrong"))
    assert not terminated and reward == 0.0 and expected not in obs and "1 submission(s) left" in obs
    obs, reward, terminated, _, _ = env.step(call("submit_answer", answer="still wrong"))
    assert terminated and reward == 0.0 and "expected answer was" in obs
    env.close()


def test_mixture_families_and_weights() -> None:
    env = gym.make("envgym/ToolUse-v0", families=["sql", "Lookup"], weights={"SQL": 3, "Lookup": 1})
    picked = {env.reset(seed=s)[1]["task"]["params"]["family"] for s in range(20)}
    assert picked == {"SQL", "Lookup"}
    with pytest.raises(ValueError, match="unknown tool-use families"):
        gym.make("envgym/ToolUse-v0", families=["Nope"])
    env.close()


def test_low_difficulty_hints_on_wasted_calls() -> None:
    env = gym.make("envgym/ToolUse-Lookup-v0")
    env.reset(seed=1, options={"difficulty": 0.0})
    _, _, _, _, info = env.step(call("search", query="qqqqzzzz"))
    assert info["feedback"]["hint"]
    env.reset(seed=1, options={"difficulty": 1.0})
    _, _, _, _, info = env.step(call("search", query="qqqqzzzz"))
    assert info["feedback"]["hint"] is None
    env.close()
