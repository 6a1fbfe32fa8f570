"""`envgym/ToolUse-Files-v0`: find, count or combine content in a generated directory tree (configs, logs,
docs) inside a sandbox, with `ls`, `read` and `grep` tools.

Difficulty grows the tree (services, days of logs, docs), adds traps (`.bak` copies with stale values,
commented-out settings, log messages that mention ERROR without being errors) and chains the lookups
(read a doc to learn which service matters, then search its logs or config).
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from pydantic import Field

from envgym.actions import Tool
from envgym.core import Feedback, StepOutcome
from envgym.environments.tools.answers import AnswerValue, Expected, SubmitAnswer
from envgym.environments.tools.base import ToolParams, ToolTask, lerp_int
from envgym.environments.tools.sandboxing import SandboxedTaskEnv
from envgym.environments.tools.vocab import (
    ERROR_MESSAGES,
    KEYWORDS,
    LOG_MESSAGES,
    SERVICES,
    full_names,
)
from envgym.text import truncate_middle

MAX_SHOWN_CHARS = 6_000
MAX_GREP_LINES = 200
ERROR_PATTERN = "^[^ ]+ [^ ]+ ERROR "  # the level column, not a message that mentions ERROR


class Ls(Tool):
    """List a directory (directories end with `/`). Paths are relative to the tree root."""

    name: ClassVar[str] = "ls"
    path: str = Field(default=".", description="directory to list, e.g. `.` or `logs`")


class Read(Tool):
    """Read a text file with line numbers (up to 200 lines from `start_line`)."""

    name: ClassVar[str] = "read"
    path: str = Field(description="file to read, e.g. `config/auth.ini`")
    start_line: int = Field(default=1, ge=1, description="first line to show")


class Grep(Tool):
    """Search file contents under a path; prints `file:line:text` for every matching line, sorted."""

    name: ClassVar[str] = "grep"
    pattern: str = Field(description="text to find (a fixed string unless regex is true)", min_length=1)
    path: str = Field(default=".", description="file or directory to search (recursively)")
    regex: bool = Field(default=False, description="treat the pattern as an extended regular expression")
    ignore_case: bool = Field(default=False)


class FilesParams(ToolParams):
    level: int = Field(default=1, ge=0, le=3, description="0 one file, 1 one search, 2 search then read, 3 chains")
    services: int = Field(default=5, ge=2, le=len(SERVICES))
    days: int = Field(default=2, ge=1, le=9)
    log_lines: int = Field(default=25, ge=5, le=500, description="lines per log file")
    docs: int = Field(default=4, ge=1, le=20)
    traps: bool = Field(default=False, description="stale .bak copies, commented settings, misleading messages")
    timeout_s: float = Field(default=10.0, gt=0, le=120)
    candidates: int = Field(default=5, ge=1, le=20)


@dataclass
class Tree:
    files: dict[str, str]
    services: list[str]
    owners: dict[str, str]
    configs: dict[str, dict[str, int]]
    days: list[str]
    oncall: str
    keyword_docs: dict[str, list[str]]


def safe_path(path: str) -> str | None:
    """A normalised relative path inside the tree, or None if it would leave it."""
    cleaned = posixpath.normpath(path.strip() or ".")
    if cleaned.startswith("/") or cleaned == ".." or cleaned.startswith("../") or "\x00" in cleaned:
        return None
    return cleaned


TaskMaker = Callable[[np.random.Generator], tuple[str, str, AnswerValue, list[Tool]]]


class FilesEnv(SandboxedTaskEnv):
    env_id: ClassVar[str] = "envgym/ToolUse-Files-v0"
    family: ClassVar[str] = "files"
    tools: ClassVar[tuple[type[Tool], ...]] = (Ls, Read, Grep, SubmitAnswer)
    Params: ClassVar[type[ToolParams]] = FilesParams

    params: FilesParams

    def params_for(self, difficulty: float) -> FilesParams:
        return FilesParams(
            level=lerp_int(difficulty, 0, 3),
            services=lerp_int(difficulty, 3, 10),
            days=lerp_int(difficulty, 1, 4),
            log_lines=lerp_int(difficulty, 10, 60),
            docs=lerp_int(difficulty, 2, 8),
            traps=difficulty >= 0.5,
            hints=difficulty <= 0.5,
            slack=lerp_int(difficulty, 4, 2),
            candidates=lerp_int(difficulty, 3, 10),
        )

    # ----- world ------------------------------------------------------------------------------------------
    def _tree(self, p: FilesParams) -> Tree:
        rng = self.task_rng
        services = [str(s) for s in rng.choice(SERVICES, size=p.services, replace=False)]
        people = full_names()
        owners = {
            s: people[i]
            for s, i in zip(services, rng.choice(len(people), size=len(services), replace=False), strict=True)
        }
        days = [f"2024-03-{d:02d}" for d in sorted(rng.choice(range(1, 29), size=p.days, replace=False).tolist())]
        files: dict[str, str] = {}
        configs: dict[str, dict[str, int]] = {}
        for s in services:
            cfg = {
                "port": int(rng.integers(1024, 9999)),
                "timeout": int(rng.integers(5, 120)),
                "max_connections": int(rng.integers(10, 500)),
            }
            configs[s] = cfg
            stale = {k: v + int(rng.integers(1, 50)) for k, v in cfg.items()}
            lines = ["[server]"]
            if p.traps:
                lines.append(f"# port = {stale['port']}")
            lines += [f"port = {cfg['port']}", f"host = {s}.internal", f"owner = {owners[s]}", "", "[limits]"]
            if p.traps:
                lines.append(f"# timeout = {stale['timeout']}")
            lines += [f"timeout = {cfg['timeout']}", f"max_connections = {cfg['max_connections']}"]
            files[f"config/{s}.ini"] = "\n".join(lines) + "\n"
            if p.traps:
                old = [
                    f"port = {stale['port']}",
                    f"owner = {owners[s]}",
                    f"timeout = {stale['timeout']}",
                    f"max_connections = {stale['max_connections']}",
                ]
                files[f"config/{s}.ini.bak"] = "[server]\n" + "\n".join(old) + "\n"
        for day in days:
            for s in services:
                out = []
                for i in range(p.log_lines):
                    stamp = f"{day} {i // 60 + 8:02d}:{i % 60:02d}:{int(rng.integers(60)):02d}"
                    roll = rng.random()
                    if roll < 0.18:
                        out.append(f"{stamp} ERROR {s}: {rng.choice(ERROR_MESSAGES)}")
                    elif roll < 0.3:
                        out.append(f"{stamp} WARN {s}: {rng.choice(LOG_MESSAGES)}")
                    elif p.traps and roll < 0.38:
                        out.append(f"{stamp} INFO {s}: previous ERROR cleared")
                    else:
                        out.append(f"{stamp} INFO {s}: {rng.choice(LOG_MESSAGES)}")
                files[f"logs/{day}/{s}.log"] = "\n".join(out) + "\n"
        oncall = services[int(rng.integers(len(services)))]
        files["docs/ONCALL.md"] = f"# On call\n\nThis week the on-call rotation covers the **{oncall}** service.\n"
        if p.traps:
            prev = services[(services.index(oncall) + 1) % len(services)]
            files["docs/ONCALL.md"] += f"\nLast week it covered the {prev} service.\n"
        keyword_docs: dict[str, list[str]] = {k: [] for k in KEYWORDS}
        topics = [
            str(t)
            for t in rng.choice(
                ["setup", "runbook", "faq", "design", "notes", "release", "backup", "tuning", "glossary", "metrics"],
                size=p.docs,
                replace=False,
            )
        ]
        for topic in topics:
            words = [str(w) for w in rng.choice(KEYWORDS, size=int(rng.integers(1, 4)), replace=False)]
            path = f"docs/{topic}.md"
            body = [f"# {topic.title()}", ""] + [
                f"See the {w} checklist before changing {rng.choice(services)}." for w in words
            ]
            files[path] = "\n".join(body) + "\n"
            for w in words:
                keyword_docs[w].append(path)
        files["README.md"] = (
            "# Service tree\n\nconfig/ holds one .ini per service, logs/<day>/ their logs, docs/ notes.\n"
        )
        return Tree(files, services, owners, configs, days, oncall, keyword_docs)

    def _errors(self, tree: Tree, service: str, day: str | None = None) -> int:
        paths = [f"logs/{d}/{service}.log" for d in tree.days if day in (None, d)]
        return sum(bool(re.match(ERROR_PATTERN, line)) for path in paths for line in tree.files[path].splitlines())

    # ----- tasks ------------------------------------------------------------------------------------------
    def _tasks(
        self, level: int, tree: Tree
    ) -> list[Callable[[np.random.Generator], tuple[str, str, AnswerValue, list[Tool]]]]:
        def any_service(rng: np.random.Generator) -> str:
            return tree.services[int(rng.integers(len(tree.services)))]

        def port_of(rng: np.random.Generator) -> tuple[str, str, AnswerValue, list[Tool]]:
            s = any_service(rng)
            return (
                f"What is the value of `port` in config/{s}.ini?",
                "number",
                tree.configs[s]["port"],
                [Read(path=f"config/{s}.ini")],
            )

        def errors_in_file(rng: np.random.Generator) -> tuple[str, str, AnswerValue, list[Tool]]:
            s, day = any_service(rng), tree.days[int(rng.integers(len(tree.days)))]
            path = f"logs/{day}/{s}.log"
            return (
                f"How many log lines with level ERROR are in {path}?",
                "number",
                self._errors(tree, s, day),
                [Grep(pattern=ERROR_PATTERN, path=path, regex=True)],
            )

        def errors_all_days(rng: np.random.Generator) -> tuple[str, str, AnswerValue, list[Tool]]:
            s = any_service(rng)
            return (
                f"Across all days in logs/, how many log lines with level ERROR did the {s} service write?",
                "number",
                self._errors(tree, s),
                [Grep(pattern=f"{ERROR_PATTERN}{s}:", path="logs", regex=True)],
            )

        def service_of_owner(rng: np.random.Generator) -> tuple[str, str, AnswerValue, list[Tool]]:
            s = any_service(rng)
            return (
                f"Which service is owned by {tree.owners[s]}? Answer with the service name.",
                "text",
                s,
                [Grep(pattern=f"owner = {tree.owners[s]}", path="config")],
            )

        def keyword_files(rng: np.random.Generator) -> tuple[str, str, AnswerValue, list[Tool]]:
            used = [k for k, v in tree.keyword_docs.items() if v]
            k = used[int(rng.integers(len(used)))]
            return (
                f"List the paths of all files under docs/ that mention '{k}'.",
                "set",
                sorted(tree.keyword_docs[k]),
                [Grep(pattern=k, path="docs")],
            )

        def timeout_of_owner(rng: np.random.Generator) -> tuple[str, str, AnswerValue, list[Tool]]:
            s = any_service(rng)
            return (
                f"What is the active `timeout` setting of the service owned by {tree.owners[s]}?",
                "number",
                tree.configs[s]["timeout"],
                [Grep(pattern=f"owner = {tree.owners[s]}", path="config"), Read(path=f"config/{s}.ini")],
            )

        def oncall_errors(rng: np.random.Generator) -> tuple[str, str, AnswerValue, list[Tool]]:
            s, day = tree.oncall, tree.days[int(rng.integers(len(tree.days)))]
            return (
                f"docs/ONCALL.md names the service on call this week. How many log lines with level ERROR did that "
                f"service write on {day}?",
                "number",
                self._errors(tree, s, day),
                [Read(path="docs/ONCALL.md"), Grep(pattern=ERROR_PATTERN, path=f"logs/{day}/{s}.log", regex=True)],
            )

        def oncall_limit(rng: np.random.Generator) -> tuple[str, str, AnswerValue, list[Tool]]:
            s = tree.oncall
            return (
                "docs/ONCALL.md names the service on call this week. What is the active `max_connections` setting in "
                "that service's config?",
                "number",
                tree.configs[s]["max_connections"],
                [Read(path="docs/ONCALL.md"), Read(path=f"config/{s}.ini")],
            )

        by_level: list[list[TaskMaker]] = [
            [port_of, errors_in_file],
            [errors_all_days, service_of_owner, keyword_files],
            [timeout_of_owner, keyword_files],
            [oncall_errors, oncall_limit],
        ]
        return by_level[level]

    def _build(self, p: FilesParams) -> ToolTask:  # type: ignore[override]
        rng = self.task_rng
        tree = self._tree(p)
        self.tree = tree
        self.prepare_sandbox({path: text.encode() for path, text in tree.files.items()})
        makers = self._tasks(p.level, tree)
        question, kind, answer, gold = makers[int(rng.integers(len(makers)))](rng)
        pool: set[str] = set()
        for _ in range(6 * p.candidates):
            if len(pool) >= p.candidates - 1:
                break
            _, other_kind, other, _ = makers[int(rng.integers(len(makers)))](rng)
            if other_kind == kind and other != answer:
                pool.add(", ".join(other) if isinstance(other, list) else str(other))
        shown = ", ".join(answer) if isinstance(answer, list) else str(answer)
        candidates = sorted(pool | {shown})
        candidates = [candidates[i] for i in rng.permutation(len(candidates))]
        if kind == "number":
            expected = Expected(kind="number", value=float(answer))  # type: ignore[arg-type]
        else:
            expected = Expected(kind=kind, value=answer)  # type: ignore[arg-type]
        intro = (
            "A directory tree of service configs, logs and docs is in your workspace. Explore it with `ls`, `read` "
            "and `grep`.\n\n"
            f"Question: {question}\n"
            "When you know the answer, call `submit_answer` (one submission)."
        )
        return ToolTask(intro, expected, gold, answer, candidates)

    # ----- tools ------------------------------------------------------------------------------------------
    def _outside(self, path: str) -> StepOutcome:
        return StepOutcome(
            feedback=Feedback(
                summary="Nothing happened.",
                error=f"path {path[:100]!r} is outside the tree; use paths relative to the root, e.g. `logs`",
            )
        )

    def _call_tool(self, call: Tool) -> StepOutcome:
        path = safe_path(getattr(call, "path", "."))
        if path is None:
            return self._outside(getattr(call, "path", ""))
        q = shlex.quote(path)
        if isinstance(call, Ls):
            command = f"if [ -d {q} ]; then LC_ALL=C ls -1Ap -- {q}; else echo 'no such directory' >&2; exit 2; fi"
        elif isinstance(call, Read):
            end = call.start_line + 199
            command = (
                f"if [ -f {q} ]; then cat -n -- {q} | sed -n '{call.start_line},{end}p'; "
                f"echo \"[$(wc -l < {q}) lines in total]\"; else echo 'no such file' >&2; exit 2; fi"
            )
        else:
            assert isinstance(call, Grep)
            flags = "-rnI" + ("E" if call.regex else "F") + ("i" if call.ignore_case else "")
            command = (
                f"if [ ! -e {q} ]; then echo 'no such file or directory' >&2; exit 2; fi; "
                f'LC_ALL=C grep {flags} -H -- {shlex.quote(call.pattern)} {q} > "$TMPDIR/grep.out"; rc=$?; '
                f"LC_ALL=C sort -t: -k1,1 -k2,2n \"$TMPDIR/grep.out\" | sed 's,^\\./,,' | head -n {MAX_GREP_LINES}; "
                f'echo "[$(wc -l < "$TMPDIR/grep.out") matching lines]"; exit $rc'
            )
        # a subshell: `exit` must end the command, not the sandbox's persistent shell
        result, record = self.run_command(f"( {command} )", timeout=self.params.timeout_s)
        output = truncate_middle(result.output.rstrip("\n"), MAX_SHOWN_CHARS)
        if result.timed_out:
            return StepOutcome(
                feedback=Feedback(summary="The command hit the time limit.", error="timeout", details=output or None),
                commands=[record],
            )
        if result.exit_code == 2 or (result.exit_code != 0 and not isinstance(call, Grep)):
            return StepOutcome(
                feedback=Feedback(
                    summary=f"{call.name} failed.",
                    error=output.strip() or f"exit code {result.exit_code}",
                    hint=self.hint(
                        "check the regular expression, or set regex to false"
                        if isinstance(call, Grep) and "no such" not in output
                        else "use `ls` to see which paths exist"
                    ),
                ),
                commands=[record],
            )
        hint = None
        if isinstance(call, Grep) and result.exit_code == 1:
            hint = self.hint("no line matched: try a shorter pattern, ignore_case, or another path")
        return StepOutcome(
            feedback=Feedback(summary=f"{call.name} {path}:", details=output, hint=hint), commands=[record]
        )

    def _random_call(self, tool: type[Tool], rng: np.random.Generator) -> Tool:
        paths = sorted(self.tree.files)
        path = paths[int(rng.integers(len(paths)))]
        if tool is Ls:
            dirs = sorted({"."} | {posixpath.dirname(p) for p in paths if posixpath.dirname(p)})
            return Ls(path=dirs[int(rng.integers(len(dirs)))])
        if tool is Read:
            return Read(path=path)
        words = ["ERROR", "owner", "port", "timeout", *KEYWORDS[:3]]
        return Grep(pattern=words[int(rng.integers(len(words)))], path=".")
