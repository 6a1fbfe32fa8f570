"""Task rows as a real `datasets.Dataset`: every row regenerates its task exactly."""

import gymnasium as gym
import pytest

import envgym  # noqa: F401
from envgym.integrations.datasets import task_dataset


@pytest.mark.parametrize("env_id", ["envgym/GuessNumber-v0", "envgym/Sokoban-v0", "envgym/ToolUse-SQL-v0"])
def test_rows_name_their_tasks(env_id):
    data = task_dataset(env_id, tasks=4, seed=7, difficulty=[0.0, 0.5])
    assert data.column_names == ["env_id", "seed", "difficulty", "prompt", "task_id", "tools"]
    assert data["seed"] == [7, 8, 9, 10] and data["difficulty"] == [0.0, 0.5, 0.0, 0.5]
    env = gym.make(env_id)
    for row in data:
        observation, info = env.reset(seed=row["seed"], options={"difficulty": row["difficulty"]})
        assert observation == row["prompt"] and info["task"]["id"] == row["task_id"]
    env.close()


def test_default_difficulty_is_recorded_and_bad_input_is_refused():
    data = task_dataset("envgym/GuessNumber-v0", tasks=2)
    assert all(isinstance(d, float) for d in data["difficulty"])
    with pytest.raises(ValueError, match="tasks"):
        task_dataset("envgym/GuessNumber-v0", tasks=0)
