"""`envgym/Puzzle-v0`: one env id that samples a puzzle family per task (weights settable).

Why: a trainer that wants breadth makes one env; the family is drawn from the task seed, so a task is still
fully determined by (seed, options) and replays exactly.
"""

from __future__ import annotations

from typing import ClassVar

from envgym.core import TextEnv
from envgym.families import MixtureEnv
from envgym.families import family_classes as _registered

MIXTURE_ID = "envgym/Puzzle-v0"


def family_classes() -> dict[str, type[TextEnv]]:
    """Short family name (e.g. `Maze`) -> env class, for every registered puzzle family."""
    return _registered("puzzles", MIXTURE_ID, lambda env_id: env_id.split("/")[-1].removesuffix("-v0"))


# The families this version draws from when neither `families` nor `weights` is given, in their draw order.
# Pinned so that a new family (its module, registry entry and test) does not change the task an existing
# seed gives here (tests/environments/puzzles/test_frozen_trajectories.py); a new family is reachable at
# once with `families=` or `weights=`, and joins the default draw with a version bump of this env.
DEFAULT_FAMILIES = (
    "GuessNumber", "Sokoban", "Maze", "FrozenLake", "Mastermind", "Hanoi",
    "Sudoku", "LightsOut", "Sliding", "Minesweeper", "NQueens",
)  # fmt: skip


class PuzzleMixtureEnv(MixtureEnv):
    env_id: ClassVar[str] = MIXTURE_ID
    kind: ClassVar[str] = "puzzle"
    # v1: every family's task stream changed (CounterRandom); v2: Minesweeper's did (its v2: one draw per board)
    version: ClassVar[str] = "2"  # docs/puzzles.md, "Versions"

    def __init__(
        self,
        weights: dict[str, float] | None = None,
        families: list[str] | None = None,
        difficulty: float | None = None,
        max_turns: int | None = None,
        render_mode: str | None = None,
    ) -> None:
        super().__init__(
            family_classes(),
            families if families is not None or weights else list(DEFAULT_FAMILIES),
            weights,
            lambda cls: cls(render_mode=render_mode),
            difficulty=difficulty,
            max_turns=max_turns,
            render_mode=render_mode,
        )
