"""Lights Out: pressing a cell toggles it and its four neighbours; switch every light off.

Why GF(2): a press set is a solution iff it solves A·x = b over GF(2), where A is the (symmetric) press
matrix and b the lit cells. Per grid size we eliminate A once (cached), keeping for each pivot the combination
of original equations that produced it, so solving any board is one parity per pivot; boards of sizes with a
singular A (4×4, 5×5, ...) have a small null space, which we enumerate for the fewest presses. Presses
commute and pressing twice cancels, so the optimal length is the weight of the lightest solution.
Difficulty raises the grid (3×3 → 7×7) and the number of distinct scramble presses.
"""

from __future__ import annotations

import functools
import re
from typing import ClassVar

import numpy as np
from pydantic import ConfigDict, Field, model_validator

from envgym.actions import Tool, ToolCall
from envgym.core import Feedback, StepOutcome
from envgym.environments.puzzles.base import PuzzleEnv, PuzzleParams, lerp_int


class Press(Tool):
    """Press a cell: it and its up/down/left/right neighbours switch (on ↔ off). Rows and columns count from 1."""

    model_config = ConfigDict(frozen=True)  # a call is a value: the env may reuse it for the same text
    name: ClassVar[str] = "press"
    row: int = Field(description="row, 1 = top")
    col: int = Field(description="column, 1 = left")


class LightsOutParams(PuzzleParams):
    size: int = Field(default=5, ge=2, le=10, description="grid side")
    presses: int = Field(default=6, ge=1, le=100, description="distinct cells pressed to scramble the board")
    slack: int = Field(default=2, ge=0, le=200, description="turns allowed beyond the fewest presses")

    @model_validator(mode="after")
    def _check(self) -> LightsOutParams:
        if self.presses > self.size * self.size:
            raise ValueError("presses must be at most size*size")
        return self


@functools.cache
def press_masks(size: int) -> tuple[int, ...]:
    """Bitmask of the cells each press toggles (bit r*size+c)."""
    masks = []
    for r in range(size):
        for c in range(size):
            m = 1 << (r * size + c)
            for rr, cc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
                if 0 <= rr < size and 0 <= cc < size:
                    m |= 1 << (rr * size + cc)
            masks.append(m)
    return tuple(masks)


@functools.cache
def elimination(size: int) -> tuple[tuple[tuple[int, int], ...], tuple[int, ...], tuple[int, ...]]:
    """Reduced row echelon form of the press matrix over GF(2).

    Returns (pivots as (variable, combination of light equations), consistency checks, null-space basis):
    x[var] = parity(comb & lights); a board is solvable iff parity(check & lights) == 0 for every check.
    """
    n = size * size
    masks = press_masks(size)
    # Equation for light i: sum over presses j that toggle i. A is symmetric, so row i == masks[i].
    rows = [[masks[i], 1 << i] for i in range(n)]
    pivots: list[tuple[int, int]] = []  # (variable, row index)
    r = 0
    for var in range(n):
        bit = 1 << var
        sel = next((k for k in range(r, n) if rows[k][0] & bit), None)
        if sel is None:
            continue
        rows[r], rows[sel] = rows[sel], rows[r]
        for k in range(n):
            if k != r and rows[k][0] & bit:
                rows[k][0] ^= rows[r][0]
                rows[k][1] ^= rows[r][1]
        pivots.append((var, r))
        r += 1
    checks = tuple(rows[k][1] for k in range(r, n))
    pivot_vars = {var for var, _ in pivots}
    null = []
    for free in range(n):
        if free in pivot_vars:
            continue
        vec = 1 << free
        for var, k in pivots:
            if rows[k][0] >> free & 1:
                vec |= 1 << var
        null.append(vec)
    return tuple((var, rows[k][1]) for var, k in pivots), checks, tuple(null)


def solve(lights: int, size: int) -> int | None:
    """The press set (bitmask) with the fewest presses that switches every light off, or None."""
    pivots, checks, null = elimination(size)
    if any((check & lights).bit_count() & 1 for check in checks):
        return None
    x = 0
    for var, comb in pivots:
        if (comb & lights).bit_count() & 1:
            x |= 1 << var
    best = x
    for k in range(1, 1 << len(null)):
        y = x
        for j, vec in enumerate(null):
            if k >> j & 1:
                y ^= vec
        if y.bit_count() < best.bit_count():
            best = y
    return best


