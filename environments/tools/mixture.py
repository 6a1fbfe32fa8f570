"""`envgym/ToolUse-v0`: one env id that samples a tool-use family per task (families and weights settable).

Why: a trainer that wants breadth over tool use makes one env; the family is drawn from the task seed, so a
task is still fully determined by (seed, options) and replays exactly.
"""

from __future__ import annotations

from typing import Any, ClassVar

from envgym.core import TextEnv
from envgym.environments.tools.sandboxing import SandboxedTaskEnv
from envgym.families import MixtureEnv
from envgym.families import family_classes as _registered

MIXTURE_ID = "envgym/ToolUse-v0"


def family_classes() -> dict[str, type[TextEnv]]:
    """Short family name (e.g. `SQL`) -> env class, for every registered tool-use family."""
    return _registered(
        "tools", MIXTURE_ID, lambda env_id: env_id.split("/")[-1].removeprefix("ToolUse-").removesuffix("-v0")
    )


class ToolUseMixtureEnv(MixtureEnv):
    env_id: ClassVar[str] = MIXTURE_ID
    kind: ClassVar[str] = "tool-use"

    def __init__(
        self,
        families: list[str] | None = None,
        weights: dict[str, float] | None = None,
        difficulty: float | None = None,
        max_turns: int | None = None,
        render_mode: str | None = None,
        sandbox: str = "auto",
        sandbox_options: dict[str, Any] | None = None,
    ) -> None:
        def make(cls: type[TextEnv]) -> TextEnv:
            extra: dict[str, Any] = {}
            if issubclass(cls, SandboxedTaskEnv):
                extra = {"sandbox": sandbox, "sandbox_options": sandbox_options}
            return cls(render_mode=render_mode, **extra)

        super().__init__(
            family_classes(),
            families,
            weights,
            make,
            difficulty=difficulty,
            max_turns=max_turns,
            render_mode=render_mode,
        )

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict]:
        self.sub_info = {}
        observation, info = super().reset(seed=seed, options=options)
        info["sandbox"] = self.sub_info.get("sandbox") or {}  # always a dict: vector envs need one type per key
        return observation, info

    def greedy_guess(self, observation: str) -> str:
        return self.sub.greedy_guess(observation)  # type: ignore[attr-defined]
