"""Task synthesis: a pinned PyPI project -> validated, seeded bug-fix tasks (SWE-smith style, fully offline).

Why this pipeline: one image per project version serves every task (the bug is a patch applied at reset), and
every task is validated the way the grader will judge it: the suite still collects, at least one previously
passing test fails (FAIL_TO_PASS), others still pass (PASS_TO_PASS), and the gold patch is the exact diff back.
The baseline and each kept bug are run twice so flaky tests never enter either list. Same seed, same tasks.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydantic import BaseModel

from envgym.environments.swe.difficulty import LEVELS, task_difficulty
from envgym.environments.swe.images import REPO_DIR, build_image
from envgym.environments.swe.mutations import ModuleMutator, Mutation, Site, apply_mutations, order_sites
from envgym.environments.swe.recipes import ProjectRecipe
from envgym.environments.swe.repo_state import prepare_task_repo
from envgym.environments.swe.sandboxing import open_swe_sandbox
from envgym.environments.swe.schema import SWETask
from envgym.environments.swe.statements import FailureExample, extract_example, write_statement
from envgym.environments.swe.testrun import SuiteRun, run_suite
from envgym.environments.swe.trees import pristine_tree, upload_tree
from envgym.sandboxes import Sandbox

CREATED_AT = "2025-01-01T00:00:00+00:00"
SPARE_SINGLES = 3  # single bugs found beyond the plan, in case a confirmation run drops one
MAX_TRIES_PER_SINGLE = 8  # give up on a project after this many candidates per needed bug
MAX_FAIL_FRACTION = 0.5  # a bug that breaks most of the suite is an import error, not a task
# Share of tasks per level (0: one bug, tests + file named .. 3: three bugs, one behaviour named).
LEVEL_SHARES = {0: 0.3, 1: 0.3, 2: 0.2, 3: 0.2}


class SynthesisStats(BaseModel):
    project: str
    candidates_tried: int = 0
    candidates_kept: int = 0
    combos_tried: int = 0
    combos_kept: int = 0
    tasks: int = 0
    suite_runs: int = 0
    seconds: float = 0.0

    @property
    def single_yield(self) -> float:
        return self.candidates_kept / max(self.candidates_tried, 1)


@dataclass
class _Bug:
    mutations: list[Mutation]
    f2p: list[str]
    p2p: list[str]
    run: SuiteRun
    files: list[str] = field(default_factory=list)


class Synthesizer:
    """Runs the pipeline for one recipe inside one long-lived validation sandbox."""

    def __init__(self, recipe: ProjectRecipe, seed: int, log: Callable[[str], None] = lambda line: None) -> None:
        self.recipe = recipe
        self.seed = seed
        self.log = log
        self.rng = np.random.default_rng(seed)
        self.stats = SynthesisStats(project=recipe.spec)
        self.sources: dict[str, str] = {}
        self.image = ""
        self.baseline: set[str] = set()
        self.baseline_count = 0

    # ----- setup -------------------------------------------------------------------------------------
    def _load_sources(self, tree: dict[str, bytes]) -> None:
        for rel, data in sorted(tree.items()):
            if not rel.endswith(".py") or not self.recipe.is_source_path(rel):
                continue
            if any(Path(rel).match(pattern) for pattern in self.recipe.exclude_files):
                continue
            self.sources[rel] = data.decode("utf-8")

    def _run(self, sandbox: Sandbox) -> SuiteRun:
        self.stats.suite_runs += 1
        return run_suite(sandbox, self.recipe.test_command, REPO_DIR, timeout=self.recipe.test_timeout_s)

    def _write(self, sandbox: Sandbox, files: dict[str, str]) -> None:
        for rel, text in files.items():
            sandbox.write_file(f"{REPO_DIR}/{rel}", text.encode("utf-8"))

    # ----- validation --------------------------------------------------------------------------------
    def _try(self, sandbox: Sandbox, mutations: list[Mutation]) -> _Bug | None:
        by_file: dict[str, list[Mutation]] = {}
        for m in mutations:
            by_file.setdefault(m.file, []).append(m)
        try:
            mutated = {f: apply_mutations(self.sources[f], ms) for f, ms in by_file.items()}
        except ValueError:
            return None
        self._write(sandbox, mutated)
        try:
            run = self._run(sandbox)
        finally:
            self._write(sandbox, {f: self.sources[f] for f in mutated})
        if not run.report_found or run.timed_out or len(run.outcomes) < self.baseline_count:
            return None  # the suite no longer collects (import error, crash, hang)
        f2p = sorted(t for t in self.baseline if not run.passed(t))
        p2p = sorted(t for t in self.baseline if run.passed(t))
        if not f2p or not p2p or len(f2p) > MAX_FAIL_FRACTION * len(self.baseline):
            return None
        return _Bug(mutations=mutations, f2p=f2p, p2p=p2p, run=run, files=sorted(mutated))

    def _confirm(self, sandbox: Sandbox, bug: _Bug) -> _Bug | None:
        """Second run of the buggy tree: keep only tests whose outcome repeats."""
        again = self._try(sandbox, bug.mutations)
        if again is None:
            return None
        f2p = sorted(set(bug.f2p) & set(again.f2p))
        p2p = sorted(set(bug.p2p) & set(again.p2p))
        if not f2p or not p2p:
            return None
        return _Bug(mutations=bug.mutations, f2p=f2p, p2p=p2p, run=bug.run, files=bug.files)

    # ----- the pipeline ------------------------------------------------------------------------------
    def plan(self, count: int) -> dict[int, int]:
        """How many tasks per level for `count` tasks (largest remainder, deterministic)."""
        raw = {level: count * share for level, share in LEVEL_SHARES.items()}
        plan = {level: math.floor(v) for level, v in raw.items()}
        for level in sorted(raw, key=lambda lv: (plan[lv] - raw[lv], lv))[: count - sum(plan.values())]:
            plan[level] += 1
        return plan

    def run(self, count: int, image: str | None = None) -> list[SWETask]:
        import time

        started = time.perf_counter()
        self.image = image or build_image(self.recipe, log=self.log)
        self._load_sources(pristine_tree(self.recipe))
        plan = self.plan(count)
        # single bugs are tasks of their own (levels 0-1) and the parts of combined bugs (levels 2-3)
        needed_singles = sum(n for level, n in plan.items() if LEVELS[level][0] == 1) + SPARE_SINGLES
        self.log(f"{self.recipe.spec}: plan {plan}, need {needed_singles} validated single bugs")
        sandbox = open_swe_sandbox(self.image, REPO_DIR)
        try:
            upload_tree(sandbox, REPO_DIR, pristine_tree(self.recipe))
            first, second = self._run(sandbox), self._run(sandbox)
            if not first.report_found:
                raise RuntimeError(
                    f"the pristine suite of {self.recipe.spec} produced no report:\n{first.output[-2000:]}"
                )
            self.baseline = {t for t in first.outcomes if first.passed(t) and second.passed(t)}
            self.baseline_count = len(first.outcomes)
            self.log(f"baseline: {len(self.baseline)} stable passing tests of {self.baseline_count}")
            singles = self._find_singles(sandbox, needed_singles)
            bugs_by_level = self._assign(sandbox, singles, plan)
            tasks = [self._task(sandbox, bug, level) for level, bugs in sorted(bugs_by_level.items()) for bug in bugs]
            for task in tasks:  # the root commit the agent will see (fixed author/date -> reproducible id)
                task.base_commit = prepare_task_repo(sandbox, task)
        finally:
            sandbox.close()
        self.stats.tasks = len(tasks)
        self.stats.seconds = round(time.perf_counter() - started, 1)
        return tasks

    def _find_singles(self, sandbox: Sandbox, needed: int) -> list[_Bug]:
        mutators = {f: ModuleMutator(f, src) for f, src in self.sources.items()}
        sites: list[Site] = [s for m in mutators.values() for s in m.sites()]
        used_functions: set[tuple[str, str]] = set()
        used_lines: set[tuple[str, int]] = set()
        tried: set[Site] = set()
        singles: list[_Bug] = []
        ordered = order_sites(sites, self.rng)
        # First pass: one bug per function (spread over the code); second pass: any other untried line.
        for pass_number, site in [(0, s) for s in ordered] + [(1, s) for s in ordered]:
            if len(singles) >= needed or self.stats.candidates_tried >= MAX_TRIES_PER_SINGLE * needed:
                break
            if site in tried or (site.file, site.line) in used_lines:
                continue
            if pass_number == 0 and (site.file, site.function) in used_functions:
                continue
            tried.add(site)
            mutation = mutators[site.file].realize(site)
            if mutation is None:
                continue
            self.stats.candidates_tried += 1
            bug = self._try(sandbox, [mutation])  # confirmed later if it becomes a task on its own
            if bug is None:
                continue
            used_functions.add(mutation.site)
            used_lines.add((site.file, site.line))
            singles.append(bug)
            self.stats.candidates_kept += 1
            self.log(
                f"  kept {mutation.operator} {mutation.file}:{mutation.line} ({len(bug.f2p)} F2P) [{len(singles)}/{needed}]"
            )
        return singles

    def _assign(self, sandbox: Sandbox, singles: list[_Bug], plan: dict[int, int]) -> dict[int, list[_Bug]]:
        """Confirmed single bugs fill levels 0-1; levels 2-3 combine 2-3 distinct single bugs (same file first)."""
        out: dict[int, list[_Bug]] = {level: [] for level in plan}
        confirmed: list[_Bug] = []
        for bug in singles:
            again = self._confirm(sandbox, bug)
            if again is not None:
                confirmed.append(again)
        queue = list(confirmed)
        for level in sorted(plan):
            if LEVELS[level][0] == 1:
                take = min(plan[level], len(queue))
                out[level], queue = queue[:take], queue[take:]
        seen: set[tuple[int, ...]] = set()
        for level in sorted(plan):
            size = LEVELS[level][0]
            if size == 1 or len(confirmed) < size:
                continue
            attempts = 0
            while len(out[level]) < plan[level] and attempts < 4 * plan[level]:
                attempts += 1
                group = self._pick_group(confirmed, size, seen)
                if group is None:
                    break
                self.stats.combos_tried += 1
                combo = self._try(sandbox, [m for i in group for m in confirmed[i].mutations])
                combo = self._confirm(sandbox, combo) if combo else None
                if combo is not None:
                    self.stats.combos_kept += 1
                    out[level].append(combo)
        return out

    def _pick_group(self, bugs: list[_Bug], size: int, seen: set[tuple[int, ...]]) -> tuple[int, ...] | None:
        """A new seeded group of distinct bugs, preferring bugs in the same file."""
        for _ in range(50):
            first = int(self.rng.integers(len(bugs)))
            same = [i for i in range(len(bugs)) if i != first and bugs[i].files == bugs[first].files]
            other = [i for i in range(len(bugs)) if i != first and bugs[i].files != bugs[first].files]
            rest = [same[i] for i in self.rng.permutation(len(same))] + [
                other[i] for i in self.rng.permutation(len(other))
            ]
            group = tuple(sorted([first, *rest[: size - 1]]))
            if len(group) == size and group not in seen:
                seen.add(group)
                return group
        return None

    # ----- task records ------------------------------------------------------------------------------
    def _task(self, sandbox: Sandbox, bug: _Bug, level: int) -> SWETask:
        hint = LEVELS[level][1]
        by_file: dict[str, list[Mutation]] = {}
        for m in bug.mutations:
            by_file.setdefault(m.file, []).append(m)
        from envgym.environments.swe.mutations import unified_diff

        bug_patch = "".join(
            unified_diff(f, self.sources[f], apply_mutations(self.sources[f], ms)) for f, ms in sorted(by_file.items())
        )
        gold = "".join(
            unified_diff(f, apply_mutations(self.sources[f], ms), self.sources[f]) for f, ms in sorted(by_file.items())
        )
        digest = hashlib.sha256(bug_patch.encode()).hexdigest()[:10]
        owner, _, name = self.recipe.repo.partition("/")
        examples: list[FailureExample] = []
        for test_id in bug.f2p:
            outcome = bug.run.outcome(test_id)
            examples.append(extract_example(test_id, outcome, test_id.split("::")[0]))
        order = self.rng.permutation(len(examples))
        examples = [examples[i] for i in order]
        statement = write_statement(
            self.recipe.name, self.recipe.version, examples, len(bug.f2p), sorted(by_file), hint
        )
        records = [m.record() for m in bug.mutations]
        return SWETask(
            instance_id=f"{owner}__{name}.{self.recipe.version}.{digest}",
            repo=self.recipe.repo,
            base_commit="",
            problem_statement=statement,
            hints_text="",
            patch=gold,
            test_patch="",
            FAIL_TO_PASS=bug.f2p,
            PASS_TO_PASS=bug.p2p,
            version=self.recipe.version,
            environment_setup_commit=self.recipe.sha256[:40],
            created_at=CREATED_AT,
            image=self.image,
            test_command=self.recipe.test_command,
            workdir=REPO_DIR,
            test_paths=list(self.recipe.test_paths),
            source_paths=list(self.recipe.source_paths),
            bug_patch=bug_patch,
            difficulty=task_difficulty(len(records), [r.subtlety for r in records], len(bug.f2p), hint),
            difficulty_level=level,
            source="synthesized",
            project=self.recipe.spec,
            seed=self.seed,
            mutations=records,
            failure_report="\n\n".join(
                f"{e.test_id}\n" + "\n".join(e.error) for e in sorted(examples, key=lambda e: e.test_id)[:5]
            ),
        )


def synthesize(
    recipe: ProjectRecipe, count: int, seed: int, log: Callable[[str], None] = lambda line: None
) -> tuple[list[SWETask], SynthesisStats]:
    """Validated tasks for one project version (see module docstring)."""
    synth = Synthesizer(recipe, seed, log)
    tasks = synth.run(count)
    return tasks, synth.stats
