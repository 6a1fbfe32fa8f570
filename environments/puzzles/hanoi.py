"""Tower of Hanoi: move every disc onto the target peg, one disc at a time, never a larger disc on a smaller.

Difficulty raises the number of discs (3 → 7, optimal 7 → 127 moves) and shrinks the turn budget's slack
(from +100% of the optimal length to +10%). The task seed picks the target peg and, when `random_start` is
set, a random legal starting position. The solver is the classic recursion, generalised to any legal
position, so the oracle works from wherever the agent left the discs.
"""

from __future__ import annotations

import functools
import math
import re
from typing import ClassVar

import numpy as np
from pydantic import ConfigDict, Field

from envgym.actions import Tool, ToolCall
from envgym.core import Feedback, StepOutcome
from envgym.environments.puzzles.base import PuzzleEnv, PuzzleParams, lerp_int

PEG_LETTERS = "ABC"
_TEXT_FORM = re.compile(
    r"(?:move\s*:?\s*)?(?:from\s+)?(?:peg\s*)?([0-2abc])\s*(?:->|→|to|,|\s)\s*(?:peg\s*)?([0-2abc])\.?", re.I
)
_VIEW_CACHE_LIMIT = 10_000  # (board, optimal length) per position; 3**discs positions per (discs, target)


class MoveDisc(Tool):
    """Move the top disc of one peg onto another peg. Pegs are numbered 0, 1, 2 (also called A, B, C).
    A disc may only be placed on an empty peg or on a larger disc."""

    model_config = ConfigDict(frozen=True)  # a call is a value: the env may reuse it for the same text
    name: ClassVar[str] = "move"
    from_peg: int = Field(description="peg to take the top disc from: 0, 1 or 2")
    to_peg: int = Field(description="peg to put the disc on: 0, 1 or 2")


class HanoiParams(PuzzleParams):
    discs: int = Field(default=5, ge=1, le=12, description="number of discs (optimal moves 2^discs - 1)")
    slack_ratio: float = Field(default=0.5, ge=0.0, le=10.0, description="extra turns as a fraction of optimal")
    random_start: bool = Field(default=False, description="start from a random legal position")


def first_move(pos: list[int], k: int, target: int) -> tuple[int, int] | None:
    """First move of the optimal plan that gathers discs 1..k (pos[i] = peg of disc i) on `target`."""
    while k > 0:
        if pos[k] == target:
            k -= 1
            continue
        other = 3 - pos[k] - target
        sub = first_move(pos, k - 1, other)
        return sub if sub is not None else (pos[k], target)
    return None


def optimal_moves(pos: list[int], k: int, target: int) -> int:
    """Length of the optimal plan that gathers discs 1..k on `target` from position `pos`."""
    total = 0
    while k > 0:
        if pos[k] == target:
            k -= 1
            continue
        other = 3 - pos[k] - target
        return total + optimal_moves(pos, k - 1, other) + (1 << (k - 1))
    return total


@functools.cache
def _views(discs: int, target: int) -> dict[tuple[int, ...], tuple[str, int]]:
    """Position -> (board text, optimal moves left), per (discs, target): both are pure functions of the
    position, and an episode revisits few of them, so each is computed once (bounded: cleared when full)."""
    return {}


@functools.lru_cache(maxsize=1024)
def _intro(discs: int, target: int, budget: int, board: str) -> str:
    """The task text: a pure function of its parts, which recur (one per start position and budget)."""
    return (
        f"Tower of Hanoi with {discs} discs (1 = smallest, {discs} = largest) on pegs 0, 1, 2 (also A, B, C).\n"
        f"Goal: move all discs onto peg {target} in at most {budget} moves.\n"
        "Rules: move one top disc at a time; never put a larger disc on a smaller one.\n"
        'Act with {"name": "move", "arguments": {"from_peg": 0, "to_peg": 2}} or the short form '
        "`move 0 2` (pegs as 0-2 or A-C).\n\n" + board
    )


