"""`envgym/ToolUse-v0`: one env id that samples a tool-use family per task (families and weights settable).

Why: a trainer that wants breadth over tool use makes one env; the family is drawn from the task seed, so a
task is still fully determined by (seed, options) and replays exactly.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from envgym.actions import Tool
from envgym.core import StepOutcome, TextEnv
from envgym.environments.tools.base import ToolTaskEnv
from envgym.environments.tools.sandboxing import SandboxedTaskEnv
from envgym.registry import ENTRIES

MIXTURE_ID = "envgym/ToolUse-v0"


def family_classes() -> dict[str, type[ToolTaskEnv]]:
    """Short family name (e.g. `SQL`) -> env class, for every registered tool-use family."""
    classes: dict[str, type[ToolTaskEnv]] = {}
    for entry in ENTRIES:
        if entry.family == "tools" and entry.id != MIXTURE_ID:
            short = entry.id.split("/")[-1].removeprefix("ToolUse-").removesuffix("-v0")
            classes[short] = entry.load_class()
    return classes


class ToolUseMixtureEnv(TextEnv):
    env_id: ClassVar[str] = MIXTURE_ID

    def __init__(
        self,
        families: list[str] | None = None,
        weights: dict[str, float] | None = None,
        difficulty: float | None = None,
        max_turns: int | None = None,
        render_mode: str | None = None,
        sandbox: str = "local",
        sandbox_options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(difficulty=difficulty, max_turns=max_turns, render_mode=render_mode)
        available = family_classes()
        lookup = {name.casefold(): name for name in available}
        chosen = [lookup.get(str(f).casefold(), str(f)) for f in (families or list(weights or available))]
        unknown = sorted(set(chosen) - set(available))
        if unknown:
            raise ValueError(f"unknown tool-use families {unknown}; available: {sorted(available)}")
        folded = {k.casefold(): float(v) for k, v in (weights or {}).items()}
        raw = np.array([folded.get(name.casefold(), 1.0) for name in chosen])
        if (raw < 0).any() or raw.sum() <= 0:
            raise ValueError("family weights must be non-negative and not all zero")
        self.family_names = chosen
        self.family_probs = raw / raw.sum()
        self._families: dict[str, ToolTaskEnv] = {}
        for name in chosen:
            cls = available[name]
            if issubclass(cls, SandboxedTaskEnv):
                self._families[name] = cls(render_mode=render_mode, sandbox=sandbox, sandbox_options=sandbox_options)
            else:
                self._families[name] = cls(render_mode=render_mode)
        self.sub: ToolTaskEnv = self._families[chosen[0]]

    def _generate(self, difficulty: float, params: dict[str, Any]) -> tuple[str, dict[str, Any], int]:
        name = str(params.pop("family", None) or self.task_rng.choice(self.family_names, p=self.family_probs))
        if name not in self._families:
            raise ValueError(f"unknown tool-use family {name!r}; available: {self.family_names}")
        self.sub = self._families[name]
        sub_seed = int(self.task_rng.integers(0, 2**31 - 1))
        intro, info = self.sub.reset(seed=sub_seed, options={"difficulty": difficulty, "params": params})
        self._sub_sandbox = info.get("sandbox")
        return intro, {"family": name, "family_seed": sub_seed, **info["task"]["params"]}, self.sub.max_turns

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict]:
        self._sub_sandbox = None
        observation, info = super().reset(seed=seed, options=options)
        info["sandbox"] = self._sub_sandbox or {}  # always a dict: vector envs need one type per info key
        return observation, info

    def current_tools(self) -> tuple[type[Tool], ...]:
        return self.sub.current_tools()

    def _apply(self, call: Tool) -> StepOutcome:
        self.sub.turn = self.turn
        self.sub.max_turns = self.max_turns
        return self.sub._apply(call)

    def oracle_action(self) -> str:
        return self.sub.oracle_action()

    def random_action(self, rng: np.random.Generator) -> str:
        return self.sub.random_action(rng)

    def greedy_guess(self, observation: str) -> str:
        return self.sub.greedy_guess(observation)

    def close(self) -> None:
        for env in self._families.values():
            env.close()
        super().close()
