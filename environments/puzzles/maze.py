"""Maze: walk from your position `A` to the goal `G` through a perfect maze, one square per turn.

Difficulty grows the maze (2×2 → 8×8 cells, i.e. 5×5 → 17×17 squares), puts the goal at the square
farthest from the start (so the optimal path grows with size) and shrinks the turn budget's slack (from
+150% of the optimal path to +20%). A BFS distance field from the goal is the solver: it proves the
optimal length at generation and gives the oracle's next step from any square.

This module also holds the direction vocabulary the grid families (FrozenLake, Sokoban) share.
"""

from __future__ import annotations

import functools
import math
import re
from typing import ClassVar, Literal

import numpy as np
from pydantic import ConfigDict, Field

from envgym.actions import Tool, ToolCall
from envgym.core import Feedback, StepOutcome
from envgym.environments.puzzles.base import PuzzleEnv, PuzzleParams, lerp_int

Direction = Literal["up", "down", "left", "right"]
DIRECTIONS: tuple[Direction, ...] = ("up", "down", "left", "right")
DELTAS: dict[str, tuple[int, int]] = {"up": (-1, 0), "down": (1, 0), "left": (0, -1), "right": (0, 1)}
COMPASS = {"up": "north", "down": "south", "left": "west", "right": "east"}
_ALIASES = {
    "up": "up", "u": "up", "north": "up", "n": "up", "w": "up",
    "down": "down", "d": "down", "south": "down", "s": "down",
    "left": "left", "l": "left", "west": "left", "a": "left",
    "right": "right", "r": "right", "east": "right", "e": "right",
}  # fmt: skip
# WASD keys win over compass initials for the one ambiguous letter pair: `w` is up, `a` left; `e` is east.
_DIRECTION_TEXT = re.compile(r"(?:(?:move|go|walk|push|step)\s*:?\s*)?([a-z]+)\.?", re.I)

DIRECTION_HELP = "a bare direction: `up`, `down`, `left`, `right` (or `u`/`d`/`l`/`r`, `north`/..., `move up`)"


def parse_direction(text: str) -> str | None:
    """The direction named by a short text action such as `up`, `move left`, `n`; None if it names none."""
    match = _DIRECTION_TEXT.fullmatch(text.strip())
    return _ALIASES.get(match.group(1).lower()) if match else None


@functools.cache
def _cell_neighbours(rows: int, cols: int) -> dict[int, tuple[int, ...]]:
    """Flat square index of each maze cell -> the cells two squares away (up, down, left, right)."""
    w = 2 * cols + 1
    table = {}
    for r in range(rows):
        for c in range(cols):
            here = (2 * r + 1) * w + 2 * c + 1
            nbrs = [(r + dr, c + dc) for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1))]
            table[here] = tuple((2 * a + 1) * w + 2 * b + 1 for a, b in nbrs if 0 <= a < rows and 0 <= b < cols)
    return table


class Move(Tool):
    """Move one square in a direction. Walls block you: bumping one costs the turn and you stay put."""

    model_config = ConfigDict(frozen=True)  # a call is a value: the env may reuse it for the same text
    name: ClassVar[str] = "move"
    direction: Direction = Field(description="which way to move: up, down, left or right")


class MazeParams(PuzzleParams):
    rows: int = Field(default=5, ge=1, le=40, description="maze height in cells (squares = 2*rows+1)")
    cols: int = Field(default=5, ge=2, le=40, description="maze width in cells (squares = 2*cols+1)")
    slack_ratio: float = Field(default=0.8, ge=0.0, le=10.0, description="extra turns as a fraction of optimal")
    far_goal: bool = Field(default=True, description="put the goal on the square farthest from the start")


