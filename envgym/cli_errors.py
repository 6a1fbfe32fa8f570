"""The one error handler of the `envgym` command: a mistake is one line on stderr and a non-zero exit.

Why one handler instead of try/except in each command: sub-commands come from many packages (sandboxes,
swe, the learner, the leaderboard), and each of them can fail through libraries we do not control (docker,
transformers, pydantic, gymnasium). Catching at the top keeps every command's failure one readable line;
`--debug` anywhere on the command line, or `ENVGYM_DEBUG=1`, shows the full traceback instead.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any

import typer
from pydantic import ValidationError

from envgym.extras import explain
from envgym.validation import problems

try:  # typer >= 0.20 vendors its own click, whose main() catches only its own exception classes
    from typer._click.exceptions import ClickException
except ImportError:  # pragma: no cover - older typer runs click itself
    from click import ClickException  # type: ignore[assignment]

DEBUG_FLAG = "--debug"
DEBUG_ENV = "ENVGYM_DEBUG"
MAX_CHARS = 400

# Exceptions that only a bug in envgym raises: the line asks for a bug report instead of blaming the input.
INTERNAL = (AssertionError, AttributeError, NameError, TypeError, IndexError, ZeroDivisionError, RecursionError)


class CommandError(ClickException):
    """A failure a command diagnosed itself (`nothing to replay`, `set ENVGYM_TOKEN`): the message is the whole
    line and `exit_code` the status. A click exception, so that it is one line on stderr both under this
    handler and under click's own (a `CliRunner` in tests, a command embedded in another typer app)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def debug_requested(args: Sequence[str]) -> bool:
    """`--debug` anywhere before a `--`, or ENVGYM_DEBUG set to anything but 0/empty."""
    flags = list(args)[: list(args).index("--")] if "--" in args else list(args)
    return DEBUG_FLAG in flags or os.environ.get(DEBUG_ENV, "") not in ("", "0")


def strip_debug(args: Sequence[str]) -> list[str]:
    """The arguments without the global `--debug` flag (the sub-commands do not declare it)."""
    if "--" in args:
        cut = list(args).index("--")
        return [a for a in args[:cut] if a != DEBUG_FLAG] + list(args[cut:])
    return [a for a in args if a != DEBUG_FLAG]


def _squash(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= MAX_CHARS else text[: MAX_CHARS - 3] + "..."


def _is_click_error(exc: BaseException) -> bool:
    """A usage/parameter error of the command-line parser. Duck-typed: typer >= 0.20 vendors its own click,
    older typer uses click itself, and both spell these errors the same way."""
    return callable(getattr(exc, "format_message", None)) and isinstance(getattr(exc, "exit_code", None), int)


def one_line(exc: BaseException) -> str:
    """What went wrong, in one line, from any exception."""
    if _is_click_error(exc):
        message = exc.format_message()  # type: ignore[attr-defined]
        ctx = getattr(exc, "ctx", None)
        if ctx is not None and hasattr(ctx, "command_path"):
            message += f" (see `{ctx.command_path} --help`)"
        return _squash(message)
    missing = explain(exc)
    if missing is not None:  # a heavy optional module: name the extra that brings it
        return missing
    if isinstance(exc, ValidationError):
        return _squash(f"invalid {exc.title}: {problems(exc)}")
    text = exc.args[0] if isinstance(exc, KeyError) and exc.args and isinstance(exc.args[0], str) else str(exc)
    cause = exc.__cause__
    if isinstance(cause, ValidationError) and str(cause) in text:  # a wrapper that pasted pydantic's report
        text = text.replace(str(cause), problems(cause))
    bare_key = isinstance(exc, KeyError) and " " not in text  # a dict lookup that failed, not a sentence
    if isinstance(exc, INTERNAL) or bare_key:
        return _squash(
            f"internal error ({type(exc).__name__}: {text}); rerun with {DEBUG_FLAG} for the traceback and report it"
        )
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        text = f"{exc.strerror}: {exc.filename}"
    return _squash(text or type(exc).__name__)


def run_command(command: Any, args: Sequence[str], prog_name: str = "envgym") -> int:
    """Run a click/typer command; return its exit code after printing any failure as one line."""
    debug = debug_requested(args)
    try:
        result = command.main(args=strip_debug(args), prog_name=prog_name, standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        typer.echo("aborted", err=True)
        return 130
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        return 130
    except Exception as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # `envgym` or `envgym swe` alone: the help is the answer
            typer.echo(exc.format_message())  # type: ignore[attr-defined]
            return 2
        if debug:
            raise
        typer.echo(f"error: {one_line(exc)}", err=True)
        return int(exc.exit_code) if _is_click_error(exc) else 1  # type: ignore[attr-defined]
    return result if isinstance(result, int) else 0
