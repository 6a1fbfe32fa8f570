"""The parse memo (`TextEnv.memoize_parses`): a repeated action text reuses its validated call (one memo per class and
tool set). It must never change what a step returns, never share a mutable call, never outlive a tool-set change, and
stay bounded."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from pydantic import ConfigDict, ValidationError

from envgym import core
from envgym.actions import Tool
from envgym.core import Feedback, StepOutcome, TextEnv
from envgym.environments.puzzles.guess_number import Guess, GuessNumberEnv


class _Note(Tool):
    """Write a note."""

    model_config = ConfigDict(frozen=True)
    name: ClassVar[str] = "note"
    text: str


class _MutableNote(Tool):
    """Write a note (a mutable call: never memoised)."""

    name: ClassVar[str] = "note"
    text: str


def _memo(cls: type[TextEnv], tools: tuple[type[Tool], ...]) -> dict[str, Any]:
    return cls._parse_memos.get(tools, {})


class _NoteEnv(TextEnv):
    tools = (_Note,)
    memoize_parses = True

    def _generate(self, difficulty: float, params: dict[str, Any]) -> tuple[str, dict[str, Any], int]:
        return "Write notes.", {}, 100

    def _apply(self, call: Tool) -> StepOutcome:
        self.last_call = call
        return StepOutcome(feedback=Feedback(summary=f"noted {call.text!r}"))  # type: ignore[attr-defined]


def test_a_repeated_text_gives_the_same_step_and_a_frozen_call() -> None:
    env = _NoteEnv()
    env.reset(seed=0)
    action = '{"name": "note", "arguments": {"text": "hi"}}'
    first = env.step(action)
    call = env.last_call
    second = env.step(action)
    assert env.last_call is call  # reused, not re-parsed
    assert first[0] == second[0] and first[4]["tool_call"] == second[4]["tool_call"]
    with pytest.raises(ValidationError):
        call.text = "changed"  # type: ignore[attr-defined]
    second[4]["tool_call"]["arguments"]["text"] = "changed"  # the info holds a copy, not the shared call
    assert env.step(action)[4]["tool_call"]["arguments"] == {"text": "hi"}


def test_refusals_and_mutable_calls_are_never_memoised() -> None:
    env = _NoteEnv()
    env.reset(seed=0)
    env.step("garbage")
    env.step('{"name": "note", "arguments": {}}')
    assert "garbage" not in _memo(_NoteEnv, (_Note,))
    env._set_tools((_MutableNote,))
    env.step('{"name": "note", "arguments": {"text": "m"}}')
    assert '{"name": "note", "arguments": {"text": "m"}}' not in _memo(_NoteEnv, (_MutableNote,))


def test_a_memoised_call_is_not_used_once_the_tool_set_changes() -> None:
    env = _NoteEnv()
    env.reset(seed=0)
    action = '{"name": "note", "arguments": {"text": "x"}}'
    env.step(action)
    assert type(env.last_call) is _Note
    env._set_tools((_MutableNote,))  # e.g. a mixture's next family: the same name, another tool
    env.step(action)
    assert type(env.last_call) is _MutableNote


def test_the_memo_is_bounded_and_per_class(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(core, "_PARSE_MEMO_SIZE", 8)
    env = _NoteEnv()
    env.reset(seed=0)
    for i in range(30):
        env.step(f'{{"name": "note", "arguments": {{"text": "{i}"}}}}')
    assert 0 < len(_memo(_NoteEnv, (_Note,))) <= 8
    long_text = '{"name": "note", "arguments": {"text": "' + "y" * 2000 + '"}}'
    env.step(long_text)
    assert long_text not in _memo(_NoteEnv, (_Note,))
    assert _NoteEnv._parse_memos is not GuessNumberEnv._parse_memos is not TextEnv._parse_memos


def test_puzzle_tools_are_frozen_values() -> None:
    from envgym.registry import ENTRIES

    checked = 0
    for entry in ENTRIES:
        if entry.family == "puzzles" and entry.id != "envgym/Puzzle-v0":
            checked += 1
            cls: Any = entry.load_class()
            assert cls.memoize_parses
            assert all(core._frozen_tool(tool) for tool in cls.tools), entry.id
    assert checked >= 10
    assert Guess(number=3) == Guess(number=3) and hash(Guess(number=3)) == hash(Guess(number=3))
