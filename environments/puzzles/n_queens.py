"""N-Queens with pre-placed queens: complete the board so that no two of the N queens attack each other.

Why this generator: a random solution comes from a bitmask backtracking search whose column order per row is
drawn from the task RNG; a few of its queens are fixed as clues, so the task is solvable by construction and
the optimal length is N minus the clues. Placements that would be attacked are refused with the attacking
queen named, so the board is always conflict-free and the agent learns exactly which line is blocked.
Difficulty raises N (4 → 12) and lowers the share of clues.
"""

from __future__ import annotations

import re
from typing import ClassVar

import numpy as np
from pydantic import ConfigDict, Field, model_validator

from envgym.actions import Tool, ToolCall
from envgym.core import Feedback, StepOutcome, handles
from envgym.environments.puzzles.base import PuzzleEnv, PuzzleParams, lerp_int


class PlaceQueen(Tool):
    """Place a queen on an empty square that no queen attacks. Rows and columns count from 1."""

    model_config = ConfigDict(frozen=True)  # a call is a value: the env may reuse it for the same text
    name: ClassVar[str] = "place"
    row: int = Field(description="row, 1 = top")
    col: int = Field(description="column, 1 = left")


class RemoveQueen(Tool):
    """Remove one of your queens (pre-placed queens stay)."""

    model_config = ConfigDict(frozen=True)  # a call is a value: the env may reuse it for the same text
    name: ClassVar[str] = "remove"
    row: int = Field(description="row, 1 = top")
    col: int = Field(description="column, 1 = left")


class NQueensParams(PuzzleParams):
    n: int = Field(default=8, ge=4, le=20, description="board side and number of queens")
    preplaced: int = Field(default=2, ge=0, le=19, description="queens of a solution given as fixed clues")
    slack: int = Field(default=3, ge=0, le=200, description="turns allowed beyond one per missing queen")
    show_dead_rows: bool = Field(default=True, description="warn when an empty row has no safe square left")

    @model_validator(mode="after")
    def _check(self) -> NQueensParams:
        if self.preplaced >= self.n:
            raise ValueError("preplaced must be smaller than n")
        return self


def attacks(a: tuple[int, int], b: tuple[int, int]) -> str | None:
    """How queen `a` attacks square `b` (same row / column / diagonal), or None."""
    if a[0] == b[0]:
        return "same row"
    if a[1] == b[1]:
        return "same column"
    if abs(a[0] - b[0]) == abs(a[1] - b[1]):
        return "same diagonal"
    return None


def complete(n: int, queens: dict[int, int], order: list[list[int]] | None = None) -> dict[int, int] | None:
    """Extend `queens` (row -> column, conflict-free) to a full solution, or None. `order[row]` is the column
    order to try (random for generation, 0..n-1 otherwise)."""
    cols = diag = anti = 0
    for r, c in queens.items():
        cols |= 1 << c
        diag |= 1 << (r + c)
        anti |= 1 << (r - c + n)
    free_rows = [r for r in range(n) if r not in queens]
    placed: dict[int, int] = {}

    def search(k: int, cols: int, diag: int, anti: int) -> bool:
        if k == len(free_rows):
            return True
        r = free_rows[k]
        for c in order[r] if order else range(n):
            if cols >> c & 1 or diag >> (r + c) & 1 or anti >> (r - c + n) & 1:
                continue
            placed[r] = c
            if search(k + 1, cols | 1 << c, diag | 1 << (r + c), anti | 1 << (r - c + n)):
                return True
        placed.pop(r, None)
        return False

    return {**queens, **placed} if search(0, cols, diag, anti) else None


