"""Minesweeper without guessing: reveal every safe cell; a mine ends the game.

Why this generator: the first reveal is made for the agent on a cell whose neighbourhood is mine-free (so it
opens a region), and a board is kept only if a logic-only solver (single-constraint rules, the subset rule
between overlapping constraints, and the global mine count) clears it from there. So every task is solvable by
reasoning alone, and the solver's reveals prove the turn budget. Difficulty raises the board (5×5 → 10×10)
and the mine density (10% → 20%).
"""

from __future__ import annotations

import functools
import math
import random
import re
from collections.abc import Callable
from typing import ClassVar

import numpy as np
from pydantic import ConfigDict, Field, model_validator

from envgym.actions import Tool, ToolCall
from envgym.core import Feedback, StepOutcome, handles
from envgym.environments.puzzles.base import PuzzleEnv, PuzzleParams, lerp_int

MAX_TRIES = 500
_CELL_TEXT = ".12345678"  # a revealed cell: its count, "." for zero


@functools.cache
def _column_header(cols: int) -> str:
    return "    " + " ".join(str((c + 1) % 10) for c in range(cols))


class Reveal(Tool):
    """Reveal a hidden cell. A number tells how many of its 8 neighbours are mines; a mine loses the game.
    Rows and columns count from 1."""

    model_config = ConfigDict(frozen=True)  # a call is a value: the env may reuse it for the same text
    name: ClassVar[str] = "reveal"
    row: int = Field(description="row, 1 = top")
    col: int = Field(description="column, 1 = left")


class Flag(Tool):
    """Put a flag on a hidden cell you believe is a mine, or take it off again (flags are optional)."""

    model_config = ConfigDict(frozen=True)  # a call is a value: the env may reuse it for the same text
    name: ClassVar[str] = "flag"
    row: int = Field(description="row, 1 = top")
    col: int = Field(description="column, 1 = left")


class MinesweeperParams(PuzzleParams):
    rows: int = Field(default=8, ge=4, le=30, description="board height")
    cols: int = Field(default=8, ge=4, le=30, description="board width")
    mines: int = Field(default=10, ge=1, le=300, description="number of mines")
    slack: int = Field(default=3, ge=0, le=200, description="turns allowed beyond the solver's reveals")

    @model_validator(mode="after")
    def _check(self) -> MinesweeperParams:
        if self.mines > self.rows * self.cols - 9:
            raise ValueError("mines must leave at least a 3×3 safe opening: mines <= rows*cols - 9")
        return self


@functools.cache
def neighbour_table(rows: int, cols: int) -> tuple[tuple[int, ...], ...]:
    out = []
    for i in range(rows * cols):
        r, c = divmod(i, cols)
        out.append(
            tuple(
                rr * cols + cc
                for rr in (r - 1, r, r + 1)
                for cc in (c - 1, c, c + 1)
                if (rr, cc) != (r, c) and 0 <= rr < rows and 0 <= cc < cols
            )
        )
    return tuple(out)


def flood(
    start: int,
    counts: list[int],
    revealed: list[bool],
    nbrs: tuple[tuple[int, ...], ...],
    cells: list[str] | None = None,
) -> int:
    """Reveal `start` and, through zeros, everything around it. Returns how many cells were newly revealed.
    `cells` (the board's cell texts), when given, is updated for every cell revealed."""
    if revealed[start]:
        return 0
    revealed[start] = True
    opened = 1
    stack = [start]
    while stack:
        i = stack.pop()
        if cells is not None:
            cells[i] = _CELL_TEXT[counts[i]]
        if counts[i]:
            continue
        for j in nbrs[i]:
            if not revealed[j]:
                revealed[j] = True
                opened += 1
                stack.append(j)
    return opened


@functools.cache
def _row_labels(rows: int) -> tuple[str, ...]:
    return tuple(f"{r + 1:>2}  " for r in range(rows))


@functools.cache
def _board_template(rows: int, cols: int) -> str:
    """The board text with a `%s` per cell: one `%` renders it (instead of a join per row; `str.format` parses
    more per field). The labels hold no `%`."""
    row = " ".join(["%s"] * cols)
    return "\n".join([_column_header(cols)] + [label + row for label in _row_labels(rows)])


@functools.cache
def neighbour_masks(rows: int, cols: int) -> tuple[int, ...]:
    return tuple(sum(1 << j for j in nb) for nb in neighbour_table(rows, cols))


