"""Toy text envs for testing the learner (NOTES-RL §12): a bandit, guess-the-number with h/l feedback, and
code-breaking. Why they exist: their optimal and feedback-free ceilings are known exactly, and their
observations are one or a few words, so a tiny random model (`envgym.agents.toy`) learns them in seconds on
one CPU thread while going through the real `TextEnv` contract, rollout and trainer.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from envgym.actions import Tool, ToolCall
from envgym.core import Feedback, StepOutcome, TextEnv

SYMBOLS = ["A", "B", "C", "D"]


class _Number(Tool):
    """Answer with a number."""

    name: ClassVar[str] = "answer"
    number: int = Field(description="the number")

    @classmethod
    @functools.cache
    def schema_dict(cls) -> dict[str, Any]:  # cached: pydantic builds it in ~1 ms, on every reset
        return super().schema_dict()


class _ToyEnv(TextEnv):
    """Shared by the toy envs: compact one-token observations so contexts stay short."""

    tools: ClassVar[tuple[type[Tool], ...]] = (_Number,)
    text_form_help: ClassVar[str] = "a bare number"
    family: ClassVar[str] = "toy"

    def _text_form(self, text: str) -> ToolCall | None:
        word = text.strip()
        return ToolCall(name="answer", arguments={"number": int(word)}) if word.isdigit() else None

    def step(self, action: str) -> tuple[str, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = super().step(action)
        obs = "x" if info["feedback"].get("error") else self._compact  # malformed: one token, not a sentence
        self.last_observation = obs
        return obs, reward, terminated, truncated, info

    _compact: str = "x"


class ToyBanditEnv(_ToyEnv):
    """E1: one of 8 context tokens; the right answer is a fixed permutation of the context (single turn)."""

    env_id: ClassVar[str] = "envgym/ToyBandit-v0"
    PERM: ClassVar[tuple[int, ...]] = (5, 12, 3, 16, 9, 1, 14, 7)

    def _generate(self, difficulty: float, params: dict[str, Any]) -> tuple[str, dict[str, Any], int]:
        self.context = int(self.task_rng.integers(0, 8))
        return f"c{self.context}", {"context": self.context}, 1

    def _apply(self, call: _Number) -> StepOutcome:  # type: ignore[override]
        ok = call.number == self.PERM[self.context]
        self._compact = "=" if ok else "x"
        return StepOutcome(
            feedback=Feedback(summary="right" if ok else "wrong"), reward=float(ok), terminated=True, solved=ok
        )


class ToyGuessEnv(_ToyEnv):
    """E2: a hidden number in 1..n, k guesses, feedback "h" (higher), "l" (lower) or "=" (solved)."""

    env_id: ClassVar[str] = "envgym/ToyGuess-v0"

    def __init__(self, n: int = 16, k: int = 5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.n, self.k = n, k

    def _generate(self, difficulty: float, params: dict[str, Any]) -> tuple[str, dict[str, Any], int]:
        self.secret = int(self.task_rng.integers(1, self.n + 1))
        return "go", {"n": self.n, "k": self.k}, self.k

    def _apply(self, call: _Number) -> StepOutcome:  # type: ignore[override]
        if call.number == self.secret:
            self._compact = "="
            return StepOutcome(feedback=Feedback(summary="correct"), reward=1.0, terminated=True, solved=True)
        self._compact = "h" if self.secret > call.number else "l"
        return StepOutcome(feedback=Feedback(summary="higher" if self._compact == "h" else "lower"))

    def oracle_action(self) -> str:
        return "1"

    def random_action(self, rng: np.random.Generator) -> str:
        return str(int(rng.integers(1, self.n + 1)))


class ToyCodeEnv(_ToyEnv):
    """E3: a hidden code of L symbols over A-D; each turn write L symbols, feedback "+"/"-" per position.

    Difficulty maps to L in 1..6 (L = 1 + round(5·difficulty)); K = 6 turns. The action's first L words
    must be symbols (the guess; later words are ignored), else it is malformed ("x"). The feedback echoes
    the guess with a mark after each symbol ("A + C -"), so "keep the '+' symbols" is a copy from the last
    observation at every L, the strategy the curriculum is meant to transfer.
    """

    env_id: ClassVar[str] = "envgym/ToyCode-v0"

    def _generate(self, difficulty: float, params: dict[str, Any]) -> tuple[str, dict[str, Any], int]:
        self.length = int(params.get("length", 1 + round(5 * difficulty)))
        self.code = [SYMBOLS[int(i)] for i in self.task_rng.integers(0, 4, size=self.length)]
        return "go " + " ".join(["?"] * self.length), {"length": self.length}, 6

    def step(self, action: str) -> tuple[str, float, bool, bool, dict]:
        guess = action.split()[: self.length]
        if len(guess) < self.length or any(g not in SYMBOLS for g in guess):
            return super().step("not a code")
        marks = ["+" if g == c else "-" for g, c in zip(guess, self.code, strict=True)]
        self._marks = " ".join(f"{g} {m}" for g, m in zip(guess, marks, strict=True))
        return super().step(str(int("-" not in marks)))

    def _apply(self, call: _Number) -> StepOutcome:  # type: ignore[override]
        self._compact = self._marks
        if call.number == 1:
            return StepOutcome(feedback=Feedback(summary="cracked"), reward=1.0, terminated=True, solved=True)
        return StepOutcome(feedback=Feedback(summary=self._marks))