class NQueensEnv(PuzzleEnv):
    env_id: ClassVar[str] = "envgym/NQueens-v0"
    family: ClassVar[str] = "n_queens"
    tools: ClassVar[tuple[type[Tool], ...]] = (PlaceQueen, RemoveQueen)
    Params: ClassVar[type[PuzzleParams]] = NQueensParams
    text_form_help: ClassVar[str] = (
        "`place ROW COL` such as `place 1 3` (1-based; a bare `1 3` also places), or `remove ROW COL`"
    )

    params: NQueensParams

    def params_for(self, difficulty: float) -> NQueensParams:
        n = lerp_int(difficulty, 4, 12)
        return NQueensParams(
            n=n,
            preplaced=round(n * (0.5 - 0.4 * difficulty)),
            slack=lerp_int(difficulty, 4, 2),
            show_dead_rows=difficulty <= 0.5,
        )

    def _new_puzzle(self, params: NQueensParams) -> tuple[str, int]:  # type: ignore[override]
        n = params.n
        rng = self.rng
        order = [rng.sample(range(n), n) for _ in range(n)]
        solution = complete(n, {}, order)
        assert solution is not None  # every n >= 4 has a solution
        clue_rows = sorted(rng.sample(range(n), params.preplaced))
        self.fixed = {r: solution[r] for r in clue_rows}
        self.queens: dict[int, int] = dict(self.fixed)
        self.placed_order: list[int] = []  # rows of the agent's queens, oldest first
        self.target: dict[int, int] | None = solution
        budget = n - params.preplaced + params.slack
        clues = ", ".join(f"({r + 1}, {c + 1})" for r, c in self.fixed.items()) or "none"
        intro = (
            f"N-Queens on a {n}×{n} board: place {n} queens so that no two share a row, column or diagonal. "
            f"Pre-placed queens (P, fixed): {clues}. You need {n - params.preplaced} more; you have {budget} turns.\n"
            'Place with {"name": "place", "arguments": {"row": 1, "col": 3}} or `place 1 3` (row col, counting '
            "from 1); `remove 1 3` takes one of your queens (Q) back. Attacked squares are refused.\n\n"
            + self.render_board()
        )
        return intro, budget

    def render_board(self) -> str:
        n = self.params.n
        lines = ["    " + " ".join(str((c + 1) % 10) for c in range(n))]
        for r in range(n):
            row = []
            for c in range(n):
                if self.queens.get(r) == c:
                    row.append("P" if r in self.fixed else "Q")
                else:
                    row.append(".")
            lines.append(f"{r + 1:>2}  " + " ".join(row))
        return "\n".join(lines)

    def safe_squares(self, row: int) -> list[int]:
        """Columns of `row` that no queen attacks (none if the row already has a queen)."""
        if row in self.queens:
            return []
        cols = set(self.queens.values())
        diag = {r + c for r, c in self.queens.items()}
        anti = {r - c for r, c in self.queens.items()}
        return [c for c in range(self.params.n) if c not in cols and row + c not in diag and row - c not in anti]

    def _reject(self, summary: str, error: str) -> StepOutcome:
        return StepOutcome(feedback=Feedback(summary=summary, error=error), state=self.render_board())

    def _off_board(self, call: PlaceQueen | RemoveQueen) -> StepOutcome | None:
        n = self.params.n
        if 1 <= call.row <= n and 1 <= call.col <= n:
            return None
        return self._reject("Move rejected.", f"row and column must be in 1..{n}, got ({call.row}, {call.col})")

    @handles(RemoveQueen)
    def _remove(self, call: RemoveQueen) -> StepOutcome:
        if rejected := self._off_board(call):
            return rejected
        n, where, r, c = self.params.n, f"({call.row}, {call.col})", call.row - 1, call.col - 1
        if self.queens.get(r) != c:
            return self._reject(f"No queen at {where}; nothing changed.", "remove names a square with your Q")
        if r in self.fixed:
            return self._reject(f"The queen at {where} is pre-placed; nothing changed.", "P queens are fixed")
        del self.queens[r]
        self.placed_order.remove(r)
        left = n - len(self.queens)
        return StepOutcome(
            feedback=Feedback(summary=f"Removed the queen at {where}. {left} queens to go."),
            state=self.render_board(),
        )

    @handles(PlaceQueen)
    def _place(self, call: PlaceQueen) -> StepOutcome:
        if rejected := self._off_board(call):
            return rejected
        n, where, r, c = self.params.n, f"({call.row}, {call.col})", call.row - 1, call.col - 1
        if self.queens.get(r) == c:
            return self._reject(f"There is already a queen at {where}; nothing changed.", "pick an empty square")
        attackers = [
            f"the queen at ({qr + 1}, {qc + 1}) ({how})"
            for qr, qc in sorted(self.queens.items())
            if (how := attacks((qr, qc), (r, c)))
        ]
        if attackers:
            return self._reject(
                f"Cannot place a queen at {where}: it would be attacked; nothing changed.",
                f"{where} is attacked by " + "; ".join(attackers),
            )
        self.queens[r] = c
        self.placed_order.append(r)
        left = n - len(self.queens)
        if left == 0:
            return self.solved(f"Placed a queen at {where}: all {n} queens are safe. Solved!", self.render_board())
        hint = None
        if self.params.show_dead_rows:
            dead = [str(row + 1) for row in range(n) if row not in self.queens and not self.safe_squares(row)]
            if dead:
                hint = f"row(s) {', '.join(dead)} have no safe square left: some queen must move"
        return StepOutcome(
            feedback=Feedback(summary=f"Placed a queen at {where}. {left} queens to go.", hint=hint),
            state=self.render_board(),
        )

    _PLACE = re.compile(r"(?:place|put|queen)?\s*\(?(\d{1,2})\s*[, ]\s*(\d{1,2})\)?\.?", re.I)
    _REMOVE = re.compile(r"(?:remove|take|delete)\s*\(?(\d{1,2})\s*[, ]\s*(\d{1,2})\)?\.?", re.I)

    def _text_form(self, text: str) -> ToolCall | None:
        for name, pattern in (("remove", self._REMOVE), ("place", self._PLACE)):
            m = pattern.fullmatch(text)
            if m:
                return ToolCall(name=name, arguments={"row": int(m.group(1)), "col": int(m.group(2))})
        return None

    def oracle_action(self) -> str:
        """Place the next queen of a solution extending the board; in a dead end, take back the newest queen."""
        if self.target is None or any(self.target.get(r) != c for r, c in self.queens.items()):
            self.target = complete(self.params.n, self.queens)
        if self.target is None:
            r = self.placed_order[-1]  # the clues alone always extend, so there is one
            return f"remove {r + 1} {self.queens[r] + 1}"
        r = next(row for row in range(self.params.n) if row not in self.queens)
        return f"place {r + 1} {self.target[r] + 1}"

    def random_action(self, rng: np.random.Generator) -> str:
        """A uniformly random safe square; with none left, take back a random queen of the agent's."""
        safe = [(r, c) for r in range(self.params.n) for c in self.safe_squares(r)]
        if safe:
            r, c = safe[int(rng.integers(len(safe)))]
            return PlaceQueen(row=r + 1, col=c + 1).to_action()
        if self.placed_order:
            r = self.placed_order[int(rng.integers(len(self.placed_order)))]
            return RemoveQueen(row=r + 1, col=self.queens[r] + 1).to_action()
        return PlaceQueen(row=1, col=1).to_action()
