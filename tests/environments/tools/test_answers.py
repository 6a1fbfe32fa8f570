"""Answer normalisation: the variants agents write are accepted, wrong answers are not."""

from __future__ import annotations

import pytest

from envgym.environments.tools.answers import Expected, format_number, is_correct, split_items


@pytest.mark.parametrize("given", [42, 42.0, "42", " 42. ", "42.0000001", "the answer is 42", "$42", [42]])
def test_numbers_match_within_tolerance(given: object) -> None:
    assert is_correct(Expected(kind="number", value=42.0, abs_tol=1e-6), given)  # type: ignore[arg-type]


@pytest.mark.parametrize("given", [41, "43", "42 or 43", "", "nan", True, [1, 2]])
def test_wrong_numbers_fail(given: object) -> None:
    assert not is_correct(Expected(kind="number", value=42.0), given)  # type: ignore[arg-type]


def test_rounded_numbers_use_the_stated_tolerance() -> None:
    expected = Expected(kind="number", value=2549.4, abs_tol=0.005)
    assert is_correct(expected, "2,549.40") and not is_correct(expected, "2549.41")


@pytest.mark.parametrize("given", ["Paris", " paris. ", '"PARIS"', "`Paris`", ["Paris"]])
def test_text_ignores_case_whitespace_quotes(given: object) -> None:
    assert is_correct(Expected(kind="text", value="Paris"), given)  # type: ignore[arg-type]


@pytest.mark.parametrize("given", ["b, a", ["A", "b"], '["a", "b"]', "a;b", "a\nb", " B ,a "])
def test_sets_are_unordered(given: object) -> None:
    assert is_correct(Expected(kind="set", value=["a", "b"]), given)  # type: ignore[arg-type]


@pytest.mark.parametrize("given", ["a", "a, b, c", ["a"], ""])
def test_sets_must_match_exactly(given: object) -> None:
    assert not is_correct(Expected(kind="set", value=["a", "b"]), given)  # type: ignore[arg-type]


def test_helpers() -> None:
    assert split_items("[1, 2]") == ["1", "2"]
    assert format_number(3.0) == "3" and format_number(2549.4) == "2549.4" and format_number(1e20) == "1e+20"


def test_big_integers_are_exact() -> None:
    big = 123456789012345678901234567
    expected = Expected(kind="number", value=big)
    assert is_correct(expected, str(big)) and is_correct(expected, big) and is_correct(expected, f"{big:,}")
    assert not is_correct(expected, str(big + 1)) and not is_correct(expected, float(big))
    assert expected.display() == str(big)
    assert is_correct(Expected(kind="number", value=42), "42.0") and not is_correct(
        Expected(kind="number", value=42), 43
    )
