"""The contract every envgym environment implements: `TextEnv`, `Feedback`, and the step/reset rules.

Why a base class: the rules that make text envs trustworthy for RL (seeded tasks from the env's own RNG,
text spaces that always contain the observation, malformed actions turned into feedback that costs a turn,
turn budgets reported as `truncated`, infra failures flagged instead of scored) live in one place, so a
family only writes its generator, its rules and its solver.
"""

from __future__ import annotations

import dataclasses
import functools
import random
import time
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import gymnasium as gym
import numpy as np
from gymnasium.utils import seeding
from pydantic import BaseModel, Field

from envgym.actions import ActionError, Tool, ToolCall, parse_action
from envgym.text import RECURRING_MAX_CHARS, sanitize, sanitize_recurring_str, text_space

_Handler = TypeVar("_Handler", bound=Callable[..., Any])


class InfraError(RuntimeError):
    """The host or a sandbox failed (not the agent). Envs report it in `info["infra_error"]`."""


@dataclass(slots=True)
class Feedback:
    """What happened on a step, in words an agent can use. The observation text is rendered from it.

    A plain slotted dataclass, not a pydantic model: families build one or two per step, and validating
    trusted strings cost more than the rest of a cheap family's step. `info["feedback"]` is `model_dump()`.
    """

    summary: str  # one line: what happened
    details: str | None = None  # test failures, tracebacks, rule violations
    error: str | None = None  # set when the action was malformed or not allowed
    hint: str | None = None  # a nudge, where the difficulty allows one

    def render(self) -> str:
        if not self.error and not self.details:  # the common shapes (every step renders): no list, no join
            return f"{self.summary}\nHint: {self.hint}" if self.hint else self.summary
        parts = [self.summary]
        if self.error:
            parts.append(f"Error: {self.error}")
        if self.details:
            parts.append(self.details)
        if self.hint:
            parts.append(f"Hint: {self.hint}")
        return "\n".join(parts)

    def model_dump(self) -> dict[str, str | None]:
        """The wire shape of `info["feedback"]` (the name pydantic callers already use)."""
        return {"summary": self.summary, "details": self.details, "error": self.error, "hint": self.hint}


@dataclass(slots=True)
class StepOutcome:
    """What a family's rules return for one well-formed tool call."""

    feedback: Feedback
    state: str | None = None  # the current view (board, listing), shown after feedback
    reward: float = 0.0
    terminated: bool = False
    solved: bool = False
    # None: none (the step path builds every info dict fresh, so an outcome need not make empty ones)
    reward_components: dict[str, float] | None = None
    commands: list[dict[str, Any]] | None = None  # sandbox commands run this step
    infra_error: str | None = None


class TaskInfo(BaseModel):
    """Identifies a task exactly: `env` + `seed` + `difficulty` + `params` regenerate it bit for bit.

    The boundary model of `info["task"]` (records, wire formats); the step path builds the dict directly.
    """

    id: str
    env: str = Field(description="env_id@version")
    seed: int
    difficulty: float
    params: dict[str, Any] = Field(default_factory=dict)


class _FrozenDict(dict):  # type: ignore[type-arg]
    """A dict nobody can change in place: the one copy of a tool schema every reset hands out."""

    def _refuse(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("tool schemas are shared and read-only; copy.deepcopy() one to change it")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = __ior__ = _refuse  # type: ignore[assignment]

    def __reduce__(self) -> tuple[Any, ...]:
        return (_FrozenDict, (dict(self),))

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, Any]:
        import copy

        return {k: copy.deepcopy(v, memo) for k, v in self.items()}


