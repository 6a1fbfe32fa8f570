"""`envgym/ToolUse-Compute-v0`: questions that need exact arithmetic or a small program, answered with a
`python` tool that runs code in a sandbox (`auto`: a local bubblewrap jail, else Docker; never the bare host).

Difficulty moves from big-number arithmetic (one call) to small algorithms (primes, digit sums, modular
recurrences) to questions over data files whose format the agent must inspect first (one file, then a join of
two files). Expected answers are computed on the host by independent code; the gold program is text the
oracle sends, so the oracle test cross-checks the two.
"""

from __future__ import annotations

import json
import math
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from pydantic import Field

from envgym.actions import Tool
from envgym.core import Feedback, StepOutcome
from envgym.environments.tools.answers import Expected, SubmitAnswer, format_number
from envgym.environments.tools.base import ToolParams, ToolTask, lerp_int
from envgym.environments.tools.sandboxing import SandboxedTaskEnv
from envgym.environments.tools.vocab import CITIES
from envgym.text import truncate_middle

MAX_CODE_CHARS = 20_000
MAX_SHOWN_CHARS = 4_000
SENSORS = ("alpha", "beta", "gamma", "delta", "omega", "sigma", "kappa", "theta")


class Python(Tool):
    """Run a Python 3 program in a sandbox and see its output (stdout and stderr). Print what you need;
    nothing persists between calls except files you write. Data files live in the current directory."""

    name: ClassVar[str] = "python"
    code: str = Field(description="the full program, e.g. print(2**100)", max_length=MAX_CODE_CHARS)


class ComputeParams(ToolParams):
    level: int = Field(default=1, ge=0, le=3, description="0 arithmetic, 1 algorithm, 2 one data file, 3 two files")
    size: int = Field(default=2, ge=1, le=6, description="how large the numbers / data are")
    timeout_s: float = Field(default=10.0, gt=0, le=120, description="time limit of one python call")
    candidates: int = Field(default=5, ge=1, le=20)


@dataclass
class Problem:
    question: str
    answer: int | float
    digits: int | None  # rounded answers: compare with tolerance
    solution: str
    inspect: str | None = None  # a first look at the data, when the format is not given
    files: dict[str, bytes] | None = None


def is_prime(n: int) -> bool:
    if n < 2:
        return False
    return all(n % d for d in range(2, math.isqrt(n) + 1))


