"""The contract every envgym environment implements: `TextEnv`, `Feedback`, and the step/reset rules.

Why a base class: the rules that make text envs trustworthy for RL (seeded tasks from the env's own RNG,
text spaces that always contain the observation, malformed actions turned into feedback that costs a turn,
turn budgets reported as `truncated`, infra failures flagged instead of scored) live in one place, so a
family only writes its generator, its rules and its solver.
"""

from __future__ import annotations

import random
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium.utils import seeding
from pydantic import BaseModel, Field

from envgym.actions import ActionError, Tool, ToolCall, parse_action, tool_schemas
from envgym.text import sanitize, text_space


class InfraError(RuntimeError):
    """The host or a sandbox failed (not the agent). Envs report it in `info["infra_error"]`."""


class Feedback(BaseModel):
    """What happened on a step, in words an agent can use. The observation text is rendered from it."""

    summary: str = Field(description="one line: what happened")
    details: str | None = Field(default=None, description="test failures, tracebacks, rule violations")
    error: str | None = Field(default=None, description="set when the action was malformed or not allowed")
    hint: str | None = Field(default=None, description="a nudge, where the difficulty allows one")

    def render(self) -> str:
        parts = [self.summary]
        if self.error:
            parts.append(f"Error: {self.error}")
        if self.details:
            parts.append(self.details)
        if self.hint:
            parts.append(f"Hint: {self.hint}")
        return "\n".join(parts)


class StepOutcome(BaseModel):
    """What a family's rules return for one well-formed tool call."""

    feedback: Feedback
    state: str | None = Field(default=None, description="the current view (board, listing), shown after feedback")
    reward: float = 0.0
    terminated: bool = False
    solved: bool = False
    reward_components: dict[str, float] = Field(default_factory=dict)
    commands: list[dict[str, Any]] = Field(default_factory=list, description="sandbox commands run this step")
    infra_error: str | None = None


class TaskInfo(BaseModel):
    """Identifies a task exactly: `env` + `seed` + `difficulty` + `params` regenerate it bit for bit."""

    id: str
    env: str = Field(description="env_id@version")
    seed: int
    difficulty: float
    params: dict[str, Any] = Field(default_factory=dict)


