"""Sliding puzzle (8-puzzle and 15-puzzle): slide tiles into the blank until they read 1, 2, ... in order.

Why this generator: the scramble is a random walk in which every move carries a tile one step *further* from
its goal, so the walk length equals the Manhattan distance of the result; Manhattan distance is a lower bound
and the reversed walk is a solution, so the optimal length is known exactly with no search at all (generation
costs microseconds, even on the 15-puzzle where a real IDA* proof takes seconds in Python). The oracle keeps
its plan as a state → move map; after off-plan moves it re-solves from the current board with IDA* (Manhattan
+ linear conflicts, node-capped) and, past the cap, walks the recorded moves back to the plan.
Difficulty goes from a 3-move 3×3 scramble to a ~34-move 4×4 one.
"""

from __future__ import annotations

import functools
import re
from typing import ClassVar, Literal

import numpy as np
from pydantic import ConfigDict, Field

from envgym.actions import Tool, ToolCall
from envgym.core import Feedback, StepOutcome
from envgym.environments.puzzles.base import PuzzleEnv, PuzzleParams, lerp_int

Direction = Literal["up", "down", "left", "right"]
DIRECTIONS: tuple[Direction, ...] = ("up", "down", "left", "right")
NODE_CAP = 3_000
_VIEW_CACHE_LIMIT = 20_000  # boards whose (text, Manhattan distance) are kept (a few MB at most)
_OPPOSITE = {"up": "down", "down": "up", "left": "right", "right": "left"}
_SHORT_WORDS = {"u": "up", "d": "down", "l": "left", "r": "right"}


class Slide(Tool):
    """Slide the tile next to the blank into it. `up` moves the tile below the blank up, `left` moves the tile
    right of the blank to the left, and so on."""

    model_config = ConfigDict(frozen=True)  # a call is a value: the env may reuse it for the same text
    name: ClassVar[str] = "slide"
    direction: Direction = Field(description="the direction the tile moves: up, down, left or right")


class SlidingParams(PuzzleParams):
    size: int = Field(default=3, ge=2, le=5, description="board side: 3 (8-puzzle) or 4 (15-puzzle)")
    scramble: int = Field(
        default=16, ge=1, le=60, description="scramble moves, each taking a tile away from its goal (= optimal length)"
    )
    slack: int = Field(default=4, ge=0, le=200, description="turns allowed beyond the optimal solution")
    show_distance: bool = Field(default=True, description="report the Manhattan distance to the goal after moves")


def blank_delta(direction: str, n: int) -> int:
    """How the blank's index moves when a tile slides in `direction` (the tile comes from the other side)."""
    return _blank_deltas(n)[direction]


@functools.cache
def _blank_deltas(n: int) -> dict[str, int]:
    return {"up": n, "down": -n, "left": 1, "right": -1}


def legal_directions(blank: int, n: int) -> list[str]:
    r, c = divmod(blank, n)
    out = []
    if r < n - 1:
        out.append("up")
    if r > 0:
        out.append("down")
    if c < n - 1:
        out.append("left")
    if c > 0:
        out.append("right")
    return out


@functools.cache
def _legal_table(n: int) -> tuple[tuple[str, ...], ...]:
    """`legal_directions` for every blank index (read-only)."""
    return tuple(tuple(legal_directions(b, n)) for b in range(n * n))


