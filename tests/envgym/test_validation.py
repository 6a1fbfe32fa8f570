"""One-line pydantic errors: field paths, messages, a bound on how many, never the input values."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from envgym.validation import error_list, problems


class _Model(BaseModel):
    n: int
    name: str


def _error(data: object) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        _Model.model_validate(data)
    return caught.value


def test_fields_and_messages_on_one_line_without_values() -> None:
    exc = _error({"n": "SECRET" * 100})
    text = problems(exc)
    assert exc.error_count() == 2 and "SECRET" in str(exc)  # pydantic's own report echoes the value
    assert text.startswith("n: ") and "name: Field required" in text and "SECRET" not in text and "\n" not in text


def test_whole_input_errors_name_the_input_and_the_list_is_bounded() -> None:
    assert problems(_error("not an object"), where="record").startswith("record: ")
    errors = [{"loc": (f"f{i}",), "msg": "bad"} for i in range(20)]
    assert error_list(errors, limit=3) == ["f0: bad", "f1: bad", "f2: bad"]
    assert error_list([{"loc": ("x" * 100, 3), "msg": "m"}]) == [f"{'x' * 40}.3: m"]