class MazeEnv(PuzzleEnv):
    env_id: ClassVar[str] = "envgym/Maze-v0"
    family: ClassVar[str] = "maze"
    tools: ClassVar[tuple[type[Tool], ...]] = (Move,)
    Params: ClassVar[type[PuzzleParams]] = MazeParams
    text_form_help: ClassVar[str] = DIRECTION_HELP

    params: MazeParams

    def params_for(self, difficulty: float) -> MazeParams:
        side = lerp_int(difficulty, 2, 8)
        return MazeParams(rows=side, cols=side, slack_ratio=1.5 - 1.3 * difficulty)

    def _new_puzzle(self, params: MazeParams) -> tuple[str, int]:  # type: ignore[override]
        rows, cols = params.rows, params.cols
        self.height, self.width = 2 * rows + 1, 2 * cols + 1
        w = self.width
        self.open = self._carve(rows, cols)
        cells = [(2 * r + 1) * w + 2 * c + 1 for r in range(rows) for c in range(cols)]
        start = cells[self.rng.randrange(len(cells))]
        if params.far_goal:
            from_start = self._distances(start)
            goal = max(cells, key=lambda cell: (from_start[cell], cell))
        else:
            others = [cell for cell in cells if cell != start]
            goal = others[self.rng.randrange(len(others))]
        self.pos, self.goal = divmod(start, w), divmod(goal, w)
        self.dist = self._distances(goal)
        self.optimal = self.dist[start]
        self.rows_text = ["".join("." if self.open[r * w + c] else "#" for c in range(w)) for r in range(self.height)]
        budget = self.optimal + max(2, math.ceil(self.optimal * params.slack_ratio))
        intro = (
            f"Maze of {self.height}x{self.width} squares: '#' is wall, '.' is open floor, you are 'A', the goal is 'G'.\n"
            f"Reach the goal in at most {budget} moves. Rows count down from 0 at the top, columns right from 0.\n"
            'Move with {"name": "move", "arguments": {"direction": "up"}} or just write `up`, `down`, `left`, '
            "`right`.\n\n" + self.board()
        )
        return intro, budget

    def _carve(self, rows: int, cols: int) -> list[bool]:
        """Randomised depth-first carving: a perfect maze (exactly one path between any two squares).

        Works on flat square indices; `open[i]` says whether square i is floor."""
        w = 2 * cols + 1
        open_ = [False] * ((2 * rows + 1) * w)
        rng = self.rng
        start = (2 * rng.randrange(rows) + 1) * w + 2 * rng.randrange(cols) + 1
        open_[start] = True
        table = _cell_neighbours(rows, cols)
        random = rng.random
        stack = [start]
        while stack:
            cell = stack[-1]
            nbrs = [n for n in table[cell] if not open_[n]]
            if not nbrs:
                stack.pop()
                continue
            nxt = nbrs[int(random() * len(nbrs))]
            open_[nxt] = True
            open_[(cell + nxt) // 2] = True  # the wall square between the two cells
            stack.append(nxt)
        return open_

    def _distances(self, source: int) -> list[int]:
        """BFS distance (in moves) from `source` to every square; -1 where unreachable or wall."""
        w, open_ = self.width, self.open
        dist = [-1] * len(open_)
        dist[source] = 0
        queue = [source]
        for cell in queue:
            d = dist[cell] + 1
            for nxt in (cell - w, cell + w, cell - 1, cell + 1):
                if open_[nxt] and dist[nxt] < 0:
                    dist[nxt] = d
                    queue.append(nxt)
        return dist

    def _is_open(self, r: int, c: int) -> bool:
        return 0 <= r < self.height and 0 <= c < self.width and self.open[r * self.width + c]

    # ----- views ---------------------------------------------------------------------------------------
    def board(self) -> str:
        rows = list(self.rows_text)
        for (r, c), ch in ((self.goal, "G"), (self.pos, "A")):
            rows[r] = rows[r][:c] + ch + rows[r][c + 1 :]
        return f"You are at (row {self.pos[0]}, col {self.pos[1]}); the goal is at {self.goal}.\n" + "\n".join(rows)

    def surroundings(self) -> str:
        r, c = self.pos
        open_dirs = [d for d in DIRECTIONS if self._is_open(r + DELTAS[d][0], c + DELTAS[d][1])]
        walls = [d for d in DIRECTIONS if d not in open_dirs]
        return f"Open: {', '.join(open_dirs) or 'none'}. Walls: {', '.join(walls) or 'none'}."

    # ----- actions -------------------------------------------------------------------------------------
    def _text_form(self, text: str) -> ToolCall | None:
        direction = parse_direction(text)
        return ToolCall(name="move", arguments={"direction": direction}) if direction else None

    def _apply(self, call: Move) -> StepOutcome:  # type: ignore[override]
        dr, dc = DELTAS[call.direction]
        r, c = self.pos
        target = (r + dr, c + dc)
        if not self._is_open(*target):
            return StepOutcome(
                feedback=Feedback(
                    summary=f"Bumped into the wall {COMPASS[call.direction]} of you at {target}; you stay at {self.pos}.",
                    details=self.surroundings(),
                ),
                state=self.board(),
            )
        self.pos = target
        if target == self.goal:
            return self.solved(f"Reached the goal at {target} in {self.turn} moves!", self.board())
        left = self.max_turns - self.turn
        hint = (
            f"the goal is {self.dist[target[0] * self.width + target[1]]} moves away"
            if self.params.slack_ratio >= 1.0
            else None
        )
        return StepOutcome(
            feedback=Feedback(
                summary=f"Moved {call.direction} to {target}. {left} moves left.",
                details=self.surroundings(),
                hint=hint,
            ),
            state=self.board(),
        )

    def oracle_action(self) -> str:
        r, c = self.pos
        here = self.dist[r * self.width + c]
        for d in DIRECTIONS:
            nr, nc = r + DELTAS[d][0], c + DELTAS[d][1]
            if self._is_open(nr, nc) and self.dist[nr * self.width + nc] < here:
                return Move(direction=d).to_action()
        return Move(direction="up").to_action()

    def random_action(self, rng: np.random.Generator) -> str:
        r, c = self.pos
        valid = [d for d in DIRECTIONS if self._is_open(r + DELTAS[d][0], c + DELTAS[d][1])] or list(DIRECTIONS)
        return Move(direction=valid[int(rng.integers(len(valid)))]).to_action()
