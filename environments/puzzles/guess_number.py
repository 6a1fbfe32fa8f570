"""Guess the number: find a hidden integer in [1, N]; each guess is answered "higher" or "lower".

Difficulty raises N (8 → 1024) and removes slack from the turn budget (optimal binary search needs
ceil(log2(N + 1)) guesses), and hides the remaining-interval hint above difficulty 0.5.
"""

from __future__ import annotations

import functools
import re
from typing import ClassVar

import numpy as np
from pydantic import ConfigDict, Field

from envgym.actions import Tool, ToolCall
from envgym.core import Feedback, StepOutcome
from envgym.environments.puzzles.base import PuzzleEnv, PuzzleParams, lerp_int


class Guess(Tool):
    """Guess the hidden number."""

    model_config = ConfigDict(frozen=True)  # a call is a value: the env may reuse it for the same text
    name: ClassVar[str] = "guess"
    number: int = Field(description="your guess, an integer in the announced range")


class GuessNumberParams(PuzzleParams):
    upper: int = Field(default=100, ge=2, le=10**9, description="the number is in [1, upper]")
    slack: int = Field(default=2, ge=0, le=100, description="turns allowed beyond the optimal number")
    show_interval: bool = Field(default=True, description="hint the remaining interval after each guess")


@functools.lru_cache(maxsize=1024)
def _intro(upper: int, budget: int) -> str:
    """The task text: the same for every secret of one range and budget."""
    return (
        f"I am thinking of an integer between 1 and {upper}. Find it in at most {budget} guesses.\n"
        'After each guess I say "higher" or "lower". Guess with {"name": "guess", "arguments": '
        '{"number": %d}} or just write the number.' % ((upper + 1) // 2)
    )


class GuessNumberEnv(PuzzleEnv):
    env_id: ClassVar[str] = "envgym/GuessNumber-v0"
    family: ClassVar[str] = "guess_number"
    tools: ClassVar[tuple[type[Tool], ...]] = (Guess,)
    Params: ClassVar[type[PuzzleParams]] = GuessNumberParams
    text_form_help: ClassVar[str] = "a bare integer such as `42`"

    params: GuessNumberParams
    _shape: tuple[GuessNumberParams | None, int, str] = (None, 0, "")  # (params, budget, intro) of the last task

    def params_for(self, difficulty: float) -> GuessNumberParams:
        exponent = lerp_int(difficulty, 3, 10)
        return GuessNumberParams(upper=2**exponent, slack=lerp_int(difficulty, 3, 0), show_interval=difficulty <= 0.5)

    def _new_puzzle(self, params: GuessNumberParams) -> tuple[str, int]:  # type: ignore[override]
        self.secret = 1 + self.only_draw(params.upper)  # = rng.randint(1, upper)
        self.low, self.high = 1, params.upper
        shape = self._shape
        if shape[0] is not params:  # params are shared by every task at the same settings (read-only)
            budget = self.optimal_guesses(params.upper) + params.slack
            self._shape = shape = (params, budget, _intro(params.upper, budget))
        return shape[2], shape[1]

    @staticmethod
    def optimal_guesses(upper: int) -> int:
        return max(1, upper.bit_length())  # = ceil(log2(upper + 1)), without float math

    def _text_form(self, text: str) -> ToolCall | None:
        match = re.fullmatch(r"(?:guess\s*:?\s*)?(-?\d{1,12})\.?", text.strip(), re.I)
        return ToolCall(name="guess", arguments={"number": int(match.group(1))}) if match else None

    def _apply(self, call: Guess) -> StepOutcome:  # type: ignore[override]
        n = call.number
        if not 1 <= n <= self.params.upper:
            return StepOutcome(
                feedback=Feedback(
                    summary=f"{n} is outside the range.", error=f"guesses must be in [1, {self.params.upper}]"
                )
            )
        if n == self.secret:
            return self.solved(f"{n} is correct! Solved in {self.turn} guesses.")
        if self.secret > n:
            direction = "higher"
            if n >= self.low:  # = max(low, n + 1), without the call
                self.low = n + 1
        else:
            direction = "lower"
            if n <= self.high:
                self.high = n - 1
        hint = f"the number is in [{self.low}, {self.high}]" if self.params.show_interval else None
        left = self.max_turns - self.turn
        # positional: a keyword call into the dataclasses' __init__ costs about twice as much (hot path)
        return StepOutcome(Feedback(f"{n}: {direction}. {left} guesses left.", None, None, hint))

    def oracle_action(self) -> str:
        return Guess(number=(self.low + self.high) // 2).to_action()

    def random_action(self, rng: np.random.Generator) -> str:
        return Guess(number=int(rng.integers(1, self.params.upper + 1))).to_action()
