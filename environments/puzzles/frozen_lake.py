"""FrozenLake: cross a frozen lake from `S` (top-left) to `G` (bottom-right) without stepping into a hole `H`.

Difficulty grows the lake (3×3 → 8×8), raises the hole density (10% → 30%) and shrinks the turn budget's
slack (+150% → +20% of the optimal path). Holes are redrawn until a BFS finds a path (the solver); after a
few failed draws a random monotone path is cleared, so generation is bounded and deterministic. Walking
into a hole ends the episode as failed. Ice is not slippery by default; with `slippery=True` a move goes
sideways with probability 1/3 each way (drawn from the task RNG), and the solvability guarantee then only
holds for the intended moves.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
from pydantic import ConfigDict, Field

from envgym.actions import Tool, ToolCall
from envgym.core import Feedback, StepOutcome
from envgym.environments.puzzles.base import PuzzleEnv, PuzzleParams, lerp_int
from envgym.environments.puzzles.maze import COMPASS, DELTAS, DIRECTION_HELP, DIRECTIONS, Direction, parse_direction

_SIDEWAYS = {"up": ("left", "right"), "down": ("left", "right"), "left": ("up", "down"), "right": ("up", "down")}


class Step(Tool):
    """Step one square in a direction on the ice. The lake's edge blocks you (you stay put); a hole ends
    the episode."""

    model_config = ConfigDict(frozen=True)  # a call is a value: the env may reuse it for the same text
    name: ClassVar[str] = "move"
    direction: Direction = Field(description="which way to step: up, down, left or right")


class FrozenLakeParams(PuzzleParams):
    size: int = Field(default=5, ge=2, le=30, description="the lake is size x size squares")
    hole_density: float = Field(default=0.2, ge=0.0, le=0.6, description="fraction of squares that are holes")
    slack_ratio: float = Field(default=0.8, ge=0.0, le=10.0, description="extra turns as a fraction of optimal")
    slippery: bool = Field(default=False, description="moves slip sideways with probability 2/3")


class FrozenLakeEnv(PuzzleEnv):
    env_id: ClassVar[str] = "envgym/FrozenLake-v0"
    family: ClassVar[str] = "frozen_lake"
    tools: ClassVar[tuple[type[Tool], ...]] = (Step,)
    Params: ClassVar[type[PuzzleParams]] = FrozenLakeParams
    text_form_help: ClassVar[str] = DIRECTION_HELP

    params: FrozenLakeParams

    def params_for(self, difficulty: float) -> FrozenLakeParams:
        return FrozenLakeParams(
            size=lerp_int(difficulty, 3, 8),
            hole_density=0.1 + 0.2 * difficulty,
            slack_ratio=1.5 - 1.3 * difficulty,
        )

    def _new_puzzle(self, params: FrozenLakeParams) -> tuple[str, int]:  # type: ignore[override]
        n = params.size
        self.start, self.goal = 0, n * n - 1
        n_holes = min(round(params.hole_density * n * n), n * n - 2)
        rng = self.rng
        for _ in range(8):
            self.holes = self._draw_holes(n_holes)
            self.dist = self._distances()
            if self.dist[self.start] >= 0:
                break
        else:  # clear a random monotone path from S to G, keep the other holes
            cell, path = 0, {0}
            rights = [1] * (n - 1) + [n] * (n - 1)
            rng.shuffle(rights)
            for step in rights:
                cell += step
                path.add(cell)
            self.holes = [h and i not in path for i, h in enumerate(self.holes)]
            self.dist = self._distances()
        self.pos = self.start
        self.optimal = self.dist[self.start]
        budget = self.optimal + max(2, math.ceil(self.optimal * params.slack_ratio))
        slip = (
            "The ice is slippery: a move may slide you sideways."
            if params.slippery
            else "The ice is not slippery: you go where you step."
        )
        intro = (
            f"FrozenLake {n}x{n}: walk from S (top-left) to G (bottom-right) in at most {budget} moves without "
            f"stepping into a hole H. '.' is safe ice, A is you. {slip}\n"
            "Rows count down from 0 at the top, columns right from 0. Stepping off the lake is blocked.\n"
            'Move with {"name": "move", "arguments": {"direction": "down"}} or just write `down`.\n\n' + self.board()
        )
        return intro, budget

    def _draw_holes(self, n_holes: int) -> list[bool]:
        n = self.params.size
        holes = [False] * (n * n)
        for i in self.rng.sample(range(1, n * n - 1), n_holes):
            holes[i] = True
        return holes

    def _distances(self) -> list[int]:
        """BFS distance to the goal over safe squares (-1: cannot reach it)."""
        n, holes = self.params.size, self.holes
        dist = [-1] * (n * n)
        dist[self.goal] = 0
        queue = [self.goal]
        for cell in queue:
            d = dist[cell] + 1
            r, c = divmod(cell, n)
            for nxt in self._neighbours(r, c):
                if not holes[nxt] and dist[nxt] < 0:
                    dist[nxt] = d
                    queue.append(nxt)
        return dist

    def _neighbours(self, r: int, c: int) -> list[int]:
        n = self.params.size
        out = []
        for dr, dc in DELTAS.values():
            if 0 <= r + dr < n and 0 <= c + dc < n:
                out.append((r + dr) * n + c + dc)
        return out

    # ----- views ---------------------------------------------------------------------------------------
    def board(self) -> str:
        n = self.params.size
        chars = ["H" if h else "." for h in self.holes]
        chars[self.start], chars[self.goal] = "S", "G"
        chars[self.pos] = "A"
        rows = ["".join(chars[r * n : (r + 1) * n]) for r in range(n)]
        return f"You are at (row {self.pos // n}, col {self.pos % n}).\n" + "\n".join(rows)

    def _rc(self, cell: int) -> tuple[int, int]:
        return divmod(cell, self.params.size)

    # ----- actions -------------------------------------------------------------------------------------
    def _text_form(self, text: str) -> ToolCall | None:
        direction = parse_direction(text)
        return ToolCall(name="move", arguments={"direction": direction}) if direction else None

    def _apply(self, call: Step) -> StepOutcome:  # type: ignore[override]
        n = self.params.size
        direction: str = call.direction
        note = ""
        if self.params.slippery:
            roll = self.rng.randrange(3)
            if roll:
                direction = _SIDEWAYS[call.direction][roll - 1]
                note = f"You slipped: instead of {call.direction} you went {direction}. "
        r, c = self._rc(self.pos)
        dr, dc = DELTAS[direction]
        if not (0 <= r + dr < n and 0 <= c + dc < n):
            return StepOutcome(
                feedback=Feedback(
                    summary=f"{note}The lake's edge is {COMPASS[direction]} of you; you stay at {(r, c)}.",
                    details=self._around(),
                ),
                state=self.board(),
            )
        self.pos = (r + dr) * n + c + dc
        where = (r + dr, c + dc)
        if self.holes[self.pos]:
            return self.failed(f"{note}You fell into a hole at {where}. Episode over.", self.board())
        if self.pos == self.goal:
            return self.solved(f"{note}Reached the goal at {where} in {self.turn} moves!", self.board())
        left = self.max_turns - self.turn
        hint = f"the goal is {self.dist[self.pos]} safe moves away" if self.params.slack_ratio >= 1.0 else None
        return StepOutcome(
            feedback=Feedback(
                summary=f"{note}Moved {direction} to {where}. {left} moves left.", details=self._around(), hint=hint
            ),
            state=self.board(),
        )

    def _around(self) -> str:
        """Which neighbouring squares are holes or the edge: what a careful agent checks before stepping."""
        n = self.params.size
        r, c = self._rc(self.pos)
        parts = []
        for d in DIRECTIONS:
            dr, dc = DELTAS[d]
            if not (0 <= r + dr < n and 0 <= c + dc < n):
                parts.append(f"{d}: edge")
            else:
                parts.append(f"{d}: {'HOLE' if self.holes[(r + dr) * n + c + dc] else 'ice'}")
        return "Around you: " + ", ".join(parts) + "."

    def oracle_action(self) -> str:
        n = self.params.size
        r, c = self._rc(self.pos)
        here = self.dist[self.pos]
        best: tuple[int, str] | None = None
        for d in DIRECTIONS:
            dr, dc = DELTAS[d]
            if 0 <= r + dr < n and 0 <= c + dc < n:
                nd = self.dist[(r + dr) * n + c + dc]
                if 0 <= nd < here and (best is None or nd < best[0]):
                    best = (nd, d)
        return Step(direction=best[1] if best else "down").to_action()  # type: ignore[arg-type]

    def random_action(self, rng: np.random.Generator) -> str:
        n = self.params.size
        r, c = self._rc(self.pos)
        valid = [d for d in DIRECTIONS if 0 <= r + DELTAS[d][0] < n and 0 <= c + DELTAS[d][1] < n]
        return Step(direction=valid[int(rng.integers(len(valid)))]).to_action()  # type: ignore[arg-type]