class TextEnv(gym.Env[str, str]):
    """A multi-turn text environment: observations and actions are strings, rewards are verifiable outcomes.

    Subclasses implement `_generate` (build a task from `self.task_rng`), `_apply` (the rules for one tool
    call) and, where they can, `oracle_action` and `random_action` (reference agents).
    """

    env_id: ClassVar[str] = "envgym/Text-v0"
    version: ClassVar[str] = "0"
    tools: ClassVar[tuple[type[Tool], ...]] = ()
    text_form_help: ClassVar[str] = ""
    default_difficulty: ClassVar[float] = 0.5
    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi"], "render_fps": 1}  # type: ignore[misc]

    def __init__(
        self,
        difficulty: float | None = None,
        max_turns: int | None = None,
        params: dict[str, Any] | None = None,
        render_mode: str | None = None,
    ) -> None:
        self.observation_space = text_space()
        self.action_space = text_space()
        self.render_mode = render_mode
        self.difficulty = self._check_difficulty(self.default_difficulty if difficulty is None else difficulty)
        self.max_turns_override = max_turns
        self.param_overrides = dict(params or {})
        self.max_turns = max_turns or 1
        self.turn = 0
        self.done = True
        self.task: TaskInfo | None = None
        self.task_seed = 0
        self._task_rng: np.random.Generator | None = None
        self._rng: random.Random | None = None
        self._env_rng: np.random.Generator | None = None
        self._pending_seed: int | None = None
        self.last_observation = ""
        self._tool_map = {tool.name: tool for tool in self.tools}

    # ----- hooks for families -------------------------------------------------------------------------
    def _generate(self, difficulty: float, params: dict[str, Any]) -> tuple[str, dict[str, Any], int]:
        """Build a task from `self.task_rng`; return (intro text, native params used, turn budget)."""
        raise NotImplementedError

    def _apply(self, call: Tool) -> StepOutcome:
        """Apply one validated tool call to the task state."""
        raise NotImplementedError

    def _text_form(self, text: str) -> ToolCall | None:
        """Parse this env's documented short text form (e.g. `move up`); None if it does not match."""
        return None

    def current_tools(self) -> tuple[type[Tool], ...]:
        """Tools accepted for the current task (a mixture env changes them per task)."""
        return self.tools

    def oracle_action(self) -> str:
        """The action text a perfect agent sends next from the current state (through the text interface)."""
        raise NotImplementedError(f"{type(self).__name__} has no oracle")

    def random_action(self, rng: np.random.Generator) -> str:
        """A uniformly random *well-formed* action (the fixed reference agent for calibration)."""
        raise NotImplementedError(f"{type(self).__name__} has no random agent")

    # ----- random number generators -----------------------------------------------------------------
    # Creating a NumPy generator costs ~20-30 us, more than a whole puzzle reset, so all three are made on
    # first use. They are exactly the generators gymnasium would make: `_np_random` from the last explicit
    # seed (it draws the seeds of unseeded resets), `task_rng`/`rng` from the task seed.
    @property  # type: ignore[override]
    def _np_random(self) -> np.random.Generator | None:
        if self._env_rng is None and self._pending_seed is not None:
            self._env_rng, self._np_random_seed = seeding.np_random(self._pending_seed)
            self._pending_seed = None
        return self._env_rng

    @_np_random.setter
    def _np_random(self, value: np.random.Generator | None) -> None:
        self._env_rng, self._pending_seed = value, None

    @property
    def task_rng(self) -> np.random.Generator:
        """NumPy generator for the current task (seeded by the task seed)."""
        if self._task_rng is None:
            self._task_rng = np.random.default_rng(self.task_seed)
        return self._task_rng

    @property
    def rng(self) -> random.Random:
        """Python generator for the current task: ~10x cheaper per draw than NumPy for scalar draws."""
        if self._rng is None:
            self._rng = random.Random(self.task_seed)
        return self._rng

    # ----- gymnasium API ------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict]:
        if seed is not None:
            self._env_rng, self._pending_seed = None, int(seed)
            self._np_random_seed = int(seed)
        opts = dict(options or {})
        difficulty = self._check_difficulty(opts.pop("difficulty", self.difficulty))
        params = {**self.param_overrides, **dict(opts.pop("params", None) or {}), **opts}
        task_seed = int(seed) if seed is not None else int(self.np_random.integers(0, 2**31 - 1))
        self.task_seed, self._task_rng, self._rng = task_seed, None, None
        self.turn = 0
        infra_error: str | None = None
        try:
            intro, used_params, budget = self._generate(difficulty, params)
        except InfraError as exc:  # the host failed before the task existed: flag it, never raise mid-rollout
            infra_error = str(exc)
            intro, used_params, budget = f"Infrastructure failure (not your fault): {exc}", dict(params), 1
        self.max_turns = int(self.max_turns_override or budget)
        self._tool_map = {tool.name: tool for tool in self.current_tools()}
        self.done = infra_error is not None
        self.task = TaskInfo(
            id=f"{self.env_id.split('/')[-1]}:{task_seed}:{difficulty:g}",
            env=f"{self.env_id}@{self.version}",
            seed=task_seed,
            difficulty=difficulty,
            params=used_params,
        )
        feedback = Feedback(summary=f"New task. You have {self.max_turns} turns.")
        self.last_observation = sanitize(intro)
        info = {
            "feedback": feedback.model_dump(),
            "tools": tool_schemas(self.current_tools()),
            "task": self.task.model_dump(),
            "infra_error": infra_error,
            "turn": 0,
            "max_turns": self.max_turns,
        }
        return self.last_observation, info

    def step(self, action: str) -> tuple[str, float, bool, bool, dict]:
        if self.done:
            feedback = Feedback(summary="The episode is over.", error="call reset() to start a new task")
            return (
                sanitize(feedback.render()),
                0.0,
                True,
                False,
                self._info(feedback, None, StepOutcome(feedback=feedback)),
            )
        self.turn += 1
        parsed = parse_action(action, self._tool_map, self._text_form, self.text_form_help)
        call: Tool | None = None
        if isinstance(parsed, ActionError):
            feedback = Feedback(
                summary="Invalid action; nothing happened (this cost a turn).",
                error=parsed.message,
                hint=f"Send {parsed.accepted}.",
            )
            outcome = StepOutcome(feedback=feedback)
        else:
            call = parsed
            try:
                outcome = self._apply(call)
            except InfraError as exc:
                feedback = Feedback(summary="Infrastructure failure (not your fault).", error=str(exc))
                outcome = StepOutcome(feedback=feedback, terminated=True, infra_error=str(exc))
        truncated = not outcome.terminated and self.turn >= self.max_turns
        feedback = outcome.feedback
        if truncated:
            feedback = feedback.model_copy(
                update={"summary": f"{feedback.summary} Turn budget of {self.max_turns} used up: episode over."}
            )
        self.done = outcome.terminated or truncated
        text = feedback.render() + (f"\n\n{outcome.state}" if outcome.state else "")
        self.last_observation = sanitize(text)
        return (
            self.last_observation,
            float(outcome.reward),
            bool(outcome.terminated),
            truncated,
            self._info(feedback, call, outcome),
        )

    def render(self) -> str | None:
        return self.last_observation if self.render_mode == "ansi" else None

    # ----- helpers ------------------------------------------------------------------------------------
    def _info(self, feedback: Feedback, call: Tool | None, outcome: StepOutcome) -> dict[str, Any]:
        return {
            "feedback": feedback.model_dump(),
            "reward_components": dict(outcome.reward_components),
            "solved": outcome.solved,
            "infra_error": outcome.infra_error,
            # always a dict ({} = no valid call): gymnasium's vector envs need one type per info key
            "tool_call": {} if call is None else {"name": call.name, "arguments": call.model_dump(mode="json")},
            "commands": list(outcome.commands),
            "turn": self.turn,
            "max_turns": self.max_turns,
        }

    @staticmethod
    def _check_difficulty(value: Any) -> float:
        try:
            d = float(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"difficulty must be a number in [0, 1], got {value!r}") from exc
        if not 0.0 <= d <= 1.0:
            raise ValueError(f"difficulty must be in [0, 1], got {d}")
        return d
