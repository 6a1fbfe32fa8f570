"""envgym envs as skyrl-gym `BaseTextEnv`s, for SkyRL's generator and trainer.

Why the task comes from `extras`: SkyRL builds one env per dataset row with the row's extra fields as
`extras`, so a row names its task with `env_id`, `seed` and `difficulty` (top level or under `extra_info`)
and the env regenerates it exactly. `init(prompt)` adds the task's first observation to the row's prompt;
each `step(text)` is one env turn: the observation comes back as a user message, the reward is the env's, and
`metadata` carries the structured feedback, `solved` and any `infra_error` (a host failure, not the agent's:
drop such episodes rather than learn from their zero).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from envgym.extras import needs_extra

with needs_extra("integrations"):  # a missing one names the extra to install
    from skyrl_gym.envs.base_text_env import BaseTextEnv, BaseTextEnvStepOutput

SKYRL_ID = "envgym"
"""The id `register()` gives this env in skyrl-gym's registry (the rows' `env_class`)."""


def _field(extras: dict[str, Any], config: Any, name: str) -> Any:
    info = extras.get("extra_info") or {}
    if name in extras:
        return extras[name]
    if name in info:
        return info[name]
    return config.get(name) if config is not None and hasattr(config, "get") else None


class EnvgymTextEnv(BaseTextEnv):
    """One envgym task per instance (`env_config` may give `env_id` and `env_kwargs` for every row)."""

    def __init__(self, env_config: Any = None, extras: dict[str, Any] | None = None) -> None:
        super().__init__()
        import envgym  # noqa: F401  (registers the ids)

        extras = dict(extras or {})
        env_id = _field(extras, env_config, "env_id")
        if not env_id:
            raise ValueError("EnvgymTextEnv needs `env_id` in the row (extras or extra_info) or in env_config")
        kwargs = _field(extras, env_config, "env_kwargs") or {}
        self.env = gym.make(str(env_id), **dict(kwargs))
        seed = _field(extras, env_config, "seed")
        difficulty = _field(extras, env_config, "difficulty")
        self.seed = None if seed is None else int(seed)
        self.options = {"difficulty": float(difficulty)} if difficulty is not None else {}
        self.return_ = 0.0
        self.solved = False
        self.infra_error: str | None = None
        self.task: dict[str, Any] = {}

    def init(self, prompt: list[dict[str, str]]) -> tuple[list[dict[str, str]], dict[str, Any]]:
        """Reset to the row's task; the first observation joins the prompt (as the last user message)."""
        try:
            observation, info = self.env.reset(seed=self.seed, options=self.options)
        except Exception as exc:  # the env could not start the task
            observation, info = "", {"infra_error": f"reset failed: {exc!r}"}
        self.task = dict(info.get("task") or {})
        self.infra_error = str(info["infra_error"]) if info.get("infra_error") else None
        self.max_turns = int(getattr(self.env.unwrapped, "max_turns", 0) or 1)
        chat = [dict(m) for m in prompt or []]
        if chat and chat[-1].get("role") == "user" and not chat[-1].get("content"):
            chat[-1]["content"] = observation
        elif observation not in "".join(str(m.get("content", "")) for m in chat):
            chat.append({"role": "user", "content": observation})
        return chat, {"task": self.task, "tools": info.get("tools") or [], "infra_error": self.infra_error}

    def step(self, action: str) -> BaseTextEnvStepOutput:
        """One env turn: the action text in, the observation as a user message out."""
        self.turns += 1
        if self.infra_error:
            return BaseTextEnvStepOutput(observations=[], reward=0.0, done=True, metadata=self._metadata({}))
        try:
            observation, reward, terminated, truncated, info = self.env.step(action)
        except Exception as exc:  # the env or its sandbox broke
            self.infra_error = f"step raised {exc!r}"
            return BaseTextEnvStepOutput(observations=[], reward=0.0, done=True, metadata=self._metadata({}))
        self.return_ += float(reward)
        self.solved = bool(info.get("solved", False))
        if info.get("infra_error"):
            self.infra_error = str(info["infra_error"])
        done = bool(terminated or truncated or self.infra_error)
        observations = [] if done else [{"role": "user", "content": observation}]
        return BaseTextEnvStepOutput(
            observations=observations, reward=float(reward), done=done, metadata=self._metadata(info)
        )

    def _metadata(self, info: dict[str, Any]) -> dict[str, Any]:
        return {"feedback": info.get("feedback") or {}, "solved": self.solved, "infra_error": self.infra_error,
                "task_id": self.task.get("id")}  # fmt: skip

    def get_metrics(self) -> dict[str, Any]:
        return {"solved": float(self.solved), "turns": self.turns, "infra_error": float(bool(self.infra_error))}

    def close(self) -> None:
        self.env.close()


def register(skyrl_id: str = SKYRL_ID) -> str:
    """Register `EnvgymTextEnv` in skyrl-gym's registry (idempotent); returns the id for `env_class`."""
    with needs_extra("integrations"):
        import skyrl_gym

    if skyrl_id not in skyrl_gym.registry:
        skyrl_gym.register(id=skyrl_id, entry_point=f"{__name__}:EnvgymTextEnv")
    return skyrl_id


def skyrl_rows(
    env_id: str, tasks: int, seed: int = 0, difficulty: float | None = None, skyrl_id: str = SKYRL_ID
) -> list[dict[str, Any]]:
    """Rows in SkyRL's dataset shape: an empty user prompt the env fills, `env_class`, and the task's name."""
    base = {"data_source": env_id, "env_class": skyrl_id, "env_id": env_id, "difficulty": difficulty}
    return [{**base, "prompt": [{"role": "user", "content": ""}], "seed": seed + i} for i in range(tasks)]
