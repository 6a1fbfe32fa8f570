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