class HanoiEnv(PuzzleEnv):
    env_id: ClassVar[str] = "envgym/Hanoi-v0"
    family: ClassVar[str] = "hanoi"
    tools: ClassVar[tuple[type[Tool], ...]] = (MoveDisc,)
    Params: ClassVar[type[PuzzleParams]] = HanoiParams
    text_form_help: ClassVar[str] = "`move FROM TO` with pegs 0-2 or A-C, e.g. `move 0 2` or `A C`"

    params: HanoiParams
    optimal: int  # optimal moves from the start position
    _stacks: list[list[int]]
    # the fixed start per target (pos, stacks, optimal length, budget, intro) for the last params object (shared by
    # every task at the same settings): a fixed-start reset copies two small lists instead of rebuilding them
    _starts: tuple[HanoiParams | None, dict[int, tuple[list[int], list[list[int]], int, int, str]]] = (None, {})

    def params_for(self, difficulty: float) -> HanoiParams:
        return HanoiParams(discs=lerp_int(difficulty, 3, 7), slack_ratio=1.0 - 0.9 * difficulty)

    def _new_puzzle(self, params: HanoiParams) -> tuple[str, int]:  # type: ignore[override]
        n = params.discs
        if params.random_start:
            self.target = self.rng.randint(1, 2)
            self.pos = [0] + [self.rng.randrange(3) for _ in range(n)]
            return self._settle(params)
        self.target = target = 1 + self.only_draw(2)  # = rng.randint(1, 2), the task's only draw
        if self._starts[0] is not params:
            self._starts = (params, {})
        start = self._starts[1].get(target)
        if start is None:
            self.pos = [0] * (n + 1)  # pos[i]: peg of disc i (1 = smallest); pos[0] unused
            intro, budget = self._settle(params)
            start = self._starts[1][target] = (self.pos.copy(), self._stacks, self.optimal, budget, intro)
        pos, stacks, self.optimal, budget, intro = start
        self.pos, self._stacks = pos.copy(), [stacks[0].copy(), stacks[1].copy(), stacks[2].copy()]
        self._view_table = _views(n, target)
        return intro, budget

    def _settle(self, params: HanoiParams) -> tuple[str, int]:
        """Stacks, view table, optimal length, budget and intro of the start position in `self.pos`."""
        n = params.discs
        if self.pos.count(self.target) == n:  # pos[0] is 0, never a target (1 or 2): every disc on the target
            self.pos[n] = (self.target + 1) % 3  # never hand out a solved puzzle
        self._stacks = self._build_stacks()
        self._view_table = _views(n, self.target)
        board, self.optimal = self._view()
        budget = self.optimal + max(1, math.ceil(self.optimal * params.slack_ratio))
        return _intro(n, self.target, budget, board), budget

    # ----- state ---------------------------------------------------------------------------------------
    def stacks(self) -> list[list[int]]:
        """Discs on each peg, bottom to top (kept up to date move by move; do not mutate)."""
        return self._stacks

    def _build_stacks(self) -> list[list[int]]:
        stacks: list[list[int]] = [[], [], []]
        for disc in range(self.params.discs, 0, -1):
            stacks[self.pos[disc]].append(disc)
        return stacks

    def _view(self) -> tuple[str, int]:
        """(board text, optimal moves left) of the current position, from the per-shape table."""
        key = tuple(self.pos)
        view = self._view_table.get(key)
        if view is None:
            if len(self._view_table) >= _VIEW_CACHE_LIMIT:
                self._view_table.clear()
            view = self._view_table[key] = (self._render(), optimal_moves(self.pos, self.params.discs, self.target))
        return view

    def board(self) -> str:
        """The pegs as text (what every observation shows)."""
        return self._view()[0]

    def _render(self) -> str:
        lines = []
        for peg, stack in enumerate(self.stacks()):
            mark = "  <- target" if peg == self.target else ""
            discs = " ".join(map(str, stack)) if stack else "(empty)"
            lines.append(f"Peg {peg} ({PEG_LETTERS[peg]}): {discs}{mark}")
        return "Pegs, bottom to top:\n" + "\n".join(lines)

    def _legal_moves(self) -> list[tuple[int, int]]:
        tops = [stack[-1] if stack else None for stack in self.stacks()]
        moves = []
        for a in range(3):
            top_a = tops[a]
            if top_a is None:
                continue
            for b in range(3):
                top_b = tops[b]
                if a != b and (top_b is None or top_b > top_a):
                    moves.append((a, b))
        return moves

    # ----- actions -------------------------------------------------------------------------------------
    def _text_form(self, text: str) -> ToolCall | None:
        match = _TEXT_FORM.fullmatch(text.strip())
        if not match:
            return None
        a, b = (int(g) if g.isdigit() else "abc".index(g.lower()) for g in match.groups())
        return ToolCall(name="move", arguments={"from_peg": a, "to_peg": b})

    def _apply(self, call: MoveDisc) -> StepOutcome:  # type: ignore[override]
        a, b = call.from_peg, call.to_peg
        if not (0 <= a <= 2 and 0 <= b <= 2):
            return self._illegal(f"pegs are 0, 1 and 2; got from_peg={a}, to_peg={b}")
        if a == b:
            return self._illegal(f"from_peg and to_peg are both {a}; a move must change pegs")
        stacks = self.stacks()
        if not stacks[a]:
            return self._illegal(f"peg {a} is empty; there is no disc to move")
        disc = stacks[a][-1]
        if stacks[b] and stacks[b][-1] < disc:
            return self._illegal(f"disc {disc} is larger than disc {stacks[b][-1]} on top of peg {b}")
        self.pos[disc] = b
        stacks[b].append(stacks[a].pop())
        board, remaining = self._view()
        if remaining == 0:  # every disc on the target peg
            return self.solved(f"Moved disc {disc} from peg {a} to peg {b}. Solved in {self.turn} moves!", board)
        left = self.max_turns - self.turn
        hint = f"{remaining} moves are still needed at best" if self.params.slack_ratio >= 0.5 else None
        # positional: a keyword call into the dataclasses' __init__ costs about twice as much (hot path)
        return StepOutcome(
            Feedback(f"Moved disc {disc} from peg {a} to peg {b}. {left} moves left.", None, None, hint), board
        )

    def _illegal(self, reason: str) -> StepOutcome:
        return StepOutcome(
            feedback=Feedback(summary="Illegal move; nothing changed (this cost a turn).", error=reason),
            state=self.board(),
        )

    def oracle_action(self) -> str:
        move = first_move(self.pos, self.params.discs, self.target)
        a, b = move if move is not None else (0, 1)
        return MoveDisc(from_peg=a, to_peg=b).to_action()

    def random_action(self, rng: np.random.Generator) -> str:
        moves = self._legal_moves()
        a, b = moves[int(rng.integers(len(moves)))]
        return MoveDisc(from_peg=a, to_peg=b).to_action()