class LightsOutEnv(PuzzleEnv):
    env_id: ClassVar[str] = "envgym/LightsOut-v0"
    family: ClassVar[str] = "lights_out"
    tools: ClassVar[tuple[type[Tool], ...]] = (Press,)
    Params: ClassVar[type[PuzzleParams]] = LightsOutParams
    text_form_help: ClassVar[str] = "`press ROW COL` such as `press 2 3` (1-based), or just `2 3`"

    params: LightsOutParams

    def params_for(self, difficulty: float) -> LightsOutParams:
        size = lerp_int(difficulty, 3, 7)
        return LightsOutParams(size=size, presses=lerp_int(difficulty, 2, 18), slack=lerp_int(difficulty, 4, 1))

    def _new_puzzle(self, params: LightsOutParams) -> tuple[str, int]:  # type: ignore[override]
        n = params.size
        masks = press_masks(n)
        rng = self.rng
        while True:
            lights = 0
            for cell in rng.sample(range(n * n), params.presses):
                lights ^= masks[cell]
            if lights:
                break
        self.lights = lights
        self.plan = solve(lights, n)
        assert self.plan is not None  # a scramble made of presses is always solvable
        self.optimal = self.plan.bit_count()
        budget = self.optimal + params.slack
        intro = (
            f"Lights Out on a {n}×{n} grid: # is a lit cell, . is dark. Pressing a cell switches it and its "
            "up/down/left/right neighbours. Switch every light off. "
            f"You have {budget} presses.\n"
            'Press with {"name": "press", "arguments": {"row": 1, "col": 2}} or the text form `press 1 2` '
            "(row col, counting from 1).\n\n" + self.render_grid()
        )
        return intro, budget

    def render_grid(self) -> str:
        n = self.params.size
        lines = ["    " + " ".join(str(c + 1) for c in range(n))]
        for r in range(n):
            row = " ".join("#" if self.lights >> (r * n + c) & 1 else "." for c in range(n))
            lines.append(f"{r + 1:>2}  {row}")
        return "\n".join(lines)

    def _apply(self, call: Press) -> StepOutcome:  # type: ignore[override]
        n = self.params.size
        if not (1 <= call.row <= n and 1 <= call.col <= n):
            return StepOutcome(
                feedback=Feedback(
                    summary="Press rejected; nothing changed.",
                    error=f"row and column must be in 1..{n}, got ({call.row}, {call.col})",
                ),
                state=self.render_grid(),
            )
        cell = (call.row - 1) * n + call.col - 1
        mask = press_masks(n)[cell]
        toggled = []
        for i in range(n * n):
            if mask >> i & 1:
                toggled.append(f"({i // n + 1},{i % n + 1}) {'off' if self.lights >> i & 1 else 'on'}")
        self.lights ^= mask
        if self.plan is not None and self.plan >> cell & 1:
            self.plan ^= 1 << cell  # still the lightest solution: presses commute
        else:
            self.plan = None  # recomputed lazily by the oracle
        lit = self.lights.bit_count()
        detail = "Toggled " + ", ".join(toggled) + "."
        if lit == 0:
            return self.solved(f"Pressed ({call.row}, {call.col}): all lights are off. Solved!", self.render_grid())
        return StepOutcome(
            feedback=Feedback(summary=f"Pressed ({call.row}, {call.col}). {lit} lights remain lit.", details=detail),
            state=self.render_grid(),
        )

    _TEXT = re.compile(r"(?:press|toggle|click)?\s*\(?(\d{1,2})\s*[, ]\s*(\d{1,2})\)?\.?", re.I)

    def _text_form(self, text: str) -> ToolCall | None:
        m = self._TEXT.fullmatch(text)
        if not m:
            return None
        return ToolCall(name="press", arguments={"row": int(m.group(1)), "col": int(m.group(2))})

    def oracle_action(self) -> str:
        """Press any cell of the lightest solution of the current board."""
        n = self.params.size
        if self.plan is None:
            self.plan = solve(self.lights, n)
        plan = self.plan or 1  # None/0 cannot happen while lights are on
        cell = (plan & -plan).bit_length() - 1
        return f"press {cell // n + 1} {cell % n + 1}"

    def random_action(self, rng: np.random.Generator) -> str:
        n = self.params.size
        cell = int(rng.integers(n * n))
        return Press(row=cell // n + 1, col=cell % n + 1).to_action()