class _FrozenList(list):  # type: ignore[type-arg]
    """A list nobody can change in place (see `_FrozenDict`)."""

    def _refuse(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("tool schemas are shared and read-only; copy.deepcopy() them to change them")

    __setitem__ = __delitem__ = append = extend = insert = pop = remove = clear = sort = reverse = _refuse  # type: ignore[assignment]
    __iadd__ = __imul__ = _refuse  # type: ignore[assignment]

    def __reduce__(self) -> tuple[Any, ...]:
        return (_FrozenList, (list(self),))

    def __deepcopy__(self, memo: dict[int, Any]) -> list[Any]:
        import copy

        return [copy.deepcopy(v, memo) for v in self]


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return _FrozenDict({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return _FrozenList(_freeze(v) for v in value)
    return value


@functools.cache
def _env_tags(env_id: str, version: str) -> tuple[str, str]:
    """(short name for task ids, `env_id@version`), formatted once per env."""
    return env_id.rpartition("/")[2], f"{env_id}@{version}"


_PARSE_MEMO_SIZE = 4096  # action texts remembered per env class
_MEMO_TEXT_CHARS = 1_000  # longer texts are parsed every time (and never kept alive by the table)


@functools.cache
def _frozen_tool(tool: type) -> bool:
    return bool(getattr(tool, "model_config", {}).get("frozen"))


@functools.lru_cache(maxsize=256)
def _difficulty_text(difficulty: float) -> str:
    return f"{difficulty:g}"


@functools.cache
def frozen_tool_schemas(tools: tuple[type[Tool], ...]) -> list[dict[str, Any]]:
    """The OpenAI schemas of `tools`, built once per tool set and shared read-only (`info["tools"]`)."""
    return _freeze([tool.schema_dict() for tool in tools])  # type: ignore[no-any-return]


def handles(*tools: type[Tool]) -> Callable[[_Handler], _Handler]:
    """Mark a method as the rules for these tools: `TextEnv._dispatch` finds it by the call's name (a table
    built once per class), so a family never writes an `isinstance` chain over its tools."""

    def mark(method: _Handler) -> _Handler:
        method._handles = tuple(tool.name for tool in tools)  # type: ignore[attr-defined]
        return method

    return mark


_JSON_SCALARS = (int, str, float, bool)


@functools.cache
def _plain_fields(tool: type[Tool]) -> bool:
    """Whether every argument of `tool` is a JSON scalar, so its field values already are its JSON dump."""

    def plain(annotation: Any) -> bool:
        if typing.get_origin(annotation) is typing.Literal:
            return all(type(arg) in _JSON_SCALARS for arg in typing.get_args(annotation))
        return annotation in _JSON_SCALARS

    return all(plain(field.annotation) for field in tool.model_fields.values())


def call_arguments(call: Tool) -> dict[str, Any]:
    """A validated call's arguments as JSON values (`info["tool_call"]["arguments"]`), without a pydantic
    serialisation pass for the common all-scalar tools."""
    if _plain_fields(type(call)):
        return dict(call.__dict__)
    return call.model_dump(mode="json")


class TextEnv(gym.Env[str, str]):
    """A multi-turn text environment: observations and actions are strings, rewards are verifiable outcomes.

    Subclasses implement `_generate` (build a task from `self.rng` / `self.task_rng`), `_apply` (the rules for
    one tool call) and, where they can, `oracle_action` and `random_action` (reference agents).

    `reset(seed=None, options=None) -> (observation, info)`; options: `difficulty` (float in [0, 1]),
    `params` (the family's native parameters) or those parameters directly. `step(action) -> (observation,
    reward, terminated, truncated, info)`. Every info key has one type on every call (gymnasium's vector envs
    merge infos by key), reset and step alike:

    - `feedback` (dict): `summary` (one line), `details`, `error` (set for a malformed or refused action),
      `hint` (str or None each); the observation text is rendered from it.
    - `infra_error` (str or None): the host or a sandbox failed, not the agent; drop such episodes.
    - `turn`, `max_turns` (int): turns used and the turn budget; `truncated` is set when it runs out (or the
      wall-clock budget `time_budget_s`, where an env sets one).
    - on reset: `tools` (list of OpenAI function schemas, shared and read-only) and `task` (dict: `id`, `env`
      as `env_id@version`, `seed`, `difficulty`, `params`: exactly what regenerates the task).
    - on step: `tool_call` (dict: `name`, `arguments`; `{}` when the action was not a valid call),
      `reward_components` (dict of floats: per-step parts of the reward), `solved` (bool), `commands`
      (list of sandbox command records run this step).
    Envs may add keys of their own (e.g. `sandbox`, `patch`), with the same one-type rule.
    """

    env_id: ClassVar[str] = "envgym/Text-v0"
    version: ClassVar[str] = "0"
    tools: ClassVar[tuple[type[Tool], ...]] = ()
    text_form_help: ClassVar[str] = ""
    default_difficulty: ClassVar[float] = 0.5
    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi"], "render_fps": 1}  # type: ignore[misc]
    # the class of `self.rng`: a family that switches (e.g. to envgym.taskrng.CounterRandom, ~10 µs cheaper per
    # reset) changes its task stream, so it must bump `version` too
    rng_class: ClassVar[type[random.Random]] = random.Random
    time_budget_s: float | None = None  # wall-clock budget of an episode (None: turns only)
    # A family whose `_text_form` is a pure function of the text and whose tools are frozen (immutable values)
    # may reuse parses: the same action text always gives the same call, so a bounded per-class table maps
    # texts seen before to their validated call (parsing and validating cost about half of a small step).
    memoize_parses: ClassVar[bool] = False
    # A family whose observations recur (the same intros, boards and feedback lines across episodes) checks each
    # distinct text once: `sanitize_recurring`'s bounded table instead of a scan per observation.
    recurring_texts: ClassVar[bool] = False
    # one parse memo per tool set (a mixture changes tools per task): action text -> (call, its info["tool_call"]
    # name and arguments), so a hit needs no check that the call belongs to the current tools
    _parse_memos: ClassVar[dict[tuple[type[Tool], ...], dict[str, tuple[Tool, str, dict[str, Any] | None]]]] = {}
    _handlers: ClassVar[dict[str, str]] = {}  # tool name -> method name, from @handles (inherited, overridable)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        table = dict(cls._handlers)
        for attr, value in vars(cls).items():
            for name in getattr(value, "_handles", ()):
                table[name] = attr
        cls._handlers = table
        cls._parse_memos = {}  # per class: tool names mean different tools in different families

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
        self._task: dict[str, Any] | None = None
        self.task_seed = 0
        self._task_rng: np.random.Generator | None = None
        self._rng: random.Random | None = None
        self._env_rng: np.random.Generator | None = None
        self._pending_seed: int | None = None
        self._sandbox: Any = None
        self._episode_started = 0.0
        self.last_observation = ""
        self._tool_set: tuple[type[Tool], ...] = ()
        self._tool_map: dict[str, type[Tool]] = {}
        self._memo: dict[str, tuple[Tool, str, dict[str, Any] | None]] | None = None
        self._set_tools(self.tools)
        self._tags = ("", "", "", "")  # (env_id, version, short name for task ids, env_id@version)

    # ----- hooks for families -------------------------------------------------------------------------
    def _generate(self, difficulty: float, params: dict[str, Any]) -> tuple[str, dict[str, Any], int]:
        """Build a task from `self.rng` / `self.task_rng`; return (intro text, native params used, turn budget)."""
        raise NotImplementedError

    def _apply(self, call: Tool) -> StepOutcome:
        """Apply one validated tool call to the task state (by default: the method marked `@handles` for it)."""
        return self._dispatch(call)

    def _dispatch(self, call: Tool) -> StepOutcome:
        method = self._handlers.get(call.name)
        if method is None:
            raise NotImplementedError(f"{type(self).__name__} has no @handles method for tool {call.name!r}")
        return getattr(self, method)(call)  # type: ignore[no-any-return]

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

    @property
    def sandbox(self) -> Any:
        """The sandbox this env's commands run in (None for envs that run none); replay and the fleet use it."""
        return self._sandbox

    @sandbox.setter
    def sandbox(self, value: Any) -> None:
        self._sandbox = value

    @property
    def task(self) -> TaskInfo | None:
        """The current task as its boundary model (built on demand; `info["task"]` is its dict)."""
        if self._task is None:
            return None
        return TaskInfo.model_construct(**{**self._task, "params": dict(self._task["params"])})

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
        """Python generator for the current task (`rng_class` seeded by the task seed): ~10x cheaper per draw
        than NumPy for scalar draws."""
        if self._rng is None:
            self._rng = self.rng_class(self.task_seed)
        return self._rng

    # ----- gymnasium API ------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict]:
        if seed is not None:
            if seed.__class__ is not int:
                seed = int(seed)
            self._env_rng, self._pending_seed, self._np_random_seed = None, seed, seed
        if options:
            opts = dict(options)
            difficulty = self._check_difficulty(opts.pop("difficulty", self.difficulty))
            params = {**self.param_overrides, **dict(opts.pop("params", None) or {}), **opts}
        else:
            difficulty, params = self.difficulty, self.param_overrides.copy()
        task_seed = seed if seed is not None else int(self.np_random.integers(0, 2**31 - 1))
        self.task_seed, self._task_rng, self._rng = task_seed, None, None
        self.turn = 0
        infra_error: str | None = None
        try:
            intro, used_params, budget = self._generate(difficulty, params)
        except InfraError as exc:  # the host failed before the task existed: flag it, never raise mid-rollout
            infra_error = str(exc)
            intro, used_params, budget = f"Infrastructure failure (not your fault): {exc}", dict(params), 1
        max_turns = self.max_turns_override or budget
        self.max_turns = max_turns = max_turns if max_turns.__class__ is int else int(max_turns)
        tools = self.current_tools()
        if tools is not self._tool_set:
            self._set_tools(tools)
        self.done = infra_error is not None
        if self.time_budget_s is not None:
            self._episode_started = time.monotonic()
        tags = self._tags
        if tags[0] is not self.env_id or tags[1] is not self.version:  # formatted once per env
            self._tags = tags = (
                self.env_id,
                self.version,
                self.env_id.rpartition("/")[2],
                f"{self.env_id}@{self.version}",
            )
        self._task = {
            "id": f"{tags[2]}:{task_seed}:{_difficulty_text(difficulty)}",
            "env": tags[3],
            "seed": task_seed,
            "difficulty": difficulty,
            "params": used_params,  # ours: never handed out (a family may share it between tasks)
        }
        task = self._task.copy()  # the caller's copy, params included: info must not alias our state
        task["params"] = used_params.copy()
        self.last_observation = self._clean(intro)
        info = {
            "feedback": {
                "summary": f"New task. You have {max_turns} turns.",
                "details": None,
                "error": None,
                "hint": None,
            },
            "tools": self._schemas if self._schemas is not None else self._tool_schemas(tools),
            "task": task,
            "infra_error": infra_error,
            "turn": 0,
            "max_turns": max_turns,
        }
        return self.last_observation, info

    def step(self, action: str) -> tuple[str, float, bool, bool, dict]:
        if self.done:
            feedback = Feedback(summary="The episode is over.", error="call reset() to start a new task")
            return self._finish(StepOutcome(feedback=feedback, terminated=True), None, False, remember=False)
        self.turn = turn = self.turn + 1
        memo = self._memo
        parsed: Any = memo.get(action) if memo is not None and action.__class__ is str else None
        if parsed is None:
            parsed = self._parse(action)
        if parsed.__class__ is ActionError:  # not isinstance: pydantic's metaclass check costs ~0.3 µs
            feedback = Feedback(
                summary="Invalid action; nothing happened (this cost a turn).",
                error=parsed.message,
                hint=f"Send {parsed.accepted}.",
            )
            outcome = StepOutcome(feedback=feedback)
            parsed = None
        else:
            try:
                outcome = self._apply(parsed[0])
            except InfraError as exc:
                feedback = Feedback(summary="Infrastructure failure (not your fault).", error=str(exc))
                outcome = StepOutcome(feedback=feedback, terminated=True, infra_error=str(exc))
        terminated = outcome.terminated
        truncated = False
        if not terminated:
            if turn >= self.max_turns:
                truncated = True
                note = f" Turn budget of {self.max_turns} used up: episode over."
            elif self.time_budget_s is not None and time.monotonic() - self._episode_started > self.time_budget_s:
                truncated = True
                note = f" Wall-clock budget of {self.time_budget_s:g} s used up: episode over."
            if truncated:  # the last step only: no fast path needed
                outcome.feedback = dataclasses.replace(outcome.feedback, summary=outcome.feedback.summary + note)
        self.done = bool(terminated) or truncated
        return self._finish(outcome, parsed, truncated)

    def _parse(self, action: str) -> tuple[Tool, str, dict[str, Any] | None] | ActionError:
        """The action's call as (call, name, plain arguments or None), kept in the memo where that is allowed."""
        parsed = parse_action(action, self._tool_map, self._text_form, self.text_form_help)
        if parsed.__class__ is ActionError:
            return parsed  # type: ignore[return-value]
        call: Tool = parsed  # type: ignore[assignment]
        entry = (call, call.name, call.__dict__.copy() if _plain_fields(call.__class__) else None)
        memo = self._memo
        if (
            memo is not None
            and action.__class__ is str
            and len(action) <= _MEMO_TEXT_CHARS
            and _frozen_tool(call.__class__)  # shared between steps: only immutable calls
        ):
            if len(memo) >= _PARSE_MEMO_SIZE:
                memo.clear()
            memo[action] = entry
        return entry

    def _clean(self, text: str) -> str:
        """`text` inside the observation space (a recurring-text family's texts through the bounded table)."""
        if self.recurring_texts and text.__class__ is str and len(text) <= RECURRING_MAX_CHARS:
            return sanitize_recurring_str(text)  # type: ignore[no-any-return]
        return sanitize(text)

    def render(self) -> str | None:
        return self.last_observation if self.render_mode == "ansi" else None

    # ----- helpers ------------------------------------------------------------------------------------
    def _finish(
        self,
        outcome: StepOutcome,
        call: tuple[Tool, str, dict[str, Any] | None] | None,
        truncated: bool,
        remember: bool = True,
    ) -> tuple[str, float, bool, bool, dict]:
        """The step's return value: the observation rendered from the feedback (and state), and the info."""
        feedback = outcome.feedback
        text = feedback.render()  # its common shapes take a fast path of their own
        state = outcome.state
        if state:
            text = f"{text}\n\n{state}"
        if self.recurring_texts and text.__class__ is str and len(text) <= RECURRING_MAX_CHARS:
            observation = sanitize_recurring_str(text)  # `_clean`, without its frame (every step)
        else:
            observation = sanitize(text)
        if remember:
            self.last_observation = observation
        if call is None:
            tool_call: dict[str, Any] = {}  # always a dict: gymnasium's vector envs need one type per info key
        else:
            arguments = call[2]
            tool_call = {
                "name": call[1],
                "arguments": arguments.copy() if arguments is not None else call[0].model_dump(mode="json"),
            }
        components, commands, reward, terminated = (
            outcome.reward_components,
            outcome.commands,
            outcome.reward,
            outcome.terminated,
        )
        info = {
            "feedback": {
                "summary": feedback.summary,
                "details": feedback.details,
                "error": feedback.error,
                "hint": feedback.hint,
            },
            "reward_components": dict(components) if components else {},
            "solved": outcome.solved,
            "infra_error": outcome.infra_error,
            "tool_call": tool_call,
            "commands": list(commands) if commands else [],
            "turn": self.turn,
            "max_turns": self.max_turns,
        }
        return (
            observation,
            reward if reward.__class__ is float else float(reward),
            terminated if terminated.__class__ is bool else bool(terminated),
            truncated,
            info,
        )

    def _set_tools(self, tools: tuple[type[Tool], ...]) -> None:
        self._tool_set, self._tool_map = tools, {tool.name: tool for tool in tools}
        self._schemas: list[dict[str, Any]] | None = None  # built at the first reset that hands them out
        # the memo of this tool set: a call parsed under these tools is valid under them (bounded in `_parse`)
        self._memo = self._parse_memos.setdefault(tools, {}) if self.memoize_parses else None

    def _tool_schemas(self, tools: tuple[type[Tool], ...]) -> list[dict[str, Any]]:
        self._schemas = schemas = frozen_tool_schemas(tools)
        return schemas

    @staticmethod
    def _check_difficulty(value: Any) -> float:
        try:
            d = float(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"difficulty must be a number in [0, 1], got {value!r}") from exc
        if not 0.0 <= d <= 1.0:
            raise ValueError(f"difficulty must be in [0, 1], got {d}")
        return d