_BYTE_BITS: list[tuple[tuple[int, ...], ...]] = []  # [k][byte]: the set bits of `byte << 8k`, ascending


def _byte_bits(chunks: int) -> list[tuple[tuple[int, ...], ...]]:
    while len(_BYTE_BITS) < chunks:
        base = 8 * len(_BYTE_BITS)
        _BYTE_BITS.append(tuple(tuple(base + b for b in range(8) if byte >> b & 1) for byte in range(256)))
    return _BYTE_BITS


def bits(mask: int) -> list[int]:
    """The set bits of `mask`, ascending (a table per byte: a step per 8 cells, not per set bit)."""
    table = _BYTE_BITS if len(_BYTE_BITS) * 8 >= mask.bit_length() else _byte_bits((mask.bit_length() + 7) // 8)
    out: list[int] = []
    k = 0
    while mask:
        if mask & 255:
            out += table[k][mask & 255]
        mask >>= 8
        k += 1
    return out


def deduce(
    counts: list[int],
    revealed: int,
    mines: int,
    n_mines: int,
    nbr_masks: tuple[int, ...],
    numbered: int | None = None,
) -> tuple[int, int]:
    """(provably safe cells, provably mined cells) as bitmasks, from the revealed numbers alone.

    Cheap rules first: single constraints until stuck, then the subset rule between constraints (with the
    global mine count as one more constraint), then back to single constraints for any new mines.
    `numbered` (the mask of cells with a non-zero count) only saves work: the rules read numbered cells.
    """
    numbers = bits(revealed & numbered) if numbered is not None else [i for i in bits(revealed) if counts[i]]
    full = (1 << len(counts)) - 1
    while True:
        safe, new_mines = 0, 0
        hidden = full & ~revealed & ~mines
        constraints: list[tuple[int, int]] = []
        for i in numbers:
            around = nbr_masks[i]
            unknown = around & hidden
            if not unknown:
                continue
            need = counts[i]
            if mines:  # none known yet (most first passes): nothing to subtract
                need -= (around & mines).bit_count()
            if need == 0:
                safe |= unknown
            elif need == unknown.bit_count():
                new_mines |= unknown
            else:
                constraints.append((unknown, need))
        if safe:
            return safe, mines | new_mines
        if new_mines:
            mines |= new_mines
            continue
        unknown = hidden
        left = n_mines - mines.bit_count()
        if left == 0:
            return unknown, mines
        if left == unknown.bit_count():
            return 0, mines | unknown
        constraints.append((unknown, left))
        # the rule's results are OR-ed together, so exact duplicates (neighbouring numbers that see the same
        # hidden cells) change nothing: drop them before the quadratic pass
        unique = list(dict.fromkeys(constraints))
        for a_mask, a_need in unique:
            for b_mask, b_need in unique:
                if a_mask & b_mask == a_mask and a_mask != b_mask:
                    rest, need = b_mask & ~a_mask, b_need - a_need
                    if need == 0:
                        safe |= rest
                    elif need == rest.bit_count():
                        new_mines |= rest
        if safe:
            return safe, mines | new_mines
        if not new_mines:
            return 0, mines
        mines |= new_mines


def flood_mask(start: int, counts: list[int], revealed: int, nbr_masks: tuple[int, ...]) -> int:
    """`revealed` plus `start` and every cell reached from it through zeros."""
    revealed |= 1 << start
    stack = [start]
    while stack:
        i = stack.pop()
        if counts[i]:
            continue
        fresh = nbr_masks[i] & ~revealed
        revealed |= fresh
        stack.extend(bits(fresh))
    return revealed


@functools.cache
def grid_shape(rows: int, cols: int) -> tuple[int, int, int, int]:
    """(cols, cells with a left neighbour, cells with a right neighbour, all cells) as bitmasks, for `spread`."""
    full = (1 << rows * cols) - 1
    first = sum(1 << r * cols for r in range(rows))  # column 0
    last = first << (cols - 1)  # the last column
    return cols, full & ~first, full & ~last, full


def flood_bits(start: int, zeros: int, revealed: int, shape: tuple[int, int, int, int]) -> int:
    """`flood_mask` on whole bitmasks (`zeros`: the cells whose count is 0): each round grows every newly
    reached zero cell's 3×3 block at once with shifts, instead of a Python step per cell. Same result."""
    cols, has_left, has_right, full = shape
    new = 1 << start
    revealed |= new
    while True:
        z = new & zeros
        if not z:
            return revealed
        row = z | ((z & has_right) << 1) | ((z & has_left) >> 1)
        new = (row | (row << cols) | (row >> cols)) & full & ~revealed
        if not new:
            return revealed
        revealed |= new


@functools.cache
def mine_pools(rows: int, cols: int) -> tuple[tuple[int, ...], ...]:
    """Per first-click cell, the cells a mine may take (all but its 3×3 block), ascending: built once per shape
    instead of once per generated board."""
    full = (1 << rows * cols) - 1
    return tuple(tuple(bits(full & ~(mask | 1 << s))) for s, mask in enumerate(neighbour_masks(rows, cols)))


@functools.cache
def placement_radix(rows: int, cols: int, mines: int) -> tuple[int, tuple[tuple[int, int], ...]]:
    """`draw_placement`'s table: (span, per first click (orders, limit)). `orders` counts the ordered ways to
    pick the mines from that click's pool (p·(p-1)·…), span is cells × the largest `orders`, and `limit` the
    largest multiple of `orders` below that largest one."""
    pools = mine_pools(rows, cols)
    orders = {  # per pool size (corner, edge and inner clicks: a few sizes), p·(p-1)·…·(p-k+1)
        size: math.prod(range(size - min(mines, size) + 1, size + 1)) for size in {len(pool) for pool in pools}
    }
    top = max(orders.values())
    return rows * cols * top, tuple((orders[len(p)], top - top % orders[len(p)]) for p in pools)


def draw_placement(rng: random.Random, rows: int, cols: int, mines: int) -> tuple[int, list[int]]:
    """(first click, mines): the click uniform over the board and, given it, the mines a uniform set of cells
    outside its 3×3 block: the law of `randrange` + `sample` (v1), from one draw instead of one per mine (the
    per-task generator's draws cost ~1 µs each in Python, and its ninth seeds a Mersenne Twister, ~10 µs).

    One uniform v in [0, cells × top) splits into a uniform click (v mod cells) and an independent uniform c in
    [0, top); c mod `orders` is uniform when c is below the largest multiple of `orders` (else one more draw);
    its mixed-radix digits are Fisher-Yates' picks from the click's pool, a uniform ordered choice of mines."""
    n = rows * cols
    span, radix = placement_radix(rows, cols, mines)
    c, start = divmod(rng.randrange(span), n)
    orders, limit = radix[start]
    c = c % orders if c < limit else rng.randrange(orders)
    pool = list(mine_pools(rows, cols)[start])
    placed = []
    for last in range(len(pool) - 1, len(pool) - 1 - min(mines, len(pool)), -1):
        c, j = divmod(c, last + 1)
        placed.append(pool[j])
        pool[j] = pool[last]
    return start, placed


def _subset_rule(
    opened: int, hidden: int, layout: int, nbr_masks: tuple[int, ...], shape: tuple[int, int, int, int]
) -> tuple[int, int]:
    """`deduce`'s subset rule for `solve_layout`: between the unknown sets of numbers next to a hidden cell, and
    against the global count (all hidden cells, of which every set is a subset). (safe, mines) as bitmasks."""
    cols, has_left, has_right, _ = shape
    row = hidden | ((hidden & has_right) << 1) | ((hidden & has_left) >> 1)
    unique = {nbr_masks[i] & hidden for i in bits(opened & (row | (row << cols) | (row >> cols)))}
    safe = new_mines = 0
    supersets = (hidden, *unique)  # the global count's set holds every other one
    for a_mask in unique:
        for b_mask in supersets:
            if a_mask | b_mask == b_mask != a_mask:
                rest = b_mask ^ a_mask
                rest_mines = rest & layout
                if not rest_mines:
                    safe |= rest
                elif rest_mines == rest:
                    new_mines |= rest
    return safe, new_mines


def solve_layout(
    opened: int, layout: int, nbr_masks: tuple[int, ...], shape: tuple[int, int, int, int], zeros: int
) -> list[int] | None:
    """`solve_from`'s reveals (the same rules, rounds and order: proved equal by test), for the generator,
    which knows the mines (`layout`, a bitmask) and so can test the rules on whole masks.

    Why it may read the layout: the rules are sound, so the known mines are real ones and a number's remaining
    need is exactly the count of real mines among its unknown cells. "need 0" is then "no hidden mine next to
    it" and "need = unknowns" is "no hidden safe cell next to it", which hold for every numbered cell at once
    by two 3×3 dilations of bitmasks (`zeros`: cells whose count is 0; revealed zeros have no hidden
    neighbour, so they add nothing). The subset rule's need difference is likewise the mines of the rest.
    "Next to an unknown mine" changes only when mines are found, and "next to a hidden safe cell" only when
    cells open, so each dilation is redone only then."""
    cols, has_left, has_right, full = shape
    mines = 0
    moves: list[int] = []
    all_safe = full & ~layout
    row = layout | ((layout & has_right) << 1) | ((layout & has_left) >> 1)
    near_mine = row | (row << cols) | (row >> cols)  # next to a mine not yet known (kept as mines are found)
    while opened != all_safe:
        # numbers next to no hidden safe cell: all their unknowns are mines (fixed until more cells open)
        hidden_safe = all_safe & ~opened
        row = hidden_safe | ((hidden_safe & has_right) << 1) | ((hidden_safe & has_left) >> 1)
        done = opened & ~(row | (row << cols) | (row >> cols))
        row = done | ((done & has_right) << 1) | ((done & has_left) >> 1)
        mine_side = row | (row << cols) | (row >> cols)
        while True:  # one `deduce` call
            hidden = full & ~opened & ~mines
            # single constraints: numbers next to no unknown mine (all their unknowns are safe), and the above
            done = opened & ~near_mine
            row = done | ((done & has_right) << 1) | ((done & has_left) >> 1)
            safe = (row | (row << cols) | (row >> cols)) & hidden
            new_mines = mine_side & hidden
            if not (safe or new_mines):
                if mines == layout:  # the global count: every remaining mine is known
                    safe = hidden
                    break
                safe, new_mines = _subset_rule(opened, hidden, layout, nbr_masks, shape)
                if not (safe or new_mines):
                    return None
            if new_mines:
                mines |= new_mines
                hidden_mines = layout & ~mines
                row = hidden_mines | ((hidden_mines & has_right) << 1) | ((hidden_mines & has_left) >> 1)
                near_mine = row | (row << cols) | (row >> cols)
            if safe:
                break
        if safe & zeros:
            for i in bits(safe):
                if not opened >> i & 1:
                    if zeros >> i & 1:
                        opened = flood_bits(i, zeros, opened, shape)
                    else:  # a number: opens itself only
                        opened |= 1 << i
                    moves.append(i)
        else:  # numbers only: none opens another
            opened |= safe
            moves += bits(safe)
    return moves


def logic_solve(counts: list[int], revealed: list[bool], n_mines: int, nbr_masks: tuple[int, ...]) -> list[int] | None:
    """The reveals a logic-only player makes until every safe cell is open, or None if it must guess."""
    opened = sum(1 << i for i, r in enumerate(revealed) if r)
    numbered = sum(1 << i for i, c in enumerate(counts) if c)
    return solve_from(counts, opened, n_mines, nbr_masks, numbered)


def solve_from(
    counts: list[int],
    opened: int,
    n_mines: int,
    nbr_masks: tuple[int, ...],
    numbered: int,
    shape: tuple[int, int, int, int] | None = None,
) -> list[int] | None:
    """`logic_solve` on bitmasks: `opened` the revealed cells, `numbered` the cells with a non-zero count
    (`shape`: the board's `grid_shape`, for the shift-based flood)."""
    n_safe = len(counts) - n_mines
    zeros = ((1 << len(counts)) - 1) & ~numbered
    mines = 0
    moves: list[int] = []
    while opened.bit_count() < n_safe:
        safe, mines = deduce(counts, opened, mines, n_mines, nbr_masks, numbered)
        if not safe:
            return None
        for i in bits(safe):
            if not opened >> i & 1:
                if shape is None:
                    opened = flood_mask(i, counts, opened, nbr_masks)
                else:
                    opened = flood_bits(i, zeros, opened, shape)
                moves.append(i)
    return moves


class MinesweeperEnv(PuzzleEnv):
    env_id: ClassVar[str] = "envgym/Minesweeper-v0"
    # v2: the first click and its mines come from one draw per board (`draw_placement`) instead of `randrange` +
    # `sample` (one draw per mine): the same law of boards, a different board for a given seed (docs/puzzles.md)
    version: ClassVar[str] = "2"
    family: ClassVar[str] = "minesweeper"
    tools: ClassVar[tuple[type[Tool], ...]] = (Reveal, Flag)
    Params: ClassVar[type[PuzzleParams]] = MinesweeperParams
    text_form_help: ClassVar[str] = (
        "`reveal ROW COL` such as `reveal 1 2` (1-based; a bare `1 2` also reveals), or `flag ROW COL`"
    )

    params: MinesweeperParams

    def params_for(self, difficulty: float) -> MinesweeperParams:
        side = lerp_int(difficulty, 5, 10)
        density = 0.10 + 0.10 * difficulty
        return MinesweeperParams(
            rows=side, cols=side, mines=max(1, round(density * side * side)), slack=lerp_int(difficulty, 5, 2)
        )

    def _new_puzzle(self, params: MinesweeperParams) -> tuple[str, int]:  # type: ignore[override]
        rows, cols = params.rows, params.cols
        n = rows * cols
        nbrs = neighbour_table(rows, cols)
        masks = neighbour_masks(rows, cols)
        shape = grid_shape(rows, cols)
        mines = params.mines
        rng = self.rng
        full = shape[3]
        tries = 0
        while True:
            start, placed = draw_placement(rng, rows, cols, mines)
            mine_mask = numbered = 0  # numbered: cells next to a mine, the only ones with a number
            for i in placed:
                mine_mask |= 1 << i
                numbered |= masks[i]
            zeros = full & ~numbered
            opened = flood_bits(start, zeros, 0, shape)
            moves = solve_layout(opened, mine_mask, masks, shape, zeros)
            if moves:  # None: needs a guess; []: the opening already cleared the board
                break
            tries += 1
            if tries % MAX_TRIES == 0 and mines > 1:
                mines -= 1  # pathological user params: make the board easier rather than loop forever
        layout = [False] * n
        counts = [0] * n
        for i in placed:
            layout[i] = True
            for j in nbrs[i]:
                counts[j] += 1
        revealed = [False] * n
        # the board's cell texts, kept up to date move by move (a step re-renders only the joins)
        cells = ["#"] * n
        for i in bits(opened):
            revealed[i] = True
            cells[i] = _CELL_TEXT[counts[i]]
        self.layout, self.counts, self.revealed, self._cells = layout, counts, revealed, cells
        self.n_mines = len(placed)
        self._hidden = n - self.n_mines - opened.bit_count()
        self.flags: set[int] = set()
        self.start = start
        self.moves = moves
        self.n_safe = n - self.n_mines
        budget = len(moves) + params.slack
        intro = (
            f"Minesweeper {rows}×{cols} with {self.n_mines} mines. Reveal every safe cell without touching a mine; "
            "a number counts the mines among a cell's 8 neighbours. The board is solvable by logic alone, no "
            f"guessing. The first reveal (row {start // cols + 1}, column {start % cols + 1}) is done for you. "
            f"You have {budget} turns.\n"
            'Reveal with {"name": "reveal", "arguments": {"row": 1, "col": 2}} or `reveal 1 2` (row col, counting '
            "from 1); `flag 1 2` marks a suspected mine (optional). # is hidden, . is an empty revealed cell, "
            "F a flag.\n\n" + self.render_board()
        )
        return intro, budget

    def render_board(self, show_mines: bool = False) -> str:
        rows, cols = self.params.rows, self.params.cols
        if not show_mines:
            return _board_template(rows, cols) % tuple(self._cells)
        revealed, counts, layout, flags = self.revealed, self.counts, self.layout, self.flags
        cells = [
            _CELL_TEXT[counts[i]]
            if revealed[i]
            else ("*" if show_mines and layout[i] else ("F" if i in flags else "#"))
            for i in range(rows * cols)
        ]
        lines = [_column_header(cols)]
        for r in range(rows):
            lines.append(f"{r + 1:>2}  " + " ".join(cells[r * cols : (r + 1) * cols]))
        return "\n".join(lines)

    def hidden_safe(self) -> int:
        return self._hidden

    @handles(Flag)
    def _flag(self, call: Flag) -> StepOutcome:
        return self._on_hidden_cell(call, self._toggle_flag)

    @handles(Reveal)
    def _reveal(self, call: Reveal) -> StepOutcome:
        return self._on_hidden_cell(call, self._open)

    def _on_hidden_cell(
        self, call: Reveal | Flag, act: Callable[[int, str, Reveal | Flag], StepOutcome]
    ) -> StepOutcome:
        """Reject a call naming no hidden cell; otherwise `act` on the cell's index."""
        rows, cols = self.params.rows, self.params.cols
        where = f"({call.row}, {call.col})"
        if not (1 <= call.row <= rows and 1 <= call.col <= cols):
            error = f"row must be in 1..{rows} and column in 1..{cols}, got {where}"
            return StepOutcome(feedback=Feedback(summary="Move rejected.", error=error), state=self.render_board())
        i = (call.row - 1) * cols + call.col - 1
        if self.revealed[i]:
            return StepOutcome(
                feedback=Feedback(
                    summary=f"{where} is already revealed; nothing changed.", error="pick a hidden (#) cell"
                ),
                state=self.render_board(),
            )
        return act(i, where, call)

    def _toggle_flag(self, i: int, where: str, call: Reveal | Flag) -> StepOutcome:
        if i in self.flags:
            self.flags.discard(i)
            self._cells[i] = "#"
            summary = f"Removed the flag at {where}."
        else:
            self.flags.add(i)
            self._cells[i] = "F"
            summary = f"Flagged {where}."
        summary += f" {len(self.flags)} flags placed, {self.n_mines} mines in total."
        return StepOutcome(feedback=Feedback(summary=summary), state=self.render_board())

    def _open(self, i: int, where: str, call: Reveal | Flag) -> StepOutcome:
        if i in self.flags:
            return StepOutcome(
                feedback=Feedback(
                    summary=f"{where} is flagged; nothing changed.",
                    error=f"remove the flag first with `flag {call.row} {call.col}`",
                ),
                state=self.render_board(),
            )
        if self.layout[i]:
            return self.failed(f"Boom: {where} was a mine. Game over.", self.render_board(show_mines=True))
        opened = flood(i, self.counts, self.revealed, neighbour_table(self.params.rows, self.params.cols), self._cells)
        if self.flags:
            self.flags -= {j for j in self.flags if self.revealed[j]}
        self._hidden = left = self._hidden - opened
        what = f"{where} shows {self.counts[i]}" if self.counts[i] else f"{where} is empty: opened {opened} cells"
        if left == 0:
            return self.solved(f"{what}. Every safe cell is revealed: solved!", self.render_board())
        # positional: a keyword call into the dataclasses' __init__ costs about twice as much (hot path)
        return StepOutcome(Feedback(f"{what}. {left} safe cells still hidden."), self.render_board())

    _REVEAL = re.compile(r"(?:reveal|open|click)?\s*\(?(\d{1,2})\s*[, ]\s*(\d{1,2})\)?\.?", re.I)
    _FLAG = re.compile(r"(?:flag|mark)\s*\(?(\d{1,2})\s*[, ]\s*(\d{1,2})\)?\.?", re.I)

    def _text_form(self, text: str) -> ToolCall | None:
        for name, pattern in (("flag", self._FLAG), ("reveal", self._REVEAL)):
            m = pattern.fullmatch(text)
            if m:
                return ToolCall(name=name, arguments={"row": int(m.group(1)), "col": int(m.group(2))})
        return None

    def oracle_action(self) -> str:
        """The solver's next reveal that is still hidden (unflagging it first if the agent flagged it)."""
        cols = self.params.cols
        nxt = next((i for i in self.moves if not self.revealed[i]), None)
        if nxt is None:  # cannot happen: the solver's reveals open every safe cell
            nxt = next(i for i in range(len(self.layout)) if not self.revealed[i] and not self.layout[i])
        verb = "flag" if nxt in self.flags else "reveal"
        return f"{verb} {nxt // cols + 1} {nxt % cols + 1}"

    def random_action(self, rng: np.random.Generator) -> str:
        """Reveal a uniformly random hidden, unflagged cell."""
        cols = self.params.cols
        hidden = [i for i, r in enumerate(self.revealed) if not r and i not in self.flags]
        i = hidden[int(rng.integers(len(hidden)))] if hidden else 0
        return Reveal(row=i // cols + 1, col=i % cols + 1).to_action()
