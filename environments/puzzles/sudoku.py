"""Sudoku from 4×4 to 9×9: fill every blank so each row, column and box holds each digit once.

Why this generator: a canonical valid grid shuffled by validity-preserving symmetries (digit relabelling,
row/column moves inside bands and stacks, band/stack moves, transposition for square boxes) is random enough
and costs microseconds; blanks are then dug one by one while the solution stays unique. A dig is checked by
asking a bitmask DFS for a solution that *differs* in the dug cell (one search, not a count to two), and a cell
whose value is a naked single is dug with no search at all. Difficulty raises the size (4 → 6 → 9) and the
share of blanks; the optimal solution length is the number of blanks.
"""

from __future__ import annotations

import functools
import random
import re
from typing import ClassVar

import numpy as np
from pydantic import ConfigDict, Field, model_validator

from envgym.actions import Tool, ToolCall
from envgym.core import Feedback, StepOutcome, handles
from envgym.environments.puzzles.base import PuzzleEnv, PuzzleParams, lerp_int

BOX_SHAPES: dict[int, tuple[int, int]] = {4: (2, 2), 6: (2, 3), 9: (3, 3)}


class Place(Tool):
    """Write a digit into a blank (or previously filled, non-given) cell. Rows and columns count from 1."""

    model_config = ConfigDict(frozen=True)  # a call is a value: the env may reuse it for the same text
    name: ClassVar[str] = "place"
    row: int = Field(description="row, 1 = top")
    col: int = Field(description="column, 1 = left")
    value: int = Field(description="the digit to write, 1..size")


class Clear(Tool):
    """Erase a digit you wrote earlier (givens cannot be erased)."""

    model_config = ConfigDict(frozen=True)  # a call is a value: the env may reuse it for the same text
    name: ClassVar[str] = "clear"
    row: int = Field(description="row, 1 = top")
    col: int = Field(description="column, 1 = left")


class SudokuParams(PuzzleParams):
    size: int = Field(default=9, description="grid side: 4 (2×2 boxes), 6 (2×3 boxes) or 9 (3×3 boxes)")
    blanks: int = Field(default=40, ge=1, le=80, description="target number of blank cells (unique solution kept)")
    slack: int = Field(default=3, ge=0, le=200, description="turns allowed beyond one per blank")
    show_candidates: bool = Field(default=False, description="hint the legal digits of the cell just touched")

    @model_validator(mode="after")
    def _check(self) -> SudokuParams:
        if self.size not in BOX_SHAPES:
            raise ValueError(f"size must be one of {sorted(BOX_SHAPES)}")
        if self.blanks >= self.size * self.size:
            raise ValueError("blanks must be smaller than size*size")
        return self


def box_of(r: int, c: int, size: int) -> int:
    br, bc = BOX_SHAPES[size]
    return (r // br) * (size // bc) + c // bc


@functools.cache
def peers(size: int) -> tuple[tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]], ...]:
    """Per cell: the other cells of its row, of its column, and of its box outside that row and column."""
    out = []
    for i in range(size * size):
        r, c = divmod(i, size)
        row = tuple(r * size + k for k in range(size) if k != c)
        col = tuple(k * size + c for k in range(size) if k != r)
        box = tuple(
            j
            for j in range(size * size)
            if j // size != r and j % size != c and box_of(j // size, j % size, size) == box_of(r, c, size)
        )
        out.append((row, col, box))
    return tuple(out)


