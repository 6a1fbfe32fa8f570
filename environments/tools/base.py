"""What every tool-use family shares: native parameters derived from `difficulty`, a generated task with a
gold tool-call plan, the `submit_answer` rules, wasted-call hints, and the oracle / random reference agents.

Why: the families differ only in their world (a database, a knowledge base, a sandbox, a mock service) and in
their tools; scoring, revealing the answer only at the end, and replaying the gold plan must behave the same
everywhere so calibration numbers are comparable across families.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from envgym.actions import Tool
from envgym.core import Feedback, StepOutcome
from envgym.environments.tools.answers import AnswerValue, Expected, SubmitAnswer, is_correct, render_answer
from envgym.families import FamilyParams, ProceduralEnv, lerp_int

__all__ = ["ToolParams", "ToolTask", "ToolTaskEnv", "lerp_int"]


class ToolParams(FamilyParams):
    """Native parameters every tool-use family has. Subclasses add fields; every field has a default."""

    hints: bool = Field(default=True, description="hint when a call is wasted (empty result, repeated call)")
    slack: int = Field(default=4, ge=0, le=100, description="turns allowed beyond the gold plan")
    attempts: int = Field(default=1, ge=1, le=10, description="answer submissions allowed")


@dataclass
class ToolTask:
    """A generated task: what the agent reads, the verified answer, and the gold plan that reaches it."""

    intro: str
    expected: Expected
    gold_calls: list[Tool]
    gold_answer: AnswerValue
    candidates: list[str] = field(default_factory=list)  # plausible answers (the random agent submits one)

    @property
    def gold_length(self) -> int:
        return len(self.gold_calls) + 1


class ToolTaskEnv(ProceduralEnv):
    """Base of the tool-use families: subclasses write `params_for`, `_build` and `_call_tool`."""

    family: ClassVar[str] = "tool"
    Params: ClassVar[type[ToolParams]] = ToolParams

    params: ToolParams
    task_spec: ToolTask

    def __init__(
        self,
        difficulty: float | None = None,
        max_turns: int | None = None,
        params: dict[str, Any] | None = None,
        render_mode: str | None = None,
    ) -> None:
        super().__init__(difficulty=difficulty, max_turns=max_turns, params=params, render_mode=render_mode)
        self.history: list[str] = []
        self.attempts_left = 0

    # ----- hooks ------------------------------------------------------------------------------------------
    def _build(self, params: Any) -> ToolTask:
        """Generate the world and the task from `self.task_rng`."""
        raise NotImplementedError

    def _call_tool(self, call: Tool) -> StepOutcome:
        """Run one non-submit tool call (by default: the family's method marked `@handles` for it)."""
        return self._dispatch(call)

    def _random_call(self, tool: type[Tool], rng: np.random.Generator) -> Tool:
        """A random well-formed call of a non-submit tool."""
        raise NotImplementedError

    def _state_check(self) -> tuple[bool, str]:
        """Families whose final state is graded check it here: (ok, why not); may update `spec.expected`."""
        return True, ""

    # ----- contract ---------------------------------------------------------------------------------------
    def _generate(self, difficulty: float, params: dict[str, Any]) -> tuple[str, dict[str, Any], int]:
        self.params, used = self.resolve_params(difficulty, params)  # type: ignore[assignment]
        self.history = []
        self.attempts_left = self.params.attempts
        self.task_spec = self._build(self.params)
        budget = self.task_spec.gold_length + self.params.slack
        return self.task_spec.intro, used, budget

    def _apply(self, call: Tool) -> StepOutcome:
        if call.name == SubmitAnswer.name:
            outcome = self._submit(call)  # type: ignore[arg-type]
        else:
            action = call.to_action()
            repeated = action in self.history
            outcome = self._call_tool(call)
            self.history.append(action)
            if repeated and outcome.feedback.hint is None:
                outcome.feedback.hint = self.hint("you already made this exact call; its result has not changed")
        if not outcome.terminated and self.turn >= self.max_turns:
            outcome.feedback.details = "\n".join(
                p
                for p in (outcome.feedback.details, f"The expected answer was: {self.task_spec.expected.display()}")
                if p
            )
        return outcome

    def _submit(self, call: SubmitAnswer) -> StepOutcome:
        self.attempts_left -= 1
        state_ok, why = self._state_check()  # first: a graded state may fix what the right answer is
        correct = is_correct(self.task_spec.expected, call.answer)
        given = render_answer(call.answer)
        if correct and state_ok:
            return StepOutcome(
                feedback=Feedback(summary=f"Correct: {given}. Task solved in {self.turn} turns."),
                reward=1.0,
                terminated=True,
                solved=True,
                reward_components={"correct": 1.0},
            )
        problem = f"the final state is wrong: {why}" if correct else f"{given} is not the right answer"
        if self.attempts_left > 0 and self.turn < self.max_turns:
            return StepOutcome(
                feedback=Feedback(summary=f"Incorrect: {problem}. {self.attempts_left} submission(s) left.")
            )
        return StepOutcome(
            feedback=Feedback(
                summary=f"Incorrect: {problem}. Episode over.",
                details=f"The expected answer was: {self.task_spec.expected.display()}",
            ),
            terminated=True,
            reward_components={"correct": 0.0},
        )

    def hint(self, text: str) -> str | None:
        """A hint, only where the difficulty allows one."""
        return text if self.params.hints else None

    # ----- reference agents -------------------------------------------------------------------------------
    def oracle_action(self) -> str:
        """The first gold call not made yet (read-only worlds keep every result), then the gold answer."""
        for call in self.task_spec.gold_calls:
            if call.to_action() not in self.history:
                return call.to_action()
        return SubmitAnswer(answer=self.task_spec.gold_answer).to_action()  # type: ignore[call-arg]

    def random_action(self, rng: np.random.Generator) -> str:
        tools = self.current_tools()
        tool = tools[int(rng.integers(len(tools)))]
        if tool.name == SubmitAnswer.name:
            pool = self.task_spec.candidates or [self.task_spec.expected.display()]
            return SubmitAnswer(answer=pool[int(rng.integers(len(pool)))]).to_action()
        return self._random_call(tool, rng).to_action()

    def greedy_guess(self, observation: str) -> str:
        """What a one-look agent submits: the candidate answer that appears first in what it has seen."""
        pool = self.task_spec.candidates or [self.task_spec.expected.display()]
        text = observation.casefold()
        found = []
        for i, candidate in enumerate(pool):
            match = re.search(rf"(?<![\w.]){re.escape(candidate.casefold())}(?![\w])", text) if candidate else None
            if match:
                found.append((match.start(), i))
        return pool[min(found)[1]] if found else pool[0]
