"""Task schema (SWE-bench shapes), patch filtering and statements (no Docker)."""

from __future__ import annotations

import json
from pathlib import Path

from envgym.environments.swe.grading import diff_trees, filter_patch, split_diff
from envgym.environments.swe.recipes import RECIPES, is_allowed_source, is_test_infra
from envgym.environments.swe.schema import SWETask, read_jsonl, read_predictions, write_jsonl


def test_swebench_json_encoded_lists_and_roundtrip(tmp_path: Path, minimal_task: SWETask) -> None:
    task = minimal_task
    assert task.FAIL_TO_PASS == ["tests/test_a.py::test_x"]
    write_jsonl(tmp_path / "t.jsonl", [task])
    assert read_jsonl(tmp_path / "t.jsonl") == [task]


def test_predictions_in_all_swebench_shapes(tmp_path: Path) -> None:
    pred = {"instance_id": "a", "model_name_or_path": "m", "model_patch": "diff"}
    (tmp_path / "p.jsonl").write_text(json.dumps(pred) + "\n")
    (tmp_path / "p.json").write_text(json.dumps([pred]))
    (tmp_path / "d.json").write_text(json.dumps({"a": {"model_name_or_path": "m", "model_patch": "diff"}}))
    for name in ("p.jsonl", "p.json", "d.json"):
        assert read_predictions(tmp_path / name)[0].instance_id == "a"


def test_test_infrastructure_is_never_agent_editable() -> None:
    for path in ["tests/test_a.py", "pkg/conftest.py", "conftest.py", "pytest.ini", "setup.cfg", "tox.ini",
                 "pyproject.toml", "pkg/tests/helper.py", "sitecustomize.py", "x.pth", "pkg/test_util.py"]:  # fmt: skip
        assert is_test_infra(path) or not is_allowed_source(path, ["pkg"], ["tests"]), path
        assert not is_allowed_source(path, ["pkg"], ["tests"]), path
    assert is_allowed_source("pkg/core.py", ["pkg"], ["tests"])
    assert not is_allowed_source("other/core.py", ["pkg"], ["tests"])
    assert not is_allowed_source("../pkg/core.py", ["pkg"], ["tests"])
    assert RECIPES["toolz"].is_test_path("toolz/tests/test_itertoolz.py")


def test_filter_patch_keeps_only_library_source(minimal_task: SWETask) -> None:
    task = minimal_task
    patch = diff_trees(
        {"pkg/a.py": "x = 1\n", "tests/test_a.py": "assert 0\n"},
        {"pkg/a.py": "x = 2\n", "tests/test_a.py": "assert 1\n", "pkg/conftest.py": "import pytest\n"},
    )
    assert len(split_diff(patch)) == 3
    kept, dropped = filter_patch(patch, task)
    assert "pkg/a.py" in kept and "test_a" not in kept and "conftest" not in kept
    assert dropped == ["pkg/conftest.py", "tests/test_a.py"]


def test_statements_hide_what_the_level_hides() -> None:
    from envgym.environments.swe.statements import extract_example, write_statement
    from envgym.environments.swe.testrun import TestOutcome

    text = (  # pytest's long format: each frame's source, then its location line
        "def test_x():\n>       assert pkg.core.add(2, 3) == 5\n\ntests/test_a.py:5: \n_ _ _ _\n\n"
        "    def add(a, b):\n>       return a - b\nE       assert -1 == 5\n\npkg/core.py:10: AssertionError"
    )
    example = extract_example("tests/test_a.py::test_x", TestOutcome(status="failed", text=text), "tests/test_a.py")
    assert example.call == ["assert pkg.core.add(2, 3) == 5"]
    assert "return a - b" not in example.error  # library source never leaks into the report
    low = write_statement("pkg", "1.0", [example], 1, ["pkg/core.py"], hint_level=0)
    high = write_statement("pkg", "1.0", [example], 1, ["pkg/core.py"], hint_level=3)
    assert "tests/test_a.py::test_x" in low and "pkg/core.py" in low
    assert "tests/test_a.py" not in high and "pkg/core.py" not in high
    assert "pkg.core.add(2, 3)" in high and "-1 == 5" in high


def test_bundled_suite_shape() -> None:
    from envgym.environments.swe.env import load_tasks

    tasks = load_tasks(None)
    assert len({t.project for t in tasks}) >= 5
    assert len(tasks) >= 100
    assert len({t.instance_id for t in tasks}) == len(tasks)
    for task in tasks:
        assert task.FAIL_TO_PASS and task.PASS_TO_PASS and task.patch and task.bug_patch
        assert not set(task.FAIL_TO_PASS) & set(task.PASS_TO_PASS)
        for mutation in task.mutations:  # the report never quotes the planted code
            assert mutation.mutated.strip() not in task.problem_statement or len(mutation.mutated.strip()) < 12
