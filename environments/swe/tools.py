"""The SWE-v0 tools as pydantic models (their JSON schemas are the OpenAI function schemas in `info["tools"]`)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from envgym.actions import Tool


class Bash(Tool):
    """Run a bash command in the repository (cwd /repo). No network. Output is capped (head and tail kept)."""

    name: ClassVar[str] = "bash"
    command: str = Field(description="the command line to run")
    timeout: float | None = Field(default=None, gt=0, description="seconds; capped by the env's per-command limit")


class View(Tool):
    """Show a file with line numbers (optionally a line range), or list a directory."""

    name: ClassVar[str] = "view"
    path: str = Field(description="file or directory, relative to /repo or absolute")
    start_line: int | None = Field(default=None, ge=1, description="first line to show (1-based)")
    end_line: int | None = Field(default=None, ge=1, description="last line to show (inclusive)")


class StrReplace(Tool):
    """Replace the one exact occurrence of `old_str` in a file by `new_str` (fails if it is absent or repeated)."""

    name: ClassVar[str] = "str_replace"
    path: str = Field(description="file, relative to /repo or absolute")
    old_str: str = Field(description="exact text to replace; must occur exactly once")
    new_str: str = Field(default="", description="replacement text")


class Create(Tool):
    """Create a new file with the given content (fails if the file exists: use str_replace to edit)."""

    name: ClassVar[str] = "create"
    path: str = Field(description="new file, relative to /repo or absolute")
    file_text: str = Field(description="full content of the file")


class RunTests(Tool):
    """Run the project's pytest suite, or a selection of it (node ids, files or -k expressions). Output capped."""

    name: ClassVar[str] = "run_tests"
    tests: list[str] = Field(
        default_factory=list, description="pytest node ids or paths, e.g. tests/test_x.py::test_y; empty = all"
    )


class Submit(Tool):
    """Finish: your changes to the library's source files are graded in a fresh copy of the repository."""

    name: ClassVar[str] = "submit"


SWE_TOOLS: tuple[type[Tool], ...] = (Bash, View, StrReplace, Create, RunTests, Submit)
