"""Scaffolding shared by every procedural env family: native parameters from `difficulty`, and the mixture env
that samples a family per task.

Why here: puzzles and tool-use tasks map difficulty to their own knobs, validate user overrides and sample
families in exactly the same way; one copy keeps them identical (and cheap: parameters are resolved once per
(difficulty, overrides) and reused, since building and dumping a pydantic model costs more than a small
puzzle's whole reset).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from envgym.actions import Tool, ToolCall
from envgym.core import InfraError, StepOutcome, TextEnv
from envgym.registry import ENTRIES
from envgym.validation import problems

_PARAMS_CACHE_SIZE = 64


def lerp_int(difficulty: float, low: int, high: int) -> int:
    """Map difficulty in [0, 1] linearly onto the integers low..high (inclusive)."""
    return round(low + (high - low) * difficulty)


class FamilyParams(BaseModel):
    """Native parameters of a family. Subclasses add fields; every field must have a default.

    Treat an instance as read-only: one is shared by every task generated at the same settings.
    """

    model_config = ConfigDict(extra="forbid")


class ProceduralEnv(TextEnv):
    """A family whose tasks are generated from (difficulty, native parameters, task seed)."""

    family: ClassVar[str] = "procedural"
    Params: ClassVar[type[FamilyParams]] = FamilyParams

    params: FamilyParams

    def params_for(self, difficulty: float) -> FamilyParams:
        """Native parameters at this difficulty (before user overrides); a pure function of `difficulty`."""
        raise NotImplementedError

    def resolve_params(self, difficulty: float, overrides: dict[str, Any]) -> tuple[FamilyParams, dict[str, Any]]:
        """The parameters for a task and their dump; overrides validated, bad ones a ValueError.

        Both are shared by every task at the same settings: read-only (`TextEnv.reset` keeps the dump as the
        task's own and hands the caller a copy).
        """
        last = self.__dict__.get("_params_last")  # the same settings as the previous task: two comparisons
        if last is not None and last[0] == difficulty and last[1] == overrides:
            return last[2]
        key: Hashable | None = (difficulty, tuple(sorted(overrides.items())))
        try:
            cache: dict[Hashable, tuple[FamilyParams, dict[str, Any]]] = self.__dict__.setdefault("_params_cache", {})
            hit = cache.get(key)
        except TypeError:  # an unhashable override value (a list): resolve without the cache
            key, hit = None, None
        if hit is None:
            params = self.params_for(difficulty)
            if overrides:
                try:
                    params = self.Params.model_validate({**params.model_dump(), **overrides})
                except ValidationError as exc:
                    known = ", ".join(self.Params.model_fields)
                    raise ValueError(
                        f"invalid parameters for {self.env_id}: {problems(exc, limit=3)} (its parameters: {known})"
                    ) from None
            hit = (params, params.model_dump())
            if key is not None:
                if len(cache) >= _PARAMS_CACHE_SIZE:
                    cache.clear()
                cache[key] = hit
        self.__dict__["_params_last"] = (difficulty, dict(overrides), hit)
        return hit


def family_classes(group: str, mixture_id: str, short_name: Callable[[str], str]) -> dict[str, type[TextEnv]]:
    """Short family name -> env class for every registered env of `group` except its mixture."""
    return {
        short_name(entry.id): entry.load_class()
        for entry in ENTRIES
        if entry.family == group and entry.id != mixture_id
    }


class MixtureEnv(TextEnv):
    """One env id that samples a family per task (from the task seed, so a task still replays exactly) and
    then hands the whole episode to that family's env: steps, budgets, feedback and sandbox are the family's.
    """

    kind: ClassVar[str] = "family"  # for messages: "puzzle family", "tool-use family"

    def __init__(
        self,
        available: dict[str, type[TextEnv]],
        families: list[str] | None,
        weights: dict[str, float] | None,
        make: Callable[[type[TextEnv]], TextEnv],
        difficulty: float | None = None,
        max_turns: int | None = None,
        render_mode: str | None = None,
    ) -> None:
        super().__init__(difficulty=difficulty, max_turns=max_turns, render_mode=render_mode)
        lookup = {name.casefold(): name for name in available}
        chosen = [lookup.get(str(f).casefold(), str(f)) for f in (families or list(weights or available))]
        unknown = sorted(set(chosen) - set(available))
        if unknown:
            raise ValueError(f"unknown {self.kind} families {unknown}; available: {sorted(available)}")
        folded = {str(k).casefold(): float(v) for k, v in (weights or {}).items()}
        raw = np.array([folded.get(name.casefold(), 1.0) for name in chosen])
        if (raw < 0).any() or raw.sum() <= 0:
            raise ValueError("family weights must be non-negative and not all zero")
        self.family_names = chosen
        self.family_probs = raw / raw.sum()
        self._families = {name: make(available[name]) for name in chosen}
        self.sub: TextEnv = self._families[chosen[0]]
        self.sub_info: dict[str, Any] = {}

    def _generate(self, difficulty: float, params: dict[str, Any]) -> tuple[str, dict[str, Any], int]:
        name = str(params.pop("family", None) or self.task_rng.choice(self.family_names, p=self.family_probs))
        if name not in self._families:
            raise ValueError(f"unknown {self.kind} family {name!r}; available: {self.family_names}")
        self.sub = self._families[name]
        self.sub.max_turns_override = self.max_turns_override  # a budget override reaches the family's own text
        sub_seed = int(self.task_rng.integers(0, 2**31 - 1))
        intro, self.sub_info = self.sub.reset(seed=sub_seed, options={"difficulty": difficulty, "params": params})
        if self.sub_info.get("infra_error"):
            raise InfraError(str(self.sub_info["infra_error"]))
        return intro, {"family": name, "family_seed": sub_seed, **self.sub_info["task"]["params"]}, self.sub.max_turns

    def step(self, action: str) -> tuple[str, float, bool, bool, dict]:
        if self.done:
            return super().step(action)
        result = self.sub.step(action)
        self.turn, self.done, self.last_observation = self.sub.turn, self.sub.done, self.sub.last_observation
        return result

    def current_tools(self) -> tuple[type[Tool], ...]:
        return self.sub.current_tools()

    @property
    def text_form_help(self) -> str:  # type: ignore[override]
        return self.sub.text_form_help

    def _text_form(self, text: str) -> ToolCall | None:
        return self.sub._text_form(text)

    def _apply(self, call: Tool) -> StepOutcome:
        raise NotImplementedError("a mixture hands whole steps to its family's env")

    @property
    def sandbox(self) -> Any:
        return self.sub.sandbox

    @sandbox.setter
    def sandbox(self, value: Any) -> None:
        raise AttributeError("a mixture's sandbox is its current family's")

    def oracle_action(self) -> str:
        return self.sub.oracle_action()

    def random_action(self, rng: np.random.Generator) -> str:
        return self.sub.random_action(rng)

    def close(self) -> None:
        for env in self._families.values():
            env.close()
        super().close()
