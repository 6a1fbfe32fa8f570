import json
from typing import ClassVar

import pytest
from pydantic import Field

from envgym.actions import ActionError, Tool, ToolCall, parse_action


class Move(Tool):
    """Move one step."""

    name: ClassVar[str] = "move"
    direction: str = Field(description="up/down/left/right")
    steps: int = 1


TOOLS = {"move": Move}


def text_form(text: str) -> ToolCall | None:
    return ToolCall(name="move", arguments={"direction": text}) if text in {"up", "down"} else None


@pytest.mark.parametrize(
    "text",
    [
        '{"name": "move", "arguments": {"direction": "up"}}',
        'I will go up.\n```json\n{"name": "move", "arguments": {"direction": "up"}}\n```',
        '<tool_call>{"name": "move", "arguments": {"direction": "up"}}</tool_call>',
        '{"type": "function", "function": {"name": "move", "arguments": "{\\"direction\\": \\"up\\"}"}}',
        'sure: {"name": "move", "arguments": {"direction": "up"}} done',
        "up",
    ],
)
def test_accepted_forms(text: str) -> None:
    call = parse_action(text, TOOLS, text_form, "up or down")
    assert isinstance(call, Move)
    assert call.direction == "up" and call.steps == 1


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("   \n", "empty"),
        ("{not json", "invalid JSON"),
        ('{"name": "move", "arguments": {"direction": "up"', "invalid JSON"),
        ('{"name": "fly", "arguments": {}}', "unknown tool 'fly'"),
        ('{"name": "move", "arguments": {"steps": "many"}}', "direction: Field required"),
        ('{"name": "move", "arguments": {"direction": "up", "speed": 3}}', "speed"),
        ('{"name": "move", "arguments": [1, 2]}', "must be a JSON object"),
        ('{"arguments": {}}', 'no "name"'),
        ("x" * 200_000, "limit"),
    ],
)
def test_rejected_forms_explain_themselves(text: str, fragment: str) -> None:
    result = parse_action(text, TOOLS, text_form, "up or down")
    assert isinstance(result, ActionError)
    assert fragment in result.message
    assert "move" in result.accepted


def test_schema_is_an_openai_function() -> None:
    schema = Move.schema_dict()
    assert schema["type"] == "function"
    fn = schema["function"]
    assert fn["name"] == "move" and fn["description"] == "Move one step."
    assert fn["parameters"]["required"] == ["direction"]
    assert fn["parameters"]["properties"]["direction"]["type"] == "string"
    assert fn["parameters"]["additionalProperties"] is False
    assert json.loads(Move(direction="up").to_action()) == {
        "name": "move",
        "arguments": {"direction": "up", "steps": 1},
    }


# ----- totality: hostile inputs give an ActionError, never an exception ------------------------------------------
DEEP = '{"name": "move", "arguments": {"direction": "up", "x": ' + "[" * 2000 + "]" * 2000 + "}}"
HUGE_INT = '{"name": "move", "arguments": {"direction": "up", "steps": ' + "9" * 5000 + "}}"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (DEEP, "deeper than"),
        ("[" * 3000, "no tool call"),
        ("{" * 3000, "deeper than"),
        (HUGE_INT, "5000 digits"),
        ('{"name": "move", "arguments": {"direction": "up", "steps": ' + "9" * 1001 + "}}", "1001 digits"),
        ('{"name": "move", "arguments": {"direction": "up", "steps": 1e999}}', "too large"),
        ('{"name": "move", "arguments": {"direction": "up", "steps": -Infinity}}', "-Infinity is not a JSON number"),
        ('{"name": "move", "arguments": {"direction": "up", "steps": NaN}}', "NaN is not a JSON number"),
        ('{"name": "move", "arguments": {"direction": "\\ud800"}}', "lone surrogate"),
        ('{"name": "move", "arguments": {"\\udfff": 1}}', "lone surrogate"),
        ("up\ud800", "lone surrogate"),
        ("9" * 5000, "more than 1000 digits"),
        ("```json\n" + '{"a": ' * 500 + "\n```", "deeper than"),
        ("<tool_call>" + '{"a":' * 100 + "</tool_call>", "deeper than"),
        (
            '{"type": "function", "function": {"name": "move", "arguments": "' + "[" * 2000 + '"}}',
            "deeper than",
        ),
        (
            '{"type": "function", "function": {"name": "move", "arguments": "{\\"steps\\": ' + "7" * 5000 + '}"}}',
            "5000 digits",
        ),
        ('{"name": "move", "arguments": {"direction": "up", "' + "k" * 50_000 + '": 1}}', "bad arguments"),
        ('{"name": "' + "n" * 90_000 + '"}', "unknown tool"),
    ],
)
def test_hostile_actions_are_refused_with_feedback(text: str, fragment: str) -> None:
    result = parse_action(text, TOOLS, text_form, "up or down")
    assert isinstance(result, ActionError), result
    assert fragment in result.message
    assert len(result.message) <= 600


