"""`envgym_cli`: runs `envgym` commands in-process through the real entry point's error handler.

Why not typer's CliRunner alone: its standalone mode draws a boxed, multi-line panel for a failed command,
but a user's `envgym` goes through `envgym.cli_errors.run_command` (one line on stderr). Tests of what a
user sees invoke commands this way; the result has CliRunner's `output`, `exit_code` and `exception`.
"""

from __future__ import annotations

import contextlib
import io
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import pytest
import typer

from envgym.cli_errors import run_command


@dataclass
class CliResult:
    stdout: str
    stderr: str
    exit_code: int
    exception: BaseException | None = None

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


class EnvgymRunner:
    """`invoke(app, args)` as the `envgym` command runs it: a failure is `error: ...` on stderr."""

    def invoke(self, app: typer.Typer, args: Sequence[str], input: str = "") -> CliResult:
        out, err, stdin = io.StringIO(), io.StringIO(), sys.stdin
        try:
            sys.stdin = io.StringIO(input)
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = run_command(typer.main.get_command(app), list(args))
        finally:
            sys.stdin = stdin
        return CliResult(out.getvalue(), err.getvalue(), code)


@pytest.fixture(scope="module")
def envgym_cli() -> EnvgymRunner:
    from envgym.cli import _load_plugins

    _load_plugins()
    return EnvgymRunner()
