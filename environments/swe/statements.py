"""Problem statements written from the observed failure, like a user's bug report.

Why from the failure and not the patch: a report names what was called, what was expected and what happened; it
never names the mutation or the fix. Library frames are dropped from tracebacks (they would point at the changed
line); the hint level decides whether failing tests and the file are named (0-1) or only the behaviour (2-3).
"""

from __future__ import annotations

import re

from pydantic import BaseModel, Field

from envgym.environments.swe.testrun import TestOutcome

MAX_EXAMPLES = {0: 3, 1: 3, 2: 2, 3: 1}


class FailureExample(BaseModel):
    """What one failing test shows: the test's own failing line(s) and the error lines."""

    test_id: str
    call: list[str] = Field(default_factory=list, description="'>' lines from the test's own frames")
    error: list[str] = Field(default_factory=list, description="'E' lines (assertion/exception)")


def extract_example(test_id: str, outcome: TestOutcome, test_file: str) -> FailureExample:
    """Keep the frames that belong to the test file; drop library source (it would reveal the change)."""
    call: list[str] = []
    error: list[str] = []
    block: list[str] = []
    # pytest's long traceback prints each frame's source first and its "path:line: ..." location after it
    for raw in outcome.text.splitlines():
        frame = re.match(r"^(\S+\.py):\d+: ", raw)
        if frame:
            if frame.group(1).endswith(test_file):
                call += [line[1:].strip() for line in block if line.startswith(">")]
            block = []
            continue
        block.append(raw)
        if raw.startswith("E ") and len(error) < 8:
            error.append(raw[1:].strip())
    call = call[:3]
    if not error and outcome.message:
        error = outcome.message.splitlines()[:6]
    if not error:
        error = [f"test {outcome.status}"]
    return FailureExample(test_id=test_id, call=call, error=[e for e in error if e] or [outcome.status])


def _params(test_id: str) -> str:
    return test_id.partition("[")[2].rstrip("]") if "[" in test_id else ""


def _block(example: FailureExample, show_test: bool) -> str:
    lines = []
    if show_test:
        lines.append(f"`{example.test_id}` fails:")
    elif _params(example.test_id):
        lines.append(f"With the input `{_params(example.test_id)}`:")
    if example.call:
        lines.append("```python\n" + "\n".join(example.call) + "\n```")
    lines.append("raises / reports:\n```\n" + "\n".join(example.error) + "\n```")
    return "\n".join(lines)


def write_statement(
    project: str,
    version: str,
    examples: list[FailureExample],
    n_failing: int,
    files: list[str],
    hint_level: int,
) -> str:
    """A bug report at the given hint level (0: tests + file named .. 3: one behaviour only)."""
    shown = examples[: MAX_EXAMPLES[hint_level]]
    first_error = shown[0].error[0] if shown and shown[0].error else "unexpected behaviour"
    title = f"{project} {version}: unexpected result ({first_error[:90]})"
    parts = [title, ""]
    if hint_level <= 1:
        parts.append(
            f"With {project} {version}, {n_failing} test{'s' if n_failing != 1 else ''} of the project's own suite "
            "fail. They passed on the released version, so something in the library is broken."
        )
        parts.append(
            "\n".join(f"- `{e.test_id}`" for e in examples[:10])
            + (f"\n- ... and {n_failing - 10} more" if n_failing > 10 else "")
        )
        parts += [_block(e, show_test=True) for e in shown]
        if hint_level == 0 and files:
            names = ", ".join(f"`{f}`" for f in files)
            parts.append(f"The problem seems to be in {names}.")
    else:
        parts.append(f"Using {project} {version}, some calls no longer behave as documented.")
        parts += [_block(e, show_test=False) for e in shown]
        if hint_level == 3:
            parts.append("Other functionality may be affected as well.")
        else:
            parts.append(f"In total I noticed {n_failing} different failing cases.")
    parts.append("Expected: the library behaves as its documentation and tests describe. Please fix the library code.")
    return "\n\n".join(parts)
