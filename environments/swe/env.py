"""envgym/SWE-v0: fix a real bug in a real Python project inside a Docker sandbox; graded so it cannot be gamed.

Why this shape: `reset` draws a task with the env's own RNG (same seed -> same task, same commit id, same
observation), takes a warm sandbox from the pool and uploads the buggy tree as a single root commit; tools
(bash, view, str_replace, create, run_tests, submit) act in that sandbox; `submit` grades only the library source
files in a fresh sandbox (see grading.py). Budgets: turns, a per-command timeout and an episode wall clock
(`truncated`). Sandbox failures surface as `info["infra_error"]`, never as a reward of 0.
"""

from __future__ import annotations

import json
import posixpath
import re
import shlex
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from envgym.actions import Tool, ToolCall, parse_action
from envgym.core import Feedback, InfraError, StepOutcome, TextEnv
from envgym.environments.swe.difficulty import level_for
from envgym.environments.swe.grading import Grader, diff_trees, read_sources
from envgym.environments.swe.repo_state import prepare_task_repo
from envgym.environments.swe.sandboxing import SWE_LIMITS, SWESandboxes
from envgym.environments.swe.schema import SWETask, read_jsonl
from envgym.environments.swe.tools import SWE_TOOLS, Bash, Create, RunTests, StrReplace, Submit, View
from envgym.sandboxes import ExecResult, Sandbox, SandboxInfraError
from envgym.text import sanitize, truncate_middle
from envgym.trajectory import CommandRecord

DATA_DIR = Path(__file__).parent / "data"
MAX_TOOL_OUTPUT = 12_000
MAX_VIEW_LINES = 400
# What view / str_replace read into the trainer's memory per call: a source file is far smaller, and an agent's
# link to a huge file must not make every step allocate the sandbox's whole read cap on the host.
MAX_READ_BYTES = 8 * 1024 * 1024
_FENCED_BASH = re.compile(r"```(?:bash|sh|shell)\s*\n(.*?)```", re.S)

INSTRUCTIONS = """You are working in a git repository at {workdir} ({project}). A user reported the bug below.
Fix the library code so that the behaviour is correct. Do not modify tests: only changes to the library's
source files are graded, in a fresh copy of the repository, against the project's test suite.
Tools: bash, view, str_replace, create, run_tests, submit. There is no network access. Call submit when done.

--- Bug report ---
{statement}"""


def load_tasks(tasks: str | Path | list[Any] | None) -> list[SWETask]:
    """Tasks from a JSONL/JSON path, a list of records/dicts, or (None) the bundled suite."""
    if tasks is None:
        paths = sorted(DATA_DIR.glob("*.jsonl"))
        if not paths:
            raise FileNotFoundError(f"no bundled SWE tasks in {DATA_DIR}; run `envgym swe synthesize`")
        return [task for path in paths for task in read_jsonl(path)]
    if isinstance(tasks, str | Path):
        return read_jsonl(tasks)
    return [t if isinstance(t, SWETask) else SWETask.model_validate(t) for t in tasks]


