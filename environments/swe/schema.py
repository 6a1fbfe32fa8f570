"""SWE task records in SWE-bench's shapes, plus the envgym fields that make a task runnable offline.

Why SWE-bench's shapes: external instances (SWE-bench, SWE-smith, hand-made ones) load without conversion, and
our predictions and reports can be read by tools that already speak that format. The JSON-encoded string lists
that Hugging Face uses for FAIL_TO_PASS / PASS_TO_PASS are accepted on input; we write real lists.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from envgym.environments.swe.patches import read_patch


class MutationRecord(BaseModel):
    """One applied mutation: where, which operator, and the exact text it replaced (never shown to agents)."""

    operator: str
    file: str
    line: int
    original: str
    mutated: str
    subtlety: float = Field(ge=0.0, le=1.0, description="how hard the operator is to spot, 0 obvious .. 1 subtle")


class SWETask(BaseModel):
    """A SWE-bench instance plus envgym's fields (`image`, `test_command`, `difficulty`, `source`, `mutations`).

    For synthesized tasks the image holds the project's pristine source at `workdir`; `bug_patch` turns it into
    the buggy tree the agent sees, `patch` (gold) turns the buggy tree back. For external SWE-bench instances
    `bug_patch` is empty: the image already holds the buggy tree, `test_patch` is applied at grading time.
    """

    model_config = ConfigDict(extra="allow")

    instance_id: str
    repo: str
    base_commit: str = ""
    problem_statement: str
    hints_text: str = ""
    patch: str = Field(description="gold patch: fixes the bug (diff against the buggy tree)")
    test_patch: str = ""
    FAIL_TO_PASS: list[str]
    PASS_TO_PASS: list[str] = Field(default_factory=list)
    version: str = ""
    environment_setup_commit: str = ""
    created_at: str = ""
    # envgym fields
    image: str = Field(description="local Docker image tag holding the project and its test dependencies")
    test_command: str = Field(
        default="python -m pytest -p no:cacheprovider",
        description="pytest invocation run in `workdir`; the grader appends --junitxml=<random path>",
    )
    workdir: str = "/repo"
    test_paths: list[str] = Field(
        default_factory=list, description="files/dirs the grader restores from the base (tests and test infra)"
    )
    source_paths: list[str] = Field(
        default_factory=list, description="files/dirs an agent's patch may change; empty = anything but tests"
    )
    bug_patch: str = Field(default="", description="applied at reset to the pristine tree (synthesized tasks)")
    difficulty: float = Field(default=0.5, ge=0.0, le=1.0)
    difficulty_level: int = Field(default=1, ge=0, le=3)
    source: str = Field(default="external", description="synthesized | external")
    project: str = ""
    seed: int | None = None
    mutations: list[MutationRecord] = Field(default_factory=list)
    failure_report: str = Field(default="", description="observed failures of FAIL_TO_PASS tests on the buggy tree")

    @field_validator("FAIL_TO_PASS", "PASS_TO_PASS", mode="before")
    @classmethod
    def _decode_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return json.loads(value) if value.strip() else []
        return value

    @field_validator("bug_patch")
    @classmethod
    def _readable_bug_patch(cls, value: str) -> str:
        """The bug patch is applied on the host (in memory, then archived): only sections patches.py can read,
        whose paths are plain and relative, so a task file cannot name a file outside its project."""
        unreadable = read_patch(value).unreadable
        if unreadable:
            names = ", ".join(repr(name) for name in unreadable[:3])
            raise ValueError(f"bug_patch has sections that are not plain text diffs of relative paths: {names}")
        return value

    @property
    def files_touched(self) -> list[str]:
        return sorted({m.file for m in self.mutations})


class Prediction(BaseModel):
    """One model's answer to one instance (SWE-bench predictions format)."""

    instance_id: str
    model_name_or_path: str
    model_patch: str | None


class TestStatus(BaseModel):
    success: list[str] = Field(default_factory=list)
    failure: list[str] = Field(default_factory=list)


class InstanceReport(BaseModel):
    """SWE-bench's per-instance report (`{instance_id: InstanceReport}` on disk)."""

    patch_is_None: bool = False
    patch_exists: bool = True
    patch_successfully_applied: bool = True
    resolved: bool = False
    infra_failure: bool = False
    infra_failure_reason: str = ""
    tests_status: dict[str, TestStatus] = Field(default_factory=dict)


def read_jsonl(path: str | Path) -> list[SWETask]:
    """Read SWE-bench-format JSONL (or a JSON list) into tasks; raises ValueError naming the bad line."""
    text = Path(path).read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        return [SWETask.model_validate(obj) for obj in json.loads(text)]
    tasks = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            tasks.append(SWETask.model_validate_json(line))
        except ValueError as exc:
            raise ValueError(f"{path}:{number}: not a valid SWE task: {exc}") from exc
    return tasks


def write_jsonl(path: str | Path, records: Iterable[BaseModel]) -> None:
    """Write records one per line, fields in declaration order (stable diffs for the bundled suite)."""
    lines = [record.model_dump_json() for record in records]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def read_predictions(path: str | Path) -> list[Prediction]:
    """Read predictions as JSONL, a JSON list, or a JSON dict keyed by instance id."""
    text = Path(path).read_text(encoding="utf-8").strip()
    if text.startswith("["):
        return [Prediction.model_validate(obj) for obj in json.loads(text)]
    if text.startswith("{") and "\n" not in text.strip():
        obj = json.loads(text)
        if "instance_id" not in obj:
            return [Prediction.model_validate({"instance_id": k, **v}) for k, v in obj.items()]
    return [Prediction.model_validate_json(line) for line in text.splitlines() if line.strip()]