def shuffled_solution(size: int, rng: random.Random) -> list[int]:
    """A random valid grid (row-major, digits 1..size) from the canonical pattern and symmetry moves."""
    br, bc = BOX_SHAPES[size]
    bands, stacks = size // br, size // bc
    rows = [band * br + r for band in rng.sample(range(bands), bands) for r in rng.sample(range(br), br)]
    cols = [stack * bc + c for stack in rng.sample(range(stacks), stacks) for c in rng.sample(range(bc), bc)]
    digits = [d + 1 for d in rng.sample(range(size), size)]
    grid = [digits[(bc * (r % br) + r // br + c) % size] for r in rows for c in cols]
    if br == bc and rng.random() < 0.5:
        grid = [grid[c * size + r] for r in range(size) for c in range(size)]
    return grid


class BitSolver:
    """Row/column/box bitmasks over a grid; DFS with the most-constrained cell first."""

    def __init__(self, grid: list[int], size: int) -> None:
        self.size = size
        self.full = (1 << size) - 1
        self.rows = [0] * size
        self.cols = [0] * size
        self.boxes = [0] * size
        self.box = [box_of(i // size, i % size, size) for i in range(size * size)]
        self.row_of = [i // size for i in range(size * size)]
        self.col_of = [i % size for i in range(size * size)]
        self.grid = list(grid)
        for i, v in enumerate(grid):
            if v:
                bit = 1 << (v - 1)
                self.rows[i // size] |= bit
                self.cols[i % size] |= bit
                self.boxes[self.box[i]] |= bit

    def candidates(self, i: int) -> int:
        s = self.size
        return self.full & ~(self.rows[i // s] | self.cols[i % s] | self.boxes[self.box[i]])

    def _set(self, i: int, bit: int) -> None:
        s = self.size
        self.rows[i // s] |= bit
        self.cols[i % s] |= bit
        self.boxes[self.box[i]] |= bit

    def _unset(self, i: int, bit: int) -> None:
        s = self.size
        self.rows[i // s] ^= bit
        self.cols[i % s] ^= bit
        self.boxes[self.box[i]] ^= bit

    def solvable(self, empties: list[int], forbid_cell: int = -1, forbid_bit: int = 0) -> bool:
        """Whether the blanks can be filled with `forbid_cell` never taking `forbid_bit`.

        The forbidden cell is branched on first: its few alternatives usually die within a few nodes.
        """
        rows, cols, boxes, box, full = self.rows, self.cols, self.boxes, self.box, self.full
        ri, ci = self.row_of, self.col_of

        def search(cells: list[int]) -> bool:
            if not cells:
                return True
            best, best_mask, best_count = -1, 0, 99
            for i in cells:
                mask = full & ~(rows[ri[i]] | cols[ci[i]] | boxes[box[i]])
                n = mask.bit_count()
                if n < best_count:
                    if n == 0:
                        return False
                    best, best_mask, best_count = i, mask, n
                    if n == 1:
                        break
            rest = [i for i in cells if i != best]
            r, c, b = ri[best], ci[best], box[best]
            while best_mask:
                bit = best_mask & -best_mask
                best_mask ^= bit
                rows[r] |= bit
                cols[c] |= bit
                boxes[b] |= bit
                ok = search(rest)
                rows[r] ^= bit
                cols[c] ^= bit
                boxes[b] ^= bit
                if ok:
                    return True
            return False

        if forbid_cell < 0:
            return search(list(empties))
        others = [i for i in empties if i != forbid_cell]
        mask = self.candidates(forbid_cell) & ~forbid_bit
        while mask:
            bit = mask & -mask
            mask ^= bit
            self._set(forbid_cell, bit)
            ok = search(others)
            self._unset(forbid_cell, bit)
            if ok:
                return True
        return False


def dig(solution: list[int], size: int, target: int, rng: random.Random, max_failures: int = 12) -> list[int]:
    """Blank up to `target` cells in random order, keeping the solution unique. Returns the puzzle.

    A failed dig costs a full solve (a second solution must be found), and failures pile up near the limit of
    what stays unique, so we stop after `max_failures` of them: the puzzle may end a few blanks short.
    """
    puzzle = list(solution)
    order = rng.sample(range(size * size), size * size)
    solver = BitSolver(puzzle, size)
    empties: list[int] = []
    blanks = failures = 0
    for i in order:
        if blanks >= target:
            break
        v = puzzle[i]
        bit = 1 << (v - 1)
        solver._unset(i, bit)
        puzzle[i] = 0
        # A naked single stays forced; otherwise look for a solution that differs here.
        unique = solver.candidates(i) == bit or not solver.solvable([*empties, i], i, bit)
        if unique:
            empties.append(i)
            blanks += 1
        else:
            puzzle[i] = v
            solver._set(i, bit)
            failures += 1
            if failures >= max_failures:
                break
    return puzzle


class SudokuEnv(PuzzleEnv):
    env_id: ClassVar[str] = "envgym/Sudoku-v0"
    family: ClassVar[str] = "sudoku"
    tools: ClassVar[tuple[type[Tool], ...]] = (Place, Clear)
    Params: ClassVar[type[PuzzleParams]] = SudokuParams
    text_form_help: ClassVar[str] = "`ROW COL VALUE` such as `3 4 5` (1-based), or `clear ROW COL`"

    params: SudokuParams

    def params_for(self, difficulty: float) -> SudokuParams:
        size = 4 if difficulty < 0.3 else 6 if difficulty < 0.6 else 9
        share = 0.25 + 0.37 * difficulty  # share of cells blanked: 25% → 62%
        return SudokuParams(
            size=size,
            blanks=max(1, round(share * size * size)),
            slack=lerp_int(difficulty, 6, 2),
            show_candidates=difficulty <= 0.5,
        )

    def _new_puzzle(self, params: SudokuParams) -> tuple[str, int]:  # type: ignore[override]
        n = params.size
        rng = self.rng
        self.solution = shuffled_solution(n, rng)
        self.givens = dig(self.solution, n, params.blanks, rng)
        self.grid = list(self.givens)
        self.n_blanks = sum(1 for v in self.givens if v == 0)
        budget = self.n_blanks + params.slack
        br, bc = BOX_SHAPES[n]
        intro = (
            f"Sudoku {n}×{n} with {br}×{bc} boxes: fill the {self.n_blanks} blanks (.) so that every row, column "
            f"and box holds each digit 1-{n} exactly once. The solution is unique. You have {budget} turns.\n"
            'Write a digit with {"name": "place", "arguments": {"row": 1, "col": 2, "value": 3}} or the text form '
            "`1 2 3` (row col value, counting from 1); erase your own digit with `clear 1 2`. "
            "Boxes are numbered 1.. left to right, top to bottom.\n\n" + self.render_grid()
        )
        return intro, budget

    # ----- rules --------------------------------------------------------------------------------------
    def render_grid(self) -> str:
        n = self.params.size
        br, bc = BOX_SHAPES[n]
        header = (
            "    " + " ".join(f"{c + 1}" + ("  " if (c + 1) % bc == 0 and c + 1 < n else "") for c in range(n)).rstrip()
        )
        lines = [header]
        for r in range(n):
            if r and r % br == 0:
                lines.append("    " + "-" * (2 * n - 1 + 2 * (n // bc - 1)))
            cells = []
            for c in range(n):
                v = self.grid[r * n + c]
                cells.append(("." if v == 0 else str(v)) + (" |" if (c + 1) % bc == 0 and c + 1 < n else ""))
            lines.append(f"{r + 1:>2}  " + " ".join(cells))
        return "\n".join(lines)

    def remaining(self) -> int:
        return sum(1 for v in self.grid if v == 0)

    def conflicts(self, r: int, c: int, value: int) -> list[str]:
        """Which constraints a digit at (r, c) would break, naming the clashing cell (0-based inputs)."""
        n = self.params.size
        row, col, box = peers(n)[r * n + c]
        g = self.grid
        out = [f"row {r + 1} already has a {value} (column {j % n + 1})" for j in row if g[j] == value]
        out += [f"column {c + 1} already has a {value} (row {j // n + 1})" for j in col if g[j] == value]
        out += [
            f"box {box_of(r, c, n) + 1} already has a {value} (row {j // n + 1}, column {j % n + 1})"
            for j in box
            if g[j] == value
        ]
        return out

    def legal_digits(self, r: int, c: int) -> list[int]:
        n = self.params.size
        used = {self.grid[j] for group in peers(n)[r * n + c] for j in group}
        return [v for v in range(1, n + 1) if v not in used]

    def _check_cell(self, row: int, col: int) -> str | None:
        n = self.params.size
        if not (1 <= row <= n and 1 <= col <= n):
            return f"row and column must be in 1..{n}, got ({row}, {col})"
        if self.givens[(row - 1) * n + col - 1]:
            return f"({row}, {col}) is a given ({self.givens[(row - 1) * n + col - 1]}) and cannot change"
        return None

    def _rejected(self, error: str | None) -> StepOutcome | None:
        if error is None:
            return None
        return StepOutcome(
            feedback=Feedback(summary="Move rejected; the grid is unchanged.", error=error), state=self.render_grid()
        )

    @handles(Clear)
    def _clear(self, call: Clear) -> StepOutcome:
        if rejected := self._rejected(self._check_cell(call.row, call.col)):
            return rejected
        i = (call.row - 1) * self.params.size + call.col - 1
        old = self.grid[i]
        self.grid[i] = 0
        what = f"Erased {old} at ({call.row}, {call.col})." if old else f"({call.row}, {call.col}) was already blank."
        return StepOutcome(
            feedback=Feedback(summary=f"{what} {self.remaining()} blanks remain."), state=self.render_grid()
        )

    @handles(Place)
    def _place(self, call: Place) -> StepOutcome:
        n = self.params.size
        error = self._check_cell(call.row, call.col)
        if error is None and not 1 <= call.value <= n:
            error = f"value must be a digit in 1..{n}, got {call.value}"
        if rejected := self._rejected(error):
            return rejected
        r, c = call.row - 1, call.col - 1
        i = r * n + c
        broken = self.conflicts(r, c, call.value)
        if broken:
            hint = None
            if self.params.show_candidates:
                hint = f"legal digits at ({call.row}, {call.col}): {self.legal_digits(r, c) or 'none'}"
            return StepOutcome(
                feedback=Feedback(
                    summary=f"Cannot write {call.value} at ({call.row}, {call.col}); the grid is unchanged.",
                    error="; ".join(broken),
                    hint=hint,
                ),
                state=self.render_grid(),
            )
        self.grid[i] = call.value
        left = self.remaining()
        if left == 0:  # a full grid without conflicts is the (unique) solution
            return self.solved(f"Wrote {call.value} at ({call.row}, {call.col}): solved!", self.render_grid())
        return StepOutcome(
            feedback=Feedback(summary=f"Wrote {call.value} at ({call.row}, {call.col}). {left} blanks remain."),
            state=self.render_grid(),
        )

    _TEXT = re.compile(r"(?:place\s+)?\(?(\d{1,2})\s*[, ]\s*(\d{1,2})\)?\s*[,= ]\s*(\d{1,2})\.?", re.I)
    _CLEAR = re.compile(r"(?:clear|erase)\s+\(?(\d{1,2})\s*[, ]\s*(\d{1,2})\)?\.?", re.I)

    def _text_form(self, text: str) -> ToolCall | None:
        m = self._CLEAR.fullmatch(text)
        if m:
            return ToolCall(name="clear", arguments={"row": int(m.group(1)), "col": int(m.group(2))})
        m = self._TEXT.fullmatch(text)
        if m:
            row, col, value = (int(g) for g in m.groups())
            return ToolCall(name="place", arguments={"row": row, "col": col, "value": value})
        return None

    # ----- reference agents ---------------------------------------------------------------------------
    def oracle_action(self) -> str:
        """Erase a wrong digit first (it would block the solution), else fill the first blank."""
        n = self.params.size
        for i, v in enumerate(self.grid):
            if v and v != self.solution[i]:
                return f"clear {i // n + 1} {i % n + 1}"
        for i, v in enumerate(self.grid):
            if v == 0:
                return f"{i // n + 1} {i % n + 1} {self.solution[i]}"
        return f"1 1 {self.solution[0]}"  # unreachable while the episode runs

    def random_action(self, rng: np.random.Generator) -> str:
        """A random blank and a random digit legal there (any digit if none is)."""
        n = self.params.size
        blanks = [i for i, v in enumerate(self.grid) if v == 0]
        if not blanks:
            blanks = [i for i, v in enumerate(self.givens) if v == 0]
        i = blanks[int(rng.integers(len(blanks)))]
        r, c = divmod(i, n)
        legal = self.legal_digits(r, c) or list(range(1, n + 1))
        return Place(row=r + 1, col=c + 1, value=legal[int(rng.integers(len(legal)))]).to_action()
