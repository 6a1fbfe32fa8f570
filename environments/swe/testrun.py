"""Run a project's pytest suite in a sandbox and read the outcome from JUnit XML, never from stdout.

Why JUnit at a random path outside the repo: printed `PASSED` lines and edited terminal reporters cannot forge
it, and the agent's tree cannot pre-plant a report where the grader will look. Test ids are pytest node ids
(SWE-bench's convention); `junit_key` maps a node id to the (classname, name) pair pytest writes for it, so a
test missing from the report counts as not passed (SWE-smith #24: absent must never mean passed).
"""

from __future__ import annotations

import re
import secrets
import shlex
import xml.etree.ElementTree as ET
from typing import Literal

from pydantic import BaseModel, Field

from envgym.sandboxes import Sandbox

Status = Literal["passed", "failed", "error", "skipped", "missing"]
FAILURE_TEXT_LIMIT = 4000


class TestOutcome(BaseModel):
    status: Status
    message: str = Field(default="", description="failure message (assertion text), capped")
    text: str = Field(default="", description="failure traceback as pytest wrote it, capped")


class SuiteRun(BaseModel):
    """One run of the suite: outcomes by JUnit key, plus what the run cost."""

    outcomes: dict[str, TestOutcome] = Field(default_factory=dict, description="by pytest node id")
    exit_code: int = -1
    timed_out: bool = False
    report_found: bool = False
    duration_s: float = 0.0
    output: str = ""

    def outcome(self, node_id: str) -> TestOutcome:
        found = self.outcomes.get(node_id) or self.outcomes.get(junit_key(node_id))
        return found or TestOutcome(status="missing", message="test did not run (absent from the report)")

    def passed(self, node_id: str) -> bool:
        return self.outcome(node_id).status == "passed"


def junit_key(node_id: str) -> str:
    """The 'classname::name' pytest's junitxml writes for a node id (mirrors its address mangling)."""
    path, bracket, params = node_id.partition("[")
    names = path.split("::")
    names[0] = re.sub(r"\.py$", "", names[0].replace("/", "."))
    names[-1] += bracket + params
    return ".".join(names[:-1]) + "::" + names[-1]


def node_id_of(case: ET.Element) -> str:
    """Rebuild the pytest node id from an xunit1 testcase (`file`, dotted `classname`, `name`)."""
    classname, name, file = case.get("classname", ""), case.get("name", ""), case.get("file")
    if not file:
        return f"{classname}::{name}"
    module = re.sub(r"\.py$", "", file.replace("/", "."))
    classes = classname[len(module) :].lstrip(".") if classname.startswith(module) else ""
    return "::".join([file, *[c for c in classes.split(".") if c], name])


def parse_junit(xml_text: str | bytes) -> dict[str, TestOutcome]:
    """Outcomes by node id; raises ValueError on a malformed report."""
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as exc:
        raise ValueError(f"malformed JUnit XML: {exc}") from exc
    outcomes: dict[str, TestOutcome] = {}
    for case in root.iter("testcase"):
        key = node_id_of(case)
        status: Status = "passed"
        message, text = "", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                status = "skipped" if child.tag == "skipped" else ("failed" if child.tag == "failure" else "error")
                message = (child.get("message") or "")[:FAILURE_TEXT_LIMIT]
                text = (child.text or "")[:FAILURE_TEXT_LIMIT]
                break
        if key in outcomes and outcomes[key].status != "passed":
            continue  # keep the worst outcome when a key repeats (e.g. setup error + call)
        outcomes[key] = TestOutcome(status=status, message=message, text=text)
    return outcomes


def run_suite(
    sandbox: Sandbox,
    test_command: str,
    workdir: str,
    selection: list[str] | None = None,
    timeout: float = 300.0,
    extra_args: str = "",
) -> SuiteRun:
    """Run `test_command` (+ selection) in `workdir`, JUnit XML to a fresh random directory; read it back."""
    nonce = secrets.token_hex(12)
    report_dir = f"/tmp/.envgym-junit-{nonce}"
    report = f"{report_dir}/report-{nonce}.xml"
    selected = " ".join(shlex.quote(s) for s in selection or [])
    command = (
        f"(mkdir -m 700 {report_dir} && cd {shlex.quote(workdir)} && PYTHONDONTWRITEBYTECODE=1 "
        f"{test_command} {extra_args} {selected} -o junit_family=xunit1 --junitxml={report})"
    )
    result = sandbox.exec(command, timeout=timeout)
    run = SuiteRun(
        exit_code=result.exit_code, timed_out=result.timed_out, duration_s=result.duration_s, output=result.output
    )
    try:
        data = sandbox.read_file(report)
    except Exception:  # no report: pytest crashed, was killed, or the tree broke it before writing
        data = b""
    sandbox.exec(f"rm -rf {report_dir}", timeout=30)
    if data:
        try:
            run.outcomes = parse_junit(data)
            run.report_found = True
        except ValueError:
            run.report_found = False
    return run