class ComputeEnv(SandboxedTaskEnv):
    env_id: ClassVar[str] = "envgym/ToolUse-Compute-v0"
    family: ClassVar[str] = "compute"
    tools: ClassVar[tuple[type[Tool], ...]] = (Python, SubmitAnswer)
    Params: ClassVar[type[ToolParams]] = ComputeParams

    params: ComputeParams

    def params_for(self, difficulty: float) -> ComputeParams:
        return ComputeParams(
            level=lerp_int(difficulty, 0, 3),
            size=lerp_int(difficulty, 1, 6),
            hints=difficulty <= 0.5,
            slack=lerp_int(difficulty, 4, 2),
            candidates=lerp_int(difficulty, 3, 10),
        )

    # ----- problems ---------------------------------------------------------------------------------------
    def _problems(self, level: int, size: int) -> list[Callable[[np.random.Generator], Problem]]:
        def big(rng: np.random.Generator, digits: int) -> int:
            return int(rng.integers(10 ** (digits - 1), 10**digits))

        def product(rng: np.random.Generator) -> Problem:
            a, b, c = big(rng, 6 + 3 * size), big(rng, 6 + 3 * size), big(rng, 4 + size)
            return Problem(
                f"What is {a} * {b} - {c}? Give the exact integer.", a * b - c, None, f"print({a} * {b} - {c})"
            )

        def powmod(rng: np.random.Generator) -> Problem:
            a, k, m = big(rng, 3 + size), big(rng, 4 + size), big(rng, 5 + size)
            return Problem(f"What is {a}^{k} mod {m}?", pow(a, k, m), None, f"print(pow({a}, {k}, {m}))")

        def primes(rng: np.random.Generator) -> Problem:
            lo = big(rng, 3 + size // 2)
            hi = lo + int(rng.integers(500, 2000 * size))
            count = sum(is_prime(n) for n in range(lo, hi + 1))
            code = (
                "import math\n"
                "def is_prime(n):\n    return n > 1 and all(n % d for d in range(2, math.isqrt(n) + 1))\n"
                f"print(sum(is_prime(n) for n in range({lo}, {hi} + 1)))"
            )
            return Problem(f"How many prime numbers are there between {lo} and {hi}, inclusive?", count, None, code)

        def digit_sum(rng: np.random.Generator) -> Problem:
            n = int(rng.integers(20 * size, 120 * size))
            answer = sum(int(d) for d in str(math.factorial(n)))
            code = f"import math\nprint(sum(int(d) for d in str(math.factorial({n}))))"
            return Problem(f"What is the sum of the decimal digits of {n}! ({n} factorial)?", answer, None, code)

        def fib_mod(rng: np.random.Generator) -> Problem:
            n, m = int(rng.integers(10**3, 10 ** (3 + size // 2))), big(rng, 6)
            a, b = 1, 1
            for _ in range(n - 2):
                a, b = b, (a + b) % m
            answer = b if n > 2 else 1
            code = f"a, b = 1, 1\nfor _ in range({n} - 2):\n    a, b = b, (a + b) % {m}\nprint(b)"
            return Problem(
                f"With F(1) = F(2) = 1 and F(n) = F(n-1) + F(n-2), what is F({n}) mod {m}?", answer, None, code
            )

        def readings(rng: np.random.Generator) -> tuple[list[tuple[int, str, float, str]], list[str]]:
            sensors = list(SENSORS[: 3 + size // 2])
            rows = []
            for i in range(1, 20 * size + 1):
                status = "ok" if rng.random() < 0.75 else str(rng.choice(["error", "stale"]))
                rows.append(
                    (i, sensors[int(rng.integers(len(sensors)))], round(float(rng.uniform(-50, 150)), 2), status)
                )
            return rows, sensors

        def csv_bytes(rows: list[tuple[int, str, float, str]], sep: str) -> bytes:
            head = sep.join(["reading_id", "sensor", "value", "status"])
            return ("\n".join([head, *(sep.join(map(str, r)) for r in rows)]) + "\n").encode()

        def one_file(rng: np.random.Generator) -> Problem:
            rows, sensors = readings(rng)
            sensor = sensors[int(rng.integers(len(sensors)))]
            sep = [",", ";", "\t"][int(rng.integers(3))]
            answer = round(sum(v for _, s, v, st in rows if s == sensor and st == "ok"), 2)
            code = (
                "import csv\n"
                f"rows = list(csv.DictReader(open('readings.csv', newline=''), delimiter={sep!r}))\n"
                f"print(round(sum(float(r['value']) for r in rows if r['sensor'] == {sensor!r} and r['status'] == 'ok'), 2))"
            )
            return Problem(
                f"The file readings.csv holds sensor readings. What is the sum of `value` over the readings of sensor "
                f"'{sensor}' whose status is 'ok'? Round to 2 decimals.",
                answer,
                2,
                code,
                "print(open('readings.csv').read()[:300])",
                {"readings.csv": csv_bytes(rows, sep)},
            )

        def two_files(rng: np.random.Generator) -> Problem:
            rows, sensors = readings(rng)
            sites = [str(c) for c in rng.choice(CITIES, size=3, replace=False)]
            site_of = {s: sites[int(rng.integers(len(sites)))] for s in sensors}
            site = site_of[sensors[int(rng.integers(len(sensors)))]]
            values = [v for _, s, v, st in rows if site_of[s] == site and st == "ok"]
            answer = round(sum(values) / len(values), 3) if values else 0.0
            meta = json.dumps({"sensors": [{"name": s, "site": site_of[s]} for s in sensors]}, indent=1).encode()
            code = (
                "import csv, json\n"
                "site = {s['name']: s['site'] for s in json.load(open('sensors.json'))['sensors']}\n"
                "rows = [r for r in csv.DictReader(open('readings.csv', newline=''))\n"
                f"        if site[r['sensor']] == {site!r} and r['status'] == 'ok']\n"
                "print(round(sum(float(r['value']) for r in rows) / len(rows), 3) if rows else 0.0)"
            )
            inspect = "print(open('readings.csv').read()[:200]); print(open('sensors.json').read()[:300])"
            return Problem(
                f"readings.csv holds sensor readings and sensors.json says where each sensor is. What is the mean "
                f"`value` of the readings with status 'ok' from sensors located in {site}? Round to 3 decimals.",
                answer,
                3,
                code,
                inspect,
                {"readings.csv": csv_bytes(rows, ","), "sensors.json": meta},
            )

        by_level: list[list[Callable[[np.random.Generator], Problem]]] = [
            [product, powmod],
            [primes, digit_sum, fib_mod],
            [one_file],
            [two_files],
        ]
        return by_level[level]

    def _build(self, p: ComputeParams) -> ToolTask:  # type: ignore[override]
        rng = self.task_rng
        makers = self._problems(p.level, p.size)
        problem = makers[int(rng.integers(len(makers)))](rng)
        self.prepare_sandbox(problem.files or {})
        self.data_files = sorted(problem.files or {})
        answer = problem.answer
        exact = problem.digits is None
        shown = str(int(answer)) if exact else format_number(float(answer))
        pool = {shown}
        step = 10.0 ** -(problem.digits or 0)
        for _ in range(10 * p.candidates):
            if len(pool) >= p.candidates:
                break
            delta = int(rng.choice([-3, -2, -1, 1, 2, 3, 10, -10]))
            scale = int(rng.choice([1, 1, 1, 2, 3]))
            if exact:
                pool.add(str(int(answer) * scale + delta))
            else:
                pool.add(format_number(round(float(answer) * scale + delta * step, problem.digits or 0)))
        ordered = sorted(pool)
        candidates = [ordered[i] for i in rng.permutation(len(ordered))]
        if exact:
            expected = Expected(kind="number", value=int(answer))
        else:
            expected = Expected(kind="number", value=float(answer), abs_tol=0.5 * step, rel_tol=1e-12)
        gold: list[Tool] = [Python(code=problem.inspect)] if problem.inspect else []
        gold.append(Python(code=problem.solution))
        files = f" Files in the working directory: {', '.join(self.data_files)}." if self.data_files else ""
        intro = (
            "You have a `python` tool that runs a Python 3 program in a sandbox and shows its output "
            f"(time limit {p.timeout_s:g} s per call).{files}\n\n"
            f"Question: {problem.question}\n"
            "When you know the answer, call `submit_answer` with the number (one submission)."
        )
        return ToolTask(intro, expected, gold, shown, candidates)

    # ----- tools ------------------------------------------------------------------------------------------
    def _call_tool(self, call: Tool) -> StepOutcome:
        assert isinstance(call, Python)
        result, record = self.run_command(f"python3 -c {shlex.quote(call.code)}", timeout=self.params.timeout_s)
        output = truncate_middle(result.output, MAX_SHOWN_CHARS)
        shortened = result.truncated or len(output) < len(result.output)
        if result.timed_out:
            return StepOutcome(
                feedback=Feedback(
                    summary=f"The program was stopped after {self.params.timeout_s:g} s (time limit).",
                    error="timeout",
                    details=output or None,
                    hint=self.hint("avoid infinite loops; use a faster algorithm or smaller steps"),
                ),
                commands=[record],
            )
        summary = f"Exit code {result.exit_code}." + (" Output was long and has been shortened." if shortened else "")
        hint = None
        if not result.output.strip():
            hint = self.hint("the program printed nothing: use print() to see results")
        elif result.exit_code != 0:
            hint = self.hint("the program failed; read the traceback above")
        elif shortened:
            hint = self.hint("print only what you need")
        return StepOutcome(
            feedback=Feedback(summary=summary, details=output or "(no output)", hint=hint), commands=[record]
        )

    def _random_call(self, tool: type[Tool], rng: np.random.Generator) -> Tool:
        snippets = ["print(1 + 1)", "import os; print(os.listdir('.'))", "print(sum(range(100)))"]
        snippets += [f"print(open({f!r}).read()[:200])" for f in self.data_files]
        return Python(code=snippets[int(rng.integers(len(snippets)))])