class SWEEnv(TextEnv):
    """Bug-fixing tasks from real projects. `difficulty` in [0, 1] picks the level (see difficulty.py)."""

    env_id: ClassVar[str] = "envgym/SWE-v0"
    version: ClassVar[str] = "0"
    tools: ClassVar[tuple[type[Tool], ...]] = SWE_TOOLS
    text_form_help: ClassVar[str] = "a ```bash fenced block (runs it), or the single word submit"
    default_difficulty: ClassVar[float] = 0.3
    grades_patches: ClassVar[bool] = True  # its prediction is a source patch (the leaderboard re-grades it)

    def __init__(
        self,
        tasks: str | Path | list[Any] | None = None,
        difficulty: float | None = None,
        max_turns: int | None = None,
        command_timeout: float = 60.0,
        episode_seconds: float = 1800.0,
        pool_size: int = 1,
        params: dict[str, Any] | None = None,
        render_mode: str | None = None,
    ) -> None:
        super().__init__(difficulty=difficulty, max_turns=max_turns, params=params, render_mode=render_mode)
        self.tasks = load_tasks(tasks)
        if not self.tasks:
            raise ValueError("SWE-v0 needs at least one task")
        self.command_timeout = float(command_timeout)
        self.episode_seconds = float(episode_seconds)
        self.pool_size = int(pool_size)
        self.current: SWETask | None = None
        self.sandbox: Sandbox | None = None
        self._pool: Any = None
        self._agents: SWESandboxes | None = None
        self._grader: Grader | None = None
        self._started = 0.0
        self._oracle_step = 0
        self.base_commit = ""
        self._graded_patch = ""

    # ----- task selection and sandbox ----------------------------------------------------------------
    def task_for(self, seed: int, options: dict[str, Any] | None = None) -> SWETask:
        """The task `reset(seed=seed, options=options)` faces, without starting a sandbox (same rule, same RNG)."""
        opts = dict(options or {})
        difficulty = self._check_difficulty(opts.pop("difficulty", self.difficulty))
        params = {**self.param_overrides, **dict(opts.pop("params", None) or {}), **opts}
        return self._pick(difficulty, params, np.random.default_rng(int(seed)))

    def _pick(self, difficulty: float, params: dict[str, Any], rng: np.random.Generator) -> SWETask:
        wanted = params.get("instance_id")
        if wanted is not None:
            for task in self.tasks:
                if task.instance_id == wanted:
                    return task
            raise ValueError(f"unknown instance_id {wanted!r}")
        level = int(params.get("level", level_for(difficulty)))
        levels = sorted({t.difficulty_level for t in self.tasks}, key=lambda lv: (abs(lv - level), lv))
        pool = [t for t in self.tasks if t.difficulty_level == levels[0]]
        return pool[int(rng.integers(len(pool)))]

    def _release(self) -> None:
        if self.sandbox is not None and self._pool is not None:
            self._pool.checkin(self.sandbox)
        elif self.sandbox is not None:
            self.sandbox.close()
        self.sandbox, self._pool = None, None

    def _generate(self, difficulty: float, params: dict[str, Any]) -> tuple[str, dict[str, Any], int]:
        task = self._pick(difficulty, params, self.task_rng)
        old_sandbox, old_pool = self.sandbox, self._pool
        self.sandbox, self._pool = None, None
        if self._agents is None:
            self._agents = SWESandboxes("agent", size=self.pool_size)
        sandbox, pool = self._agents.checkout(task)
        self.sandbox, self._pool, self.current = sandbox, pool, task
        self.base_commit = prepare_task_repo(sandbox, task)
        self.grader.prepare(task)  # a grading sandbox for this task is staged in the background while the agent works
        # return the previous sandbox only now: its reset must not compete with this one's preparation
        if old_sandbox is not None and old_pool is not None:
            old_pool.checkin(old_sandbox)
        elif old_sandbox is not None:
            old_sandbox.close()
        self._started = time.monotonic()
        self._oracle_step = 0
        intro = INSTRUCTIONS.format(
            workdir=task.workdir, project=task.project or task.repo, statement=task.problem_statement
        )
        used = {"instance_id": task.instance_id, "level": task.difficulty_level, "task_difficulty": task.difficulty}
        return intro, used, int(params.get("max_turns", 30 + 10 * task.difficulty_level))

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict]:
        try:
            observation, info = super().reset(seed=seed, options=options)
        except (SandboxInfraError, InfraError) as exc:
            self._release()
            self.done = True
            feedback = Feedback(
                summary="Infrastructure failure while preparing the task (not your fault).", error=str(exc)
            )
            return sanitize(feedback.render()), {
                "feedback": feedback.model_dump(),
                "infra_error": str(exc),
                "tools": [],
                "patch": "",
            }
        info["sandbox"] = self._sandbox_info()
        info["base_commit"] = self.base_commit
        info["patch"] = ""
        return observation, info

    def _sandbox_info(self) -> dict[str, Any]:
        info_fn = getattr(self.sandbox, "info", None)
        if callable(info_fn):
            return dict(info_fn().model_dump(mode="json"))
        return {
            "backend": "docker",
            "image": self.current.image if self.current else "",
            "limits": SWE_LIMITS.model_dump(),
        }

    def step(self, action: str) -> tuple[str, float, bool, bool, dict]:
        self._graded_patch = ""
        observation, reward, terminated, truncated, info = super().step(action)
        info["patch"] = self._graded_patch  # the submit step carries the diff it graded ("" elsewhere)
        if not (terminated or truncated) and time.monotonic() - self._started > self.episode_seconds:
            truncated, self.done = True, True
            note = f"Wall-clock budget of {self.episode_seconds:g} s used up: episode over."
            info["feedback"]["summary"] = f"{info['feedback']['summary']} {note}"
            observation = sanitize(f"{observation}\n{note}")
            self.last_observation = observation
        return observation, reward, terminated, truncated, info

    def close(self) -> None:
        """Return the agent's sandbox and stop every container this env started (agent and grading pools)."""
        self._release()
        agents, grader, self._agents, self._grader = self._agents, self._grader, None, None
        if agents is not None:
            agents.close()
        if grader is not None:
            grader.close()
        super().close()

    # ----- predictions (public: the leaderboard uses these) ---------------------------------------------
    def is_submit(self, action: str) -> bool:
        """Whether `action` parses as this env's submit call."""
        parsed = parse_action(action, self._tool_map, self._text_form, self.text_form_help)
        return getattr(parsed, "name", None) == "submit"

    def agent_patch(self) -> str:
        """The library-source diff a submit would grade now: the agent's files (read through the engine API,
        never its shell) against the buggy tree rebuilt in a sandbox no agent touched."""
        if self.current is None or self.sandbox is None:
            raise RuntimeError("agent_patch needs a running episode: call reset() first")
        return diff_trees(self.grader.buggy_sources(self.current), read_sources(self.sandbox, self.current))

    @property
    def grader(self) -> Grader:
        """This env's grader (its own warm sandboxes, never an agent's), started on first use."""
        if self._grader is None:
            self._grader = Grader()
        return self._grader

    # ----- tools ---------------------------------------------------------------------------------------
    def _text_form(self, text: str) -> ToolCall | None:
        if text.strip().lower() == "submit":
            return ToolCall(name="submit", arguments={})
        match = _FENCED_BASH.search(text)
        if match:
            return ToolCall(name="bash", arguments={"command": match.group(1).strip()})
        return None

    def _path(self, path: str) -> str:
        assert self.current is not None
        if "\x00" in path:
            raise ValueError("the path contains a NUL character")
        return posixpath.normpath(path if path.startswith("/") else posixpath.join(self.current.workdir, path))

    def _exec(self, command: str, timeout: float | None = None) -> tuple[ExecResult, dict[str, Any]]:
        assert self.sandbox is not None
        if "\x00" in command:  # a shell cannot pass it on; refuse instead of stalling the shell's framing
            raise ValueError("the command contains a NUL character")
        limit = min(timeout or self.command_timeout, self.command_timeout)
        try:
            result = self.sandbox.exec(command, timeout=limit)
        except SandboxInfraError as exc:
            raise InfraError(str(exc)) from exc
        return result, CommandRecord.from_exec(command, result).model_dump()

    def _apply(self, call: Tool) -> StepOutcome:
        """Run one tool; a file the agent may not or cannot touch is feedback (infra errors still propagate)."""
        try:
            return self._dispatch(call)
        except (OSError, ValueError) as exc:  # PermissionError, a fifo, a huge file, a NUL in a path, bad UTF-8
            return StepOutcome(
                feedback=Feedback(summary=f"{call.name} failed; nothing changed.", error=str(exc)[:1000])
            )

    def _dispatch(self, call: Tool) -> StepOutcome:
        assert self.current is not None and self.sandbox is not None
        if isinstance(call, Bash):
            return self._bash(call)
        if isinstance(call, View):
            return self._view(call)
        if isinstance(call, StrReplace):
            return self._str_replace(call)
        if isinstance(call, Create):
            return self._create(call)
        if isinstance(call, RunTests):
            return self._run_tests(call)
        if isinstance(call, Submit):
            return self._submit()
        return StepOutcome(feedback=Feedback(summary="Unknown tool.", error=call.name))

    def _bash(self, call: Bash) -> StepOutcome:
        result, record = self._exec(call.command, call.timeout)
        status = "timed out" if result.timed_out else f"exit code {result.exit_code}"
        output = truncate_middle(result.output, MAX_TOOL_OUTPUT)
        feedback = Feedback(summary=f"bash: {status} ({result.duration_s:.2f} s).", details=output or "(no output)")
        return StepOutcome(feedback=feedback, commands=[record])

    def _read(self, path: str) -> str | None:
        assert self.sandbox is not None
        try:
            return self.sandbox.read_file(path, max_bytes=MAX_READ_BYTES).decode("utf-8", errors="replace")
        except (FileNotFoundError, IsADirectoryError):
            return None
        except SandboxInfraError as exc:
            raise InfraError(str(exc)) from exc

    def _view(self, call: View) -> StepOutcome:
        path = self._path(call.path)
        text = self._read(path)
        if text is None:
            result, record = self._exec(
                f"(cd {shlex.quote(path)} 2>/dev/null && find . -maxdepth 2 -not -path '*/.git*' -not -name '.' | sort | head -300)"
            )
            if result.exit_code != 0 or not result.output.strip():
                return StepOutcome(
                    feedback=Feedback(
                        summary=f"view: {call.path} not found.", error=f"no such file or directory: {path}"
                    )
                )
            return StepOutcome(
                feedback=Feedback(summary=f"Directory {path}:", details=result.output), commands=[record]
            )
        lines = text.split("\n")
        start = (call.start_line or 1) - 1
        end = min(call.end_line or len(lines), len(lines), start + MAX_VIEW_LINES)
        numbered = "\n".join(f"{i + 1:6d}\t{lines[i]}" for i in range(start, end))
        more = f"\n(showing lines {start + 1}-{end} of {len(lines)})" if end - start < len(lines) else ""
        return StepOutcome(
            feedback=Feedback(summary=f"{path}:", details=truncate_middle(numbered + more, MAX_TOOL_OUTPUT))
        )

    def _str_replace(self, call: StrReplace) -> StepOutcome:
        assert self.sandbox is not None
        path = self._path(call.path)
        text = self._read(path)
        if text is None:
            return StepOutcome(
                feedback=Feedback(summary="str_replace: nothing changed.", error=f"no such file: {path}")
            )
        count = text.count(call.old_str) if call.old_str else 0
        if count != 1:
            why = (
                "old_str is empty" if not call.old_str else f"old_str occurs {count} times (it must occur exactly once)"
            )
            return StepOutcome(feedback=Feedback(summary="str_replace: nothing changed.", error=why))
        new_text = text.replace(call.old_str, call.new_str, 1)
        self._write(path, new_text)
        line = text[: text.index(call.old_str)].count("\n")
        snippet = "\n".join(new_text.split("\n")[max(line - 3, 0) : line + call.new_str.count("\n") + 4])
        return StepOutcome(feedback=Feedback(summary=f"Edited {path} (around line {line + 1}).", details=snippet))

    def _write(self, path: str, text: str) -> None:
        assert self.sandbox is not None
        try:
            self.sandbox.write_file(path, text.encode("utf-8"))
        except SandboxInfraError as exc:
            raise InfraError(str(exc)) from exc

    def _create(self, call: Create) -> StepOutcome:
        assert self.sandbox is not None
        path = self._path(call.path)
        result, record = self._exec(f"test -e {shlex.quote(path)}")
        if result.exit_code == 0:
            return StepOutcome(
                feedback=Feedback(summary="create: nothing changed.", error=f"{path} exists; use str_replace"),
                commands=[record],
            )
        self._write(path, call.file_text)
        return StepOutcome(
            feedback=Feedback(summary=f"Created {path} ({len(call.file_text)} characters)."), commands=[record]
        )

    def _run_tests(self, call: RunTests) -> StepOutcome:
        assert self.current is not None
        selection = " ".join(shlex.quote(t) for t in call.tests)
        base = self.current.test_command if not call.tests else self.current.test_command.split(" -q ")[0] + " -q"
        command = f"(cd {shlex.quote(self.current.workdir)} && {base} {selection} 2>&1 | tail -c 20000)"
        result, record = self._exec(command, self.command_timeout)
        summary_line = next((ln for ln in reversed(result.output.splitlines()) if ln.strip()), "")
        feedback = Feedback(
            summary=f"run_tests: {summary_line[:200] or 'no output'}",
            details=truncate_middle(result.output, MAX_TOOL_OUTPUT),
        )
        return StepOutcome(feedback=feedback, commands=[record])

    def _submit(self) -> StepOutcome:
        assert self.current is not None and self.sandbox is not None
        grade = self.grader.grade_tree(self.sandbox, self.current)
        self._graded_patch = grade.patch
        feedback = Feedback(summary=grade.summary(), details=grade.details())
        if grade.infra_error:
            return StepOutcome(feedback=feedback, terminated=True, infra_error=grade.infra_error)
        return StepOutcome(
            feedback=feedback,
            reward=grade.reward,
            terminated=True,
            solved=grade.resolved,
            reward_components={**grade.components, "grading_s": grade.duration_s},
        )

    # ----- reference agents ----------------------------------------------------------------------------
    def oracle_action(self) -> str:
        """Gold agent: apply the gold patch through the bash tool, then submit."""
        assert self.current is not None
        self._oracle_step += 1
        if self._oracle_step == 1:
            command = f"cd {self.current.workdir} && git apply --whitespace=nowarn <<'ENVGYM_GOLD_EOF'\n{self.current.patch}ENVGYM_GOLD_EOF"
            return json.dumps({"name": "bash", "arguments": {"command": command}})
        return Submit().to_action()

    def null_action(self) -> str:
        """Null agent: submit at once (must score 0 on every task)."""
        return Submit().to_action()

    def random_action(self, rng: np.random.Generator) -> str:
        """A random well-formed, harmless action (the fixed reference agent for calibration)."""
        assert self.current is not None
        choice = int(rng.integers(5))
        if choice == 0:
            return Bash(command="ls").to_action()
        if choice == 1:
            return View(path=".").to_action()
        if choice == 2 and self.current.FAIL_TO_PASS:
            return RunTests(
                tests=[self.current.FAIL_TO_PASS[int(rng.integers(len(self.current.FAIL_TO_PASS)))]]
            ).to_action()
        if choice == 3:
            return Bash(command="git status --short").to_action()
        return Submit().to_action()
