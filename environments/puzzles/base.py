"""What every puzzle family shares: native parameters derived from `difficulty`, overridable by the user,
and a reward of 1 for a solved puzzle and 0 otherwise.

Why: the difficulty dial must mean the same thing everywhere (0 trivial, 1 the hardest we ship) while the
family's own knobs (size, number of pegs, ...) stay settable; `params_for` is the single mapping, and the
calibration script (`benchmarks/calibrate_puzzles.py`) measures that harder really is harder.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from envgym.core import Feedback, StepOutcome, TextEnv


class PuzzleParams(BaseModel):
    """Native parameters of a family. Subclasses add fields; every field must have a default."""

    model_config = ConfigDict(extra="forbid")


def lerp_int(difficulty: float, low: int, high: int) -> int:
    """Map difficulty in [0, 1] linearly onto the integers low..high (inclusive)."""
    return round(low + (high - low) * difficulty)


class PuzzleEnv(TextEnv):
    """Base of the procedural puzzle families."""

    family: ClassVar[str] = "puzzle"
    Params: ClassVar[type[PuzzleParams]] = PuzzleParams

    params: PuzzleParams

    def params_for(self, difficulty: float) -> PuzzleParams:
        """Native parameters at this difficulty (before user overrides)."""
        raise NotImplementedError

    def _new_puzzle(self, params: Any) -> tuple[str, int]:
        """Generate the puzzle from `self.task_rng`; return (intro text, turn budget)."""
        raise NotImplementedError

    def _generate(self, difficulty: float, params: dict[str, Any]) -> tuple[str, dict[str, Any], int]:
        base = self.params_for(difficulty)
        if params:  # user overrides are validated; the common no-override path skips a second validation
            try:
                base = self.Params.model_validate({**base.model_dump(), **params})
            except ValidationError as exc:
                raise ValueError(f"invalid parameters for {self.env_id}: {exc}") from exc
        self.params = base
        intro, budget = self._new_puzzle(self.params)
        return intro, self.params.model_dump(), budget

    @staticmethod
    def solved(summary: str, state: str | None = None, details: str | None = None) -> StepOutcome:
        return StepOutcome(
            feedback=Feedback(summary=summary, details=details),
            state=state,
            reward=1.0,
            terminated=True,
            solved=True,
            reward_components={"solved": 1.0},
        )

    @staticmethod
    def failed(summary: str, state: str | None = None, details: str | None = None) -> StepOutcome:
        """The puzzle is lost for good (e.g. stepped into a hole): terminated with reward 0."""
        return StepOutcome(
            feedback=Feedback(summary=summary, details=details),
            state=state,
            terminated=True,
            reward_components={"solved": 0.0},
        )