def test_float_arguments_refuse_nan_and_infinity_given_as_strings() -> None:
    class Scale(Tool):
        """Scale by a factor."""

        name: ClassVar[str] = "scale"
        factor: float

    for text in ("nan", "inf", "-Infinity"):
        result = parse_action(json.dumps({"name": "scale", "arguments": {"factor": text}}), {"scale": Scale})
        assert isinstance(result, ActionError) and "factor" in result.message
    ok = parse_action('{"name": "scale", "arguments": {"factor": 2.5}}', {"scale": Scale})
    assert isinstance(ok, Scale) and ok.factor == 2.5


def test_a_text_form_that_raises_gives_feedback() -> None:
    def fragile(text: str) -> ToolCall | None:
        return ToolCall(name="move", arguments={"direction": "up", "steps": int(text)})

    result = parse_action("twelve", TOOLS, fragile, "a number")
    assert isinstance(result, ActionError) and "could not read the action" in result.message
    assert isinstance(parse_action("3", TOOLS, fragile, "a number"), Move)


def test_bounds_do_not_reject_ordinary_calls() -> None:
    big = parse_action(json.dumps({"name": "move", "arguments": {"direction": "up", "steps": 10**999}}), TOOLS)
    assert big == Move(direction="up", steps=10**999)  # 1,000 digits: at the limit, accepted
    deep_in_text = '{"name": "move", "arguments": {"direction": "' + "[" * 500 + '"}}'
    call = parse_action(deep_in_text, TOOLS)  # brackets inside a string are not nesting
    assert isinstance(call, Move) and call.direction == "[" * 500
    unicode = parse_action('{"name": "move", "arguments": {"direction": "h\\u00e9 \\ud83d\\ude00"}}', TOOLS)
    assert isinstance(unicode, Move) and unicode.direction == "hé 😀"


def test_load_json_bounded_is_shared_and_raises_only_value_errors() -> None:
    from envgym.actions import JSONLimitError, json_depth_exceeds, load_json_bounded

    assert load_json_bounded('{"a": [1, 2.5, "x"]}') == {"a": [1, 2.5, "x"]}
    assert json_depth_exceeds("[" * 33) and not json_depth_exceeds("[" * 32)
    assert not json_depth_exceeds('"' + "[" * 100 + '"')
    for bad in ("[" * 5000, "1" * 5000, "NaN", "1e400", '"\\udc00"'):
        with pytest.raises(JSONLimitError):
            load_json_bounded(bad)
    with pytest.raises(json.JSONDecodeError):
        load_json_bounded("{oops")


class _Text(str):
    """A str subclass: `parse_action` skips its fast paths for it and runs the full parser."""


def _bounded_form(text: str) -> ToolCall | None:
    if text == "boom":
        raise ValueError("no such move")
    if text.startswith("steps "):
        return ToolCall(name="move", arguments={"direction": "up", "steps": text[6:]})
    return text_form(text)


@pytest.mark.parametrize(
    "text",
    [
        '{"name": "move", "arguments": {"direction": "up"}}',
        '{"name": "move", "arguments": {"direction": "up", "steps": 3}}',
        '{"name": "move", "arguments": {"direction": "up", "steps": "3"}}',  # lax int: the same coercion
        '{"name": "move", "arguments": {"direction": "up", "steps": 1.5}}',
        '{"name": "move", "arguments": {"direction": "up", "bogus": 1}}',
        '{"name": "move", "arguments": {}}',
        '{"name": "jump", "arguments": {"direction": "up"}}',
        '{"name": "move", "arguments": {"direction": "up"}} trailing',
        '{"name": "move", "arguments": {"direction": "up"}}}',
        '{"name": "move", "arguments": {"direction": "\\ud800"}}',
        '{"name": "move", "arguments": {"direction": "up"}, "extra": 1}',
        '{"name": 3, "arguments": {"direction": "up"}}',
        '{"name": "move", "arguments": "{\\"direction\\": \\"up\\"}"}',
        '{"name": "move", "arguments": {"direction": "up", "steps": NaN}}',
        '{"name": "move", "arguments": {"direction": "```"}}',
        '{"name": "move", "arguments": {"direction": "' + "[" * 40 + '"}}',
        '{"name": "move", "arguments": {"direction": "up", "steps": ' + "9" * 1200 + "}}",
        "{" * 50 + "}" * 50,
        "{",
        "{}",
        "up",
        "  up  ",
        "down",
        "left",
        "boom",
        "steps 4",
        "steps x",
        "steps " + "9" * 1100,
        "",
        "   ",
        "ü up",
        "up \ud800",
    ],
)
def test_fast_paths_answer_exactly_like_the_full_parser(text: str) -> None:
    fast = parse_action(text, TOOLS, _bounded_form, "up or down")
    full = parse_action(_Text(text), TOOLS, _bounded_form, "up or down")
    assert type(fast) is type(full)
    assert fast == full
