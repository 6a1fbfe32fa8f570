"""Env ids and their registration with gymnasium.

Why strings: registration must stay cheap (`import envgym` never imports torch, docker or an env module);
gymnasium resolves the entry point on `gym.make`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym

PUZZLES = "envgym.environments.puzzles"


@dataclass(frozen=True)
class EnvEntry:
    id: str
    entry_point: str
    family: str
    description: str
    kwargs: dict[str, Any] = field(default_factory=dict)

    def load_class(self) -> type:
        module, _, name = self.entry_point.partition(":")
        return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


# One line per env. Puzzle families: envgym/<Family>-v0.
ENTRIES: list[EnvEntry] = [
    EnvEntry("envgym/Puzzle-v0", f"{PUZZLES}.mixture:PuzzleMixtureEnv", "puzzles", "samples a puzzle family per task"),
    EnvEntry(
        "envgym/GuessNumber-v0",
        f"{PUZZLES}.guess_number:GuessNumberEnv",
        "puzzles",
        "binary search with higher/lower feedback",
    ),
    # --- puzzle families A (Sokoban, Maze, FrozenLake, Mastermind, Hanoi) ---
    EnvEntry(
        "envgym/Sokoban-v0",
        f"{PUZZLES}.sokoban:SokobanEnv",
        "puzzles",
        "push boxes onto goals; reverse-play levels, deadlock feedback",
    ),
    EnvEntry("envgym/Maze-v0", f"{PUZZLES}.maze:MazeEnv", "puzzles", "walk a perfect maze; walls bumped are reported"),
    EnvEntry(
        "envgym/FrozenLake-v0",
        f"{PUZZLES}.frozen_lake:FrozenLakeEnv",
        "puzzles",
        "cross the ice to the goal without falling into a hole",
    ),
    EnvEntry(
        "envgym/Mastermind-v0",
        f"{PUZZLES}.mastermind:MastermindEnv",
        "puzzles",
        "find the colour code from black/white peg feedback",
    ),
    EnvEntry("envgym/Hanoi-v0", f"{PUZZLES}.hanoi:HanoiEnv", "puzzles", "Tower of Hanoi; illegal moves name the discs"),
    # --- puzzle families B (Sudoku, LightsOut, Sliding, Minesweeper, NQueens) ---
    EnvEntry(
        "envgym/Sudoku-v0", f"{PUZZLES}.sudoku:SudokuEnv", "puzzles", "4×4 to 9×9 sudoku; names the broken constraint"
    ),
    EnvEntry(
        "envgym/LightsOut-v0",
        f"{PUZZLES}.lights_out:LightsOutEnv",
        "puzzles",
        "switch all lights off; shows which lights toggled",
    ),
    EnvEntry(
        "envgym/Sliding-v0", f"{PUZZLES}.sliding:SlidingEnv", "puzzles", "8/15 sliding puzzle with exact optimal length"
    ),
    EnvEntry(
        "envgym/Minesweeper-v0",
        f"{PUZZLES}.minesweeper:MinesweeperEnv",
        "puzzles",
        "no-guess minesweeper; logic solver proves every board",
    ),
    EnvEntry(
        "envgym/NQueens-v0",
        f"{PUZZLES}.n_queens:NQueensEnv",
        "puzzles",
        "N-queens with clues; names the attacking queen",
    ),
    # --- tool use ---
    EnvEntry(
        "envgym/ToolUse-v0",
        "envgym.environments.tools.mixture:ToolUseMixtureEnv",
        "tools",
        "samples a tool-use family per task",
    ),
    EnvEntry(
        "envgym/ToolUse-SQL-v0",
        "envgym.environments.tools.database:SqlEnv",
        "tools",
        "questions over a read-only SQLite db",
    ),
    EnvEntry(
        "envgym/ToolUse-Lookup-v0",
        "envgym.environments.tools.lookup:LookupEnv",
        "tools",
        "multi-hop search/lookup over a KB",
    ),
    EnvEntry(
        "envgym/ToolUse-Compute-v0",
        "envgym.environments.tools.compute:ComputeEnv",
        "tools",
        "exact computation via a sandboxed python tool",
    ),
    EnvEntry(
        "envgym/ToolUse-Files-v0",
        "envgym.environments.tools.files:FilesEnv",
        "tools",
        "ls/read/grep over a generated file tree",
    ),
    EnvEntry(
        "envgym/ToolUse-API-v0",
        "envgym.environments.tools.api:ApiEnv",
        "tools",
        "stateful mock shop API with ordering rules",
    ),
    # --- swe ---
    EnvEntry(
        "envgym/SWE-v0",
        "envgym.environments.swe.env:SWEEnv",
        "swe",
        "fix a real bug in a real Python project inside a Docker sandbox; graded by its own tests",
    ),
    # --- toy worlds for learner tests (tiny vocabularies; see envgym.agents.toy) ---
    EnvEntry("envgym/ToyBandit-v0", "envgym.environments.toy.envs:ToyBanditEnv", "toy", "E1: one-step bandit"),
    EnvEntry("envgym/ToyGuess-v0", "envgym.environments.toy.envs:ToyGuessEnv", "toy", "E2: guess 1..16, h/l"),
    EnvEntry("envgym/ToyCode-v0", "envgym.environments.toy.envs:ToyCodeEnv", "toy", "E3: code-breaking, +/- marks"),
]


def register_all() -> None:
    """Register every envgym id with gymnasium (idempotent)."""
    for entry in ENTRIES:
        if entry.id not in gym.registry:
            gym.register(id=entry.id, entry_point=entry.entry_point, kwargs=dict(entry.kwargs))


def entry(env_id: str) -> EnvEntry:
    for e in ENTRIES:
        if e.id == env_id:
            return e
    known = ", ".join(e.id for e in ENTRIES)
    raise KeyError(f"unknown env id {env_id!r}; known ids: {known}")
