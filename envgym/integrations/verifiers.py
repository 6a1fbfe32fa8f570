"""envgym envs as verifiers environments: `load_environment(env_id)` returns a `MultiTurnEnv`.

Why this shape: verifiers (and prime-rl, which trains on its environments) loads an environment with
`load_environment(...)`, samples the model through its own client, and asks the environment for the next
message after each model turn. Here each rollout owns one gym env, reset to its row's task (`info` carries
env id, seed and difficulty; the row's prompt is that task's first observation). A model turn with a native
tool call is stepped as that call and answered with a `tool` message; a plain-text turn is stepped as text and
answered with a user message. The rubric's reward is the env's return; `solved` and `infra` are metrics, and
an infra failure sets `state["error"]` to a verifiers `InfraError` so trainers can drop the rollout.

Uses the classic verifiers API (`verifiers.MultiTurnEnv`, `verifiers.Rubric`): verifiers 0.3.x ships it as
`verifiers.legacy`; 0.4 removed it for the harness-based `verifiers.v1`.
"""

from __future__ import annotations

import json
from typing import Any

import gymnasium as gym

from envgym.agents.policies.openai_policy import tool_call_to_action
from envgym.extras import needs_extra
from envgym.integrations.datasets import task_rows

with needs_extra("integrations"):  # a missing one names the extra to install
    import verifiers as vf


def _field(message: Any, name: str) -> Any:
    return message.get(name) if isinstance(message, dict) else getattr(message, name, None)


def _text(content: Any) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    return "".join(str(_field(part, "text") or "") for part in content)  # content parts


