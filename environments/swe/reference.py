"""A fixed, scripted reference agent for SWE-v0 difficulty calibration: traceback-guided repair search.

Why this agent: gold and null agents score 1 and 0 at every level, so they cannot show that harder levels are
harder. This one uses only what a real agent sees (the bug report, the repository, test output): it runs the
failing tests (named in the report at levels 0-1, else the whole suite), ranks source lines by how close they
are to library frames in the tracebacks (and to the file named at level 0), tries repair edits there (our
mutation operators, most of which invert themselves), keeps an edit when it strictly reduces the number of
failing tests, and submits when none fail or the turn budget runs out. Reads cost no turns; every edit and
test run goes through the env's tools. More planted bugs, less localisation and fewer hints all lower its
solve rate, which is what `benchmarks/swe.py --calibrate` reports per level.
"""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

from envgym.environments.swe.mutations import ModuleMutator, Mutation, Site, apply_mutations
from envgym.environments.swe.tools import Bash, RunTests, Submit

_SUMMARY = re.compile(r"(\d+) (failed|passed|error|errors)\b")
_FRAME = re.compile(r"^([\w./-]+\.py):(\d+): ", re.M)


def count_failures(output: str) -> int | None:
    """Failed + errored tests from pytest's final summary line (None when there is no summary)."""
    counts = {kind: int(n) for n, kind in _SUMMARY.findall(output.splitlines()[-1] if output.strip() else "")}
    if not counts:
        return None
    return counts.get("failed", 0) + counts.get("error", 0) + counts.get("errors", 0)


class RepairSearchAgent:
    """Acts on a `SWEEnv` (the unwrapped env); call `run(env, max_attempts)` after `reset`."""

    name = "repair-search"

    def __init__(self, max_attempts: int = 20) -> None:
        self.max_attempts = max_attempts

    def _step(self, env: Any, action: str) -> tuple[str, float, bool]:
        observation, reward, terminated, truncated, _ = env.step(action)
        return observation, float(reward), bool(terminated or truncated)

    def run(self, env: Any, observation: str) -> float:
        task = env.current
        named = re.findall(r"`([\w./-]+\.py::[^`]+)`", observation)
        selection = [t for t in named if "::" in t][:20]
        files = [f for f in re.findall(r"`([\w./-]+\.py)`", observation) if "::" not in f]
        output, _, done = self._step(env, RunTests(tests=selection).to_action())
        failures = count_failures(output)
        if done or failures is None or failures == 0:
            return self._step(env, Submit().to_action())[1] if not done else 0.0
        sources = {f: env.sandbox.read_file(f"{task.workdir}/{f}").decode() for f in self._source_files(env)}
        attempts = 0
        while failures and attempts < self.max_attempts:
            candidates = self._rank(sources, output + "\n" + observation, files)
            improved = False
            for mutation in candidates:
                if attempts >= self.max_attempts:
                    break
                attempts += 1
                edit = mutation.edit
                original = sources[mutation.file][edit.start : edit.end]
                trial = apply_mutations(sources[mutation.file], [mutation])
                _, _, done = self._step(env, self._splice(task.workdir, mutation.file, edit.start, edit.end, edit.text))
                if done:
                    return 0.0
                new_output, _, done = self._step(env, RunTests(tests=selection).to_action())
                if done:
                    return 0.0
                new_failures = count_failures(new_output)
                if new_failures == 0 and selection:  # the named tests pass: does the whole suite?
                    full_output, _, done = self._step(env, RunTests(tests=[]).to_action())
                    if done:
                        return 0.0
                    if count_failures(full_output) != 0:
                        new_failures = None
                if new_failures is not None and new_failures < failures:
                    sources[mutation.file] = trial
                    failures, output, improved = new_failures, new_output, True
                    break
                undo = self._splice(task.workdir, mutation.file, edit.start, edit.start + len(edit.text), original)
                _, _, done = self._step(env, undo)
                if done:
                    return 0.0
            if not improved:
                break
        return self._step(env, Submit().to_action())[1]

    @staticmethod
    def _splice(workdir: str, path: str, start: int, end: int, text: str) -> str:
        """A small bash action replacing characters [start, end) of a file (works for any file size)."""
        script = (
            f"p={json.dumps(f'{workdir}/{path}')}; s=open(p, encoding='utf-8').read(); "
            f"open(p, 'w', encoding='utf-8').write(s[:{start}] + {json.dumps(text)} + s[{end}:])"
        )
        return Bash(command=f"python3 -c {shlex.quote(script)}").to_action()

    @staticmethod
    def _source_files(env: Any) -> list[str]:
        task = env.current
        roots = " ".join(task.source_paths) or "."
        listing = env.sandbox.exec(f"(cd {task.workdir} && git ls-files -- {roots})").output.split()
        from envgym.environments.swe.recipes import is_allowed_source

        return [f for f in listing if is_allowed_source(f, task.source_paths, task.test_paths)]

    @staticmethod
    def _rank(sources: dict[str, str], evidence: str, named: list[str]) -> list[Mutation]:
        """Repair candidates, realised, in the order of `rank_sites` (at most 300)."""
        mutators: dict[str, ModuleMutator] = {}
        out: list[Mutation] = []
        for site in RepairSearchAgent.rank_sites(sources, evidence, named)[:300]:
            mutator = mutators.setdefault(site.file, ModuleMutator(site.file, sources[site.file]))
            mutation = mutator.realize(site)
            if mutation is not None:
                out.append(mutation)
        return out

    @staticmethod
    def rank_sites(sources: dict[str, str], evidence: str, named: list[str]) -> list[Site]:
        """Sites near library frames first, then in functions the report/test output names, then the rest."""
        frames = [(f, int(line)) for f, line in _FRAME.findall(evidence) if f in sources]
        words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]{2,}", evidence))
        scored: list[tuple[float, int, Site]] = []
        for file, source in sorted(sources.items()):
            if named and file not in named and not any(f == file for f, _ in frames):
                continue
            lines = [line for f, line in frames if f == file]
            for index, site in enumerate(ModuleMutator(file, source).sites()):
                distance = float(min((abs(site.line - line) for line in lines), default=10_000))
                if distance > 40 and site.function.split(".")[-1] in words:
                    distance = 100.0
                scored.append((distance, index, site))
        scored.sort(key=lambda item: (item[0], item[1]))
        return [site for _, _, site in scored]
