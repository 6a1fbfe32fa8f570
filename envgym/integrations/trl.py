"""envgym envs as TRL environments: `GRPOTrainer(environment_factory=environment_class(env_id), ...)`.

Why a generated class per env id: TRL discovers an environment's tools by listing the public methods of its
class and renders each one's JSON schema from its signature, type hints and docstring. The env already
describes its tools as OpenAI function schemas (`info["tools"]` on reset), so the class gets one typed method
per tool, built from those schemas; each method sends the canonical JSON tool call to the env and returns
the env's observation. `reset(**row)` starts the row's task (its `seed` and `difficulty`), so the G
completions of one prompt play the same task, and `get_reward()` pays the env's own return.

An infra failure (reset or step raised, or the env flagged `infra_error`) makes `get_reward` return NaN,
which TRL ignores, instead of a fake zero.
"""

from __future__ import annotations

import inspect
import json
import math
from typing import Any

import gymnasium as gym

from envgym.extras import needs_extra

_JSON_TYPES: dict[str, type] = {
    "integer": int, "number": float, "string": str, "boolean": bool, "array": list, "object": dict,
}  # fmt: skip


class EnvgymTRLEnvironment:
    """One envgym env behind TRL's environment protocol (`reset`, tool methods, `get_reward`)."""

    env_id: str = ""
    env_kwargs: dict[str, Any] = {}

    def __init__(self) -> None:
        import envgym  # noqa: F401  (registers the ids)

        self.env = gym.make(self.env_id, **self.env_kwargs)
        self.return_ = 0.0
        self.done = False
        self.solved = False
        self.infra_error: str | None = None
        self.task: dict[str, Any] = {}
        self.steps = 0

    def reset(self, seed: int | None = None, difficulty: float | None = None, **row: Any) -> str:
        """Start the dataset row's task; the observation is appended to the prompt's last user message."""
        if row.get("env_id") not in (None, self.env_id):
            raise ValueError(f"row for {row['env_id']!r} given to the {self.env_id!r} environment")
        options = {"difficulty": float(difficulty)} if difficulty is not None else {}
        self.return_, self.done, self.solved, self.infra_error, self.steps = 0.0, False, False, None, 0
        try:
            observation, info = self.env.reset(seed=None if seed is None else int(seed), options=options)
        except Exception as exc:  # the env could not start: infra, not a zero
            self.done, self.infra_error, self.task = True, f"reset failed: {exc!r}", {}
            return ""
        self.task = dict(info.get("task") or {})
        if info.get("infra_error"):
            self.done, self.infra_error = True, str(info["infra_error"])
        return str(observation)

    def get_reward(self) -> float:
        """The env's return for this rollout (NaN after an infra failure: TRL drops it)."""
        return math.nan if self.infra_error else self.return_

    def _act(self, name: str, arguments: dict[str, Any]) -> str:
        if self.done:
            return "The episode is over; no more actions are accepted."
        try:
            observation, reward, terminated, truncated, info = self.env.step(
                json.dumps({"name": name, "arguments": arguments})
            )
        except Exception as exc:  # the env or its sandbox broke
            self.done, self.infra_error = True, f"step raised {exc!r}"
            return "The environment failed; the episode is over."
        self.steps += 1
        self.return_ += float(reward)
        self.solved = bool(info.get("solved", False))
        if info.get("infra_error"):
            self.infra_error = str(info["infra_error"])
        self.done = bool(terminated or truncated or self.infra_error)
        return str(observation)


def _tool_method(schema: dict[str, Any]) -> Any:
    """A typed method for one OpenAI function schema; its docstring carries the descriptions TRL renders."""
    fn = schema.get("function", schema)
    name = str(fn["name"])
    params = fn.get("parameters") or {}
    properties: dict[str, Any] = params.get("properties") or {}
    required = set(params.get("required") or [])

    def method(self: EnvgymTRLEnvironment, **arguments: Any) -> str:
        return self._act(name, {k: v for k, v in arguments.items() if v is not None})

    ordered = sorted(properties, key=lambda p: p not in required)  # required parameters first
    parameters = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    annotations: dict[str, Any] = {}
    lines = []
    for p in ordered:
        spec = properties[p]
        kind = _JSON_TYPES.get(str(spec.get("type")), str)
        annotation: Any = kind if p in required else kind | None
        default = inspect.Parameter.empty if p in required else None
        parameters.append(inspect.Parameter(p, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default,
                                            annotation=annotation))  # fmt: skip
        annotations[p] = annotation
        lines.append(f"    {p}: {' '.join(str(spec.get('description') or p).split())}")
    annotations["return"] = str
    method.__name__ = method.__qualname__ = name
    method.__signature__ = inspect.Signature(parameters, return_annotation=str)  # type: ignore[attr-defined]
    method.__annotations__ = annotations
    doc = " ".join(str(fn.get("description") or name).split())
    args = "\n\nArgs:\n" + "\n".join(lines) if lines else ""
    method.__doc__ = f"{doc}{args}\n\nReturns:\n    The environment's answer."
    return method


def environment_class(
    env_id: str, env_kwargs: dict[str, Any] | None = None, probe_seed: int = 0
) -> type[EnvgymTRLEnvironment]:
    """The class to pass as `environment_factory`: one instance per rollout, the env's tools as methods.

    The tools are read from one probe reset (`probe_seed`); an env whose tools change per task (the puzzle
    mixture) exposes the probe task's tools.
    """
    import envgym  # noqa: F401

    probe = gym.make(env_id, **(env_kwargs or {}))
    try:
        _, info = probe.reset(seed=probe_seed)
    finally:
        probe.close()
    methods: dict[str, Any] = {"env_id": env_id, "env_kwargs": dict(env_kwargs or {})}
    for schema in info.get("tools") or []:
        method = _tool_method(schema)
        if method.__name__ in ("reset", "get_reward") or method.__name__.startswith("_"):
            raise ValueError(f"{env_id}: tool name {method.__name__!r} clashes with TRL's environment protocol")
        methods[method.__name__] = method
    name = "".join(ch for ch in env_id.split("/")[-1].title() if ch.isalnum()) + "Environment"
    return type(name, (EnvgymTRLEnvironment,), methods)


def environment_classes(env_ids: list[str]) -> dict[str, type[EnvgymTRLEnvironment]]:
    """`environment_factory` for a run that mixes envs: TRL picks each row's class by its `environment`
    field (set by `task_dataset` when given several ids) and shows only that env's tools."""
    return {env_id: environment_class(env_id) for env_id in env_ids}


def task_dataset(
    env_id: str | list[str],
    tasks: int,
    seed: int = 0,
    difficulty: float | None = None,
    system_prompt: str | None = None,
) -> Any:
    """`tasks` rows (env_id, seed, difficulty, prompt) per env id for `GRPOTrainer(train_dataset=...)`: the
    prompt is a chat whose last user message is empty, and `reset` appends the task's observation to it. With
    several ids the rows also carry `environment` (TRL's field for `environment_classes`), interleaved."""
    with needs_extra("integrations"):
        from datasets import Dataset

    prompt = ([{"role": "system", "content": system_prompt}] if system_prompt else []) + [
        {"role": "user", "content": ""}
    ]
    ids = [env_id] if isinstance(env_id, str) else list(env_id)
    rows = []
    for i in range(tasks):
        for name in ids:
            row = {"env_id": name, "seed": seed + i, "difficulty": difficulty, "prompt": prompt}
            rows.append(row if isinstance(env_id, str) else {**row, "environment": name})
    return Dataset.from_list(rows)