class EnvgymMultiTurnEnv(vf.MultiTurnEnv):
    """A verifiers multi-turn environment whose turns are an envgym env's steps."""

    def __init__(self, env_id: str, env_kwargs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        rubric = vf.Rubric(funcs=[self.envgym_return], weights=[1.0])
        rubric.add_metric(self.solved)
        rubric.add_metric(self.infra)
        super().__init__(rubric=rubric, **kwargs)
        self.envgym_id = env_id
        self.envgym_kwargs = dict(env_kwargs or {})
        self._live: dict[str, dict[str, Any]] = {}  # trajectory id -> the rollout's env and tallies

    async def setup_state(self, state: Any) -> Any:
        import envgym  # noqa: F401  (registers the ids)

        info = state["info"] if isinstance(state.get("info"), dict) else json.loads(state.get("info") or "{}")
        env = gym.make(str(info.get("env_id", self.envgym_id)), **self.envgym_kwargs)
        live = {"env": env, "return": 0.0, "solved": False, "infra": None, "done": False}
        options = {"difficulty": float(info["difficulty"])} if info.get("difficulty") is not None else {}
        try:
            _, reset_info = env.reset(seed=info.get("seed"), options=options)
            live["infra"] = reset_info.get("infra_error") or None
        except Exception as exc:  # the env could not start the task
            live["infra"] = f"reset failed: {exc!r}"
        if live["infra"]:
            state["error"] = vf.InfraError(str(live["infra"]))
        self._live[state["trajectory_id"]] = live
        return state

    async def env_response(self, messages: Any, state: Any, **kwargs: Any) -> Any:
        live = self._live[state["trajectory_id"]]
        last = messages[-1]
        calls = _field(last, "tool_calls") or []
        if calls:
            first = calls[0]
            name = _field(first, "name") or _field(_field(first, "function"), "name")
            arguments = _field(first, "arguments") or _field(_field(first, "function"), "arguments")
            observation = self._step(live, tool_call_to_action(str(name), arguments))
            reply: list[Any] = [vf.ToolMessage(tool_call_id=_field(first, "id"), content=observation)]
            reply += [vf.ToolMessage(tool_call_id=_field(c, "id"), content="Ignored: one action per turn.")
                      for c in calls[1:]]  # fmt: skip
        else:
            reply = [vf.UserMessage(content=self._step(live, _text(_field(last, "content"))))]
        if live["done"]:
            state["final_env_response"] = reply
        if live["infra"]:
            state["error"] = vf.InfraError(str(live["infra"]))
        return reply

    async def add_trajectory_step(self, state: Any, trajectory_step: Any) -> None:
        """Tool-call turns are kept with `content: ""`, not null: some servers answer 500 to a null content."""
        for message in trajectory_step["completion"] or []:
            if _field(message, "tool_calls") and _field(message, "content") is None:
                if isinstance(message, dict):
                    message["content"] = ""
                else:
                    message.content = ""
        await super().add_trajectory_step(state, trajectory_step)

    def _step(self, live: dict[str, Any], action: str) -> str:
        try:
            observation, reward, terminated, truncated, info = live["env"].step(action)
        except Exception as exc:  # the env or its sandbox broke
            live["infra"], live["done"] = f"step raised {exc!r}", True
            return "The environment failed; the episode is over."
        live["return"] += float(reward)
        live["solved"] = bool(info.get("solved", False))
        live["infra"] = info.get("infra_error") or live["infra"]
        live["done"] = bool(terminated or truncated or live["infra"])
        return str(observation)

    @vf.stop
    async def envgym_episode_over(self, state: Any) -> bool:
        live = self._live.get(state["trajectory_id"])
        return bool(live and (live["done"] or live["infra"]))

    @vf.cleanup
    async def close_envgym_env(self, state: Any) -> None:
        live = self._live.get(state["trajectory_id"])
        if live is not None:
            live["env"].close()

    def _tally(self, state: Any) -> dict[str, Any]:
        return self._live.get(state["trajectory_id"]) or {"return": 0.0, "solved": False, "infra": None}

    async def envgym_return(self, state: Any, **kwargs: Any) -> float:
        """The env's return for the rollout: the reward."""
        return float(self._tally(state)["return"])

    async def solved(self, state: Any, **kwargs: Any) -> float:
        return float(bool(self._tally(state)["solved"]))

    async def infra(self, state: Any, **kwargs: Any) -> float:
        return float(bool(self._tally(state)["infra"]))


def load_environment(
    env_id: str = "envgym/GuessNumber-v0",
    num_examples: int = 32,
    seed: int = 0,
    difficulty: float | None = None,
    system_prompt: str | None = None,
    use_tools: bool = True,
    env_kwargs: dict[str, Any] | None = None,
    max_turns: int = -1,
    envgym_id: str | None = None,
    **kwargs: Any,
) -> EnvgymMultiTurnEnv:
    """A verifiers `MultiTurnEnv` over `num_examples` tasks of `env_id` (seeds seed.., one difficulty).

    `use_tools` offers the env's tools as native function tools; without it the model acts in text.
    `max_turns` (-1: the env's own budget) caps model turns. Through verifiers' own loader, whose first
    parameter is also called `env_id`, name the env with `envgym_id`:
    `vf.load_environment("envgym.integrations.verifiers", envgym_id="envgym/Sokoban-v0")`.
    """
    with needs_extra("integrations"):
        from datasets import Dataset

    env_id = envgym_id or env_id

    rows = []
    for row in task_rows(env_id, num_examples, seed, difficulty, env_kwargs):
        tools = [t.get("function", t) for t in json.loads(row["tools"])] if use_tools else []
        info = {"env_id": env_id, "seed": row["seed"], "difficulty": row["difficulty"], "task_id": row["task_id"]}
        if use_tools:
            info["tool_defs"] = [
                {"name": t["name"], "description": t.get("description", ""), "parameters": t.get("parameters", {})}
                for t in tools
            ]
        rows.append({"prompt": [{"role": "user", "content": row["prompt"]}], "answer": "",
                     "info": info})  # fmt: skip
    dataset = Dataset.from_list(rows)
    return EnvgymMultiTurnEnv(
        env_id, env_kwargs, dataset=dataset, eval_dataset=dataset, system_prompt=system_prompt, max_turns=max_turns,
        **kwargs,
    )  # fmt: skip