@functools.cache
def _goal_distance(n: int) -> tuple[tuple[int, ...], ...]:
    """[tile][index]: the Manhattan distance of `tile` at `index` from its goal (tile 0: the blank, unused)."""
    return tuple(
        tuple(abs(i // n - (t - 1) // n) + abs(i % n - (t - 1) % n) if t else 0 for i in range(n * n))
        for t in range(n * n)
    )


Board = tuple[int, ...]
# (text, Manhattan distance, blank index, legal moves: tile direction -> (next board, tile moved), the moves
# that carry a tile away from its goal as (direction, next board) in `neighbours` order: the scramble's options)
BoardFacts = tuple[str, int, int, dict[str, tuple[Board, int]], tuple[tuple[str, Board], ...]]
_BOARDS: dict[Board, BoardFacts] = {}


def board_facts(state: Board, n: int) -> BoardFacts:
    """Everything a step or a scramble asks of a board: pure functions of it, computed once per board seen
    (bounded: cleared when full), so a move is a lookup instead of a search for the blank, a copy and a render."""
    facts = _BOARDS.get(state)
    if facts is None:
        if len(_BOARDS) >= _VIEW_CACHE_LIMIT:
            _BOARDS.clear()
        width = len(str(n * n - 1))
        text = "\n".join(
            " ".join((str(state[r * n + c]) if state[r * n + c] else "_").rjust(width) for c in range(n))
            for r in range(n)
        )
        blank, dist = state.index(0), _goal_distance(n)
        moves: dict[str, tuple[Board, int]] = {}
        away: list[tuple[str, Board]] = []
        for nb, d in neighbours(n)[blank]:  # the tile at nb slides into the blank
            board = list(state)
            tile = board[nb]
            board[blank], board[nb] = tile, 0
            moves[d] = (after := tuple(board), tile)
            if dist[tile][blank] > dist[tile][nb]:
                away.append((d, after))
        facts = _BOARDS[state] = (text, manhattan(state, n), blank, moves, tuple(away))
    return facts


def board_view(state: Board, n: int) -> tuple[str, int]:
    """(board text, Manhattan distance) of `state`."""
    facts = board_facts(state, n)
    return facts[0], facts[1]


def manhattan(state: tuple[int, ...], n: int) -> int:
    total = 0
    for i, t in enumerate(state):
        if t:
            g = t - 1
            total += abs(i // n - g // n) + abs(i % n - g % n)
    return total


def linear_conflicts(state: tuple[int, ...] | list[int], n: int) -> int:
    """2 extra moves for each pair of tiles in their goal row (column) that sit in reversed order."""
    extra = 0
    for line in range(n):
        row = [state[line * n + c] for c in range(n)]
        goals = [(t - 1) % n for t in row if t and (t - 1) // n == line]
        col = [state[r * n + line] for r in range(n)]
        goals_c = [(t - 1) // n for t in col if t and (t - 1) % n == line]
        for seq in (goals, goals_c):
            # Tiles to remove so the rest are in order = len - longest increasing subsequence.
            best = [1] * len(seq)
            for a in range(len(seq)):
                for b in range(a):
                    if seq[b] < seq[a]:
                        best[a] = max(best[a], best[b] + 1)
            extra += 2 * (len(seq) - (max(best) if best else 0))
    return extra


@functools.cache
def neighbours(n: int) -> tuple[tuple[tuple[int, str], ...], ...]:
    """For each blank index, the (new blank index, tile direction) pairs."""
    out = []
    for b in range(n * n):
        out.append(tuple((b + blank_delta(d, n), d) for d in legal_directions(b, n)))
    return tuple(out)


def ida_star(start: tuple[int, ...], n: int, cap: int = NODE_CAP) -> list[str] | None:
    """An optimal list of tile directions, or None past `cap` expanded nodes."""
    state = list(start)
    blank = state.index(0)
    nbrs = neighbours(n)
    goal_r = [0] + [(t - 1) // n for t in range(1, n * n)]
    goal_c = [0] + [(t - 1) % n for t in range(1, n * n)]
    md = manhattan(start, n)
    path: list[str] = []
    nodes = 0

    def search(blank: int, g: int, md: int, bound: int, prev: int) -> int:
        nonlocal nodes
        f = g + md
        if f > bound:
            return f
        if md == 0:
            return -1
        # Linear conflicts only at the frontier-ish: cheap enough and prunes hard.
        if f + 2 > bound and g + md + linear_conflicts(state, n) > bound:
            return g + md + 2
        nodes += 1
        if nodes > cap:
            return -2
        best = 1 << 30
        for nb, d in nbrs[blank]:
            if nb == prev:
                continue
            t = state[nb]
            # Tile t moves from nb to blank.
            before = abs(nb // n - goal_r[t]) + abs(nb % n - goal_c[t])
            after = abs(blank // n - goal_r[t]) + abs(blank % n - goal_c[t])
            state[blank], state[nb] = t, 0
            path.append(d)
            res = search(nb, g + 1, md - before + after, bound, blank)
            if res < 0:
                return res
            path.pop()
            state[blank], state[nb] = 0, t
            best = min(best, res)
        return best

    bound = md + linear_conflicts(state, n)
    while True:
        res = search(blank, 0, md, bound, -1)
        if res == -1:
            return path
        if res == -2:
            return None
        bound = res


@functools.cache
def _goal(n: int) -> Board:
    return (*range(1, n * n), 0)


def apply_move(state: tuple[int, ...], direction: str, n: int) -> tuple[int, ...]:
    """The board after sliding `direction` (a legal move): read from the board's facts, which hold every move."""
    return board_facts(state, n)[3][direction][0]


@functools.lru_cache(maxsize=_VIEW_CACHE_LIMIT)
def _intro(n: int, budget: int, state: tuple[int, ...]) -> str:
    """The task text: a pure function of (size, budget, board), which recur across episodes."""
    return (
        f"Sliding puzzle {n}×{n}: slide tiles into the blank (_) until the board reads 1, 2, ..., "
        f"{n * n - 1} row by row with the blank at the bottom right. You have {budget} moves.\n"
        'Move with {"name": "slide", "arguments": {"direction": "up"}} or the text form `up` '
        "(the direction the TILE moves: `up` moves the tile below the blank up).\n\n" + board_view(state, n)[0]
    )


class SlidingEnv(PuzzleEnv):
    env_id: ClassVar[str] = "envgym/Sliding-v0"
    family: ClassVar[str] = "sliding"
    tools: ClassVar[tuple[type[Tool], ...]] = (Slide,)
    Params: ClassVar[type[PuzzleParams]] = SlidingParams
    text_form_help: ClassVar[str] = "a direction such as `up`, `down`, `left`, `right` (or `u`, `d`, `l`, `r`)"

    params: SlidingParams

    def params_for(self, difficulty: float) -> SlidingParams:
        if difficulty < 0.5:
            size, scramble = 3, lerp_int(difficulty / 0.5, 3, 16)
        else:
            size, scramble = 4, lerp_int((difficulty - 0.5) / 0.5, 18, 34)
        return SlidingParams(
            size=size, scramble=scramble, slack=lerp_int(difficulty, 6, 2), show_distance=difficulty <= 0.5
        )

    def _new_puzzle(self, params: SlidingParams) -> tuple[str, int]:  # type: ignore[override]
        n = params.size
        self.goal: Board = _goal(n)
        boards, walk = self._scramble(n, params.scramble)
        self.state = start = boards[-1]
        self.history = [start]
        self._walk: tuple[list[Board], list[str]] | None = (boards, walk)  # the oracle's plan, made on first use
        self._plan: dict[Board, str] = {}
        self.optimal = len(walk)
        budget = self.optimal + params.slack
        return _intro(n, budget, start), budget

    def _scramble(self, n: int, target: int) -> tuple[list[Board], list[str]]:
        """Walk away from the goal with Manhattan-increasing moves; return the boards walked (goal first) and
        the walk's directions (its reverse is an optimal solution).

        A walk can get stuck (no move increases the distance); we keep the longest of a few tries.
        """
        randbelow = self.rng._randbelow  # type: ignore[attr-defined]  # what randrange(k) draws, one frame less
        goal = self.goal
        best: tuple[list[Board], list[str]] = ([goal], [])
        for _ in range(12):
            board, boards = goal, [goal]
            walk: list[str] = []
            while len(walk) < target:
                options = (_BOARDS.get(board) or board_facts(board, n))[4]
                if not options:
                    break
                d, board = options[randbelow(len(options))]  # a draw even for one option: the stream's rule
                walk.append(d)
                boards.append(board)
            if len(walk) > len(best[1]):
                best = (boards, walk)
            if len(walk) == target:
                break
        return best

    @property
    def plan(self) -> dict[Board, str]:
        """The oracle's moves, board -> direction: the scramble reversed (built when the oracle first asks: an
        episode without an oracle never needs it), then extended by re-planning (`_remember`)."""
        if self._walk is not None:
            boards, walk = self._walk
            # the reversed walk, board by board from the start: each undoes the walk's move into that board
            self._plan = {boards[k]: _OPPOSITE[walk[k - 1]] for k in range(len(walk), 0, -1)}
            self._walk = None
        return self._plan

    def _remember(self, start: tuple[int, ...]) -> bool:
        """Re-plan from `start`: IDA* when it finishes under the node cap, else undo recorded moves to the plan."""
        n = self.params.size
        moves = ida_star(start, n)
        if moves is not None:
            state = start
            for d in moves:
                self.plan[state] = d
                state = apply_move(state, d, n)
            return True
        # Each undo points to a strictly earlier visit, ending on the most recent on-plan board: no cycles.
        last = max((k for k, s in enumerate(self.history) if s in self.plan or s == self.goal), default=0)
        for k in range(len(self.history) - 1, last, -1):
            here, before = self.history[k], self.history[k - 1]
            self.plan[here] = next(
                _OPPOSITE[d] for d in legal_directions(before.index(0), n) if apply_move(before, d, n) == here
            )
        return False

    def render_board(self) -> str:
        return board_view(self.state, self.params.size)[0]

    def _apply(self, call: Slide) -> StepOutcome:  # type: ignore[override]
        n = self.params.size
        direction = call.direction
        _, before, blank, moves, _ = _BOARDS.get(self.state) or board_facts(self.state, n)
        move = moves.get(direction)
        if move is None:
            legal = _legal_table(n)[blank]
            r, c = divmod(blank, n)
            edge = {"up": "bottom row", "down": "top row", "left": "rightmost column", "right": "leftmost column"}
            return StepOutcome(
                feedback=Feedback(
                    summary=f"No tile can slide {call.direction}: the blank is in the {edge[call.direction]} "
                    f"(row {r + 1}, column {c + 1}).",
                    error=f"legal moves now: {', '.join(legal)}",
                ),
                state=self.render_board(),
            )
        self.state = state = move[0]
        tile = move[1]
        self.history.append(state)
        facts = _BOARDS.get(state) or board_facts(state, n)  # the table's hit without a call
        text, after = facts[0], facts[1]
        if after == 0:  # every tile home: the goal
            return self.solved(f"Tile {tile} slid {direction}: solved!", text)
        hint = None
        if self.params.show_distance:
            hint = f"total Manhattan distance of the tiles to their goals: {after} (was {before})"
        # positional: a keyword call into the dataclasses' __init__ costs about twice as much (hot path)
        return StepOutcome(Feedback(f"Tile {tile} slid {direction}.", None, None, hint), text)

    _TEXT = re.compile(r"(?:slide|move)?\s*(up|down|left|right|u|d|l|r)\.?", re.I)

    def _text_form(self, text: str) -> ToolCall | None:
        m = self._TEXT.fullmatch(text)
        if not m:
            return None
        word = m.group(1).lower()
        return ToolCall(name="slide", arguments={"direction": _SHORT_WORDS.get(word, word)})

    def oracle_action(self) -> str:
        if self.state not in self.plan:
            self._remember(self.state)
        return self.plan.get(self.state, "up")

    def random_action(self, rng: np.random.Generator) -> str:
        legal = legal_directions(self.state.index(0), self.params.size)
        return Slide(direction=legal[int(rng.integers(len(legal)))]).to_action()  # type: ignore[arg-type]
