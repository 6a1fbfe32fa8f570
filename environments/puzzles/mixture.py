"""`envgym/Puzzle-v0`: one env id that samples a puzzle family per task (weights settable).

Why: a trainer that wants breadth makes one env; the family is drawn from the task seed, so a task is still
fully determined by (seed, options) and replays exactly.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from envgym.actions import Tool, ToolCall
from envgym.core import StepOutcome, TextEnv
from envgym.registry import ENTRIES


def family_classes() -> dict[str, type[TextEnv]]:
    """Short family name (e.g. `Maze`) -> env class, for every registered puzzle family."""
    classes: dict[str, type[TextEnv]] = {}
    for entry in ENTRIES:
        if entry.family == "puzzles" and entry.id != "envgym/Puzzle-v0":
            classes[entry.id.split("/")[-1].removesuffix("-v0")] = entry.load_class()
    return classes


class PuzzleMixtureEnv(TextEnv):
    env_id: ClassVar[str] = "envgym/Puzzle-v0"

    def __init__(
        self,
        weights: dict[str, float] | None = None,
        families: list[str] | None = None,
        difficulty: float | None = None,
        max_turns: int | None = None,
        render_mode: str | None = None,
    ) -> None:
        super().__init__(difficulty=difficulty, max_turns=max_turns, render_mode=render_mode)
        available = family_classes()
        chosen = families or list(weights or available)
        unknown = sorted(set(chosen) - set(available))
        if unknown:
            raise ValueError(f"unknown puzzle families {unknown}; available: {sorted(available)}")
        raw = np.array([float((weights or {}).get(name, 1.0)) for name in chosen])
        if (raw < 0).any() or raw.sum() <= 0:
            raise ValueError("family weights must be non-negative and not all zero")
        self.family_names = chosen
        self.family_probs = raw / raw.sum()
        self._families = {name: available[name](render_mode=render_mode) for name in chosen}
        self.sub: TextEnv = self._families[chosen[0]]

    def _generate(self, difficulty: float, params: dict[str, Any]) -> tuple[str, dict[str, Any], int]:
        name = str(params.pop("family", None) or self.task_rng.choice(self.family_names, p=self.family_probs))
        if name not in self._families:
            raise ValueError(f"unknown puzzle family {name!r}; available: {self.family_names}")
        self.sub = self._families[name]
        self.sub.max_turns_override = self.max_turns_override  # a budget override reaches the family's own text
        sub_seed = int(self.task_rng.integers(0, 2**31 - 1))
        intro, info = self.sub.reset(seed=sub_seed, options={"difficulty": difficulty, "params": params})
        return intro, {"family": name, "family_seed": sub_seed, **info["task"]["params"]}, self.sub.max_turns

    def current_tools(self) -> tuple[type[Tool], ...]:
        return self.sub.current_tools()

    @property
    def text_form_help(self) -> str:  # type: ignore[override]
        return self.sub.text_form_help

    def _text_form(self, text: str) -> ToolCall | None:
        return self.sub._text_form(text)

    def _apply(self, call: Tool) -> StepOutcome:
        self.sub.turn = self.turn
        return self.sub._apply(call)

    def oracle_action(self) -> str:
        return self.sub.oracle_action()

    def random_action(self, rng: np.random.Generator) -> str:
        return self.sub.random_action(rng)
