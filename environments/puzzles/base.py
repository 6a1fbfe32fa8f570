"""What every puzzle family shares: native parameters derived from `difficulty`, overridable by the user,
and a reward of 1 for a solved puzzle and 0 otherwise.

Why: the difficulty dial must mean the same thing everywhere (0 trivial, 1 the hardest we ship) while the
family's own knobs (size, number of pegs, ...) stay settable; `params_for` is the single mapping, and the
calibration script (`benchmarks/calibrate_puzzles.py`) measures that harder really is harder.
"""

from __future__ import annotations

import random
from typing import Any, ClassVar

from envgym.core import Feedback, StepOutcome
from envgym.families import FamilyParams, ProceduralEnv, lerp_int
from envgym.taskrng import CounterRandom, first_below

__all__ = ["PuzzleEnv", "PuzzleParams", "lerp_int"]

PuzzleParams = FamilyParams  # the name puzzle modules use


class PuzzleEnv(ProceduralEnv):
    """Base of the procedural puzzle families: `params_for`, `_new_puzzle`, the rules and the solver."""

    family: ClassVar[str] = "puzzle"
    # v1: tasks are drawn from `CounterRandom` (no Mersenne Twister / NumPy seeding per reset): every family's
    # task stream changed from v0 (see docs/puzzles.md, "Versions")
    version: ClassVar[str] = "1"
    rng_class: ClassVar[type[random.Random]] = CounterRandom
    # every puzzle's text form is a pure function of the text and its tools are frozen (`class X(Tool,
    # frozen=True)`): a repeated action text reuses its validated call
    memoize_parses: ClassVar[bool] = True
    # intros, boards and feedback lines recur across episodes: each distinct text is checked once
    recurring_texts: ClassVar[bool] = True

    def _new_puzzle(self, params: Any) -> tuple[str, int]:
        """Generate the puzzle from `self.rng` / `self.task_rng`; return (intro text, turn budget)."""
        raise NotImplementedError

    def only_draw(self, n: int) -> int:
        """`self.rng._randbelow(n)` for a task whose generator draws this one number and nothing else: the same
        value without creating the generator (`first_below`). A second draw from `self.rng` would repeat it."""
        if self._rng is None and self.rng_class is CounterRandom:
            return first_below(self.task_seed, n)
        return self.rng._randbelow(n)  # type: ignore[attr-defined,no-any-return]

    def _generate(self, difficulty: float, params: dict[str, Any]) -> tuple[str, dict[str, Any], int]:
        self.params, used = self.resolve_params(difficulty, params)
        intro, budget = self._new_puzzle(self.params)
        return intro, used, budget

    @staticmethod
    def solved(summary: str, state: str | None = None, details: str | None = None) -> StepOutcome:
        # positional (feedback, state, reward, terminated, solved, reward_components): half a keyword call's cost
        return StepOutcome(Feedback(summary, details), state, 1.0, True, True, {"solved": 1.0})

    @staticmethod
    def failed(summary: str, state: str | None = None, details: str | None = None) -> StepOutcome:
        """The puzzle is lost for good (e.g. stepped into a hole): terminated with reward 0."""
        return StepOutcome(
            feedback=Feedback(summary=summary, details=details),
            state=state,
            terminated=True,
            reward_components={"solved": 0.0},
        )
