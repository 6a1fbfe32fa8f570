"""envgym/Sudoku-v0: generator uniqueness, and the rules."""

import random

import pytest

import envgym  # noqa: F401  (registers the ids)
from envgym.environments.puzzles.sudoku import BOX_SHAPES, SudokuEnv, box_of, shuffled_solution


def count_solutions(grid: list[int], size: int, limit: int = 2) -> int:
    """Naive independent counter (no bitmasks, no ordering tricks), for small grids."""
    try:
        i = grid.index(0)
    except ValueError:
        return 1
    r, c = divmod(i, size)
    total = 0
    for v in range(1, size + 1):
        if any(
            grid[j] == v
            and (j // size == r or j % size == c or box_of(j // size, j % size, size) == box_of(r, c, size))
            for j in range(size * size)
        ):
            continue
        grid[i] = v
        total += count_solutions(grid, size, limit - total)
        grid[i] = 0
        if total >= limit:
            break
    return total


def valid(grid: list[int], size: int) -> bool:
    groups: dict[tuple[str, int], set[int]] = {}
    for i, v in enumerate(grid):
        r, c = divmod(i, size)
        for key in (("r", r), ("c", c), ("b", box_of(r, c, size))):
            groups.setdefault(key, set()).add(v)
    return all(g == set(range(1, size + 1)) for g in groups.values())


@pytest.mark.parametrize("size", sorted(BOX_SHAPES))
def test_shuffled_grids_are_valid(size: int) -> None:
    rng = random.Random(0)
    for _ in range(50):
        assert valid(shuffled_solution(size, rng), size)


@pytest.mark.parametrize("difficulty", [0.0, 0.3, 0.5])
def test_puzzles_have_a_unique_solution_matching_the_stored_one(difficulty: float) -> None:
    env = SudokuEnv()
    for seed in range(15):
        env.reset(seed=seed, options={"difficulty": difficulty})
        n = env.params.size
        assert valid(env.solution, n)
        assert all(g in (0, s) for g, s in zip(env.givens, env.solution, strict=True))
        assert count_solutions(list(env.givens), n) == 1


def test_harder_means_bigger_grids_and_more_blanks() -> None:
    env = SudokuEnv()
    seen = []
    for d in (0.0, 0.25, 0.5, 0.75, 1.0):
        env.reset(seed=1, options={"difficulty": d})
        seen.append((env.params.size, env.n_blanks))
        assert env.max_turns > env.n_blanks
    assert [s for s, _ in seen] == sorted(s for s, _ in seen) and seen[0][0] == 4 and seen[-1][0] == 9
    assert [b for _, b in seen] == sorted(b for _, b in seen) and seen[-1][1] >= 45


def first_blank(env: SudokuEnv) -> tuple[int, int]:
    i = env.grid.index(0)
    return divmod(i, env.params.size)


def test_conflict_names_the_broken_constraint_and_leaves_the_grid() -> None:
    env = SudokuEnv()
    env.reset(seed=3, options={"params": {"size": 9, "blanks": 30}})
    n = 9
    for i, v in enumerate(env.grid):
        if v:
            continue
        r, c = divmod(i, n)
        row_digits = {env.grid[r * n + k] for k in range(n)} - {0}
        if row_digits:
            digit = min(row_digits)
            break
    before = list(env.grid)
    obs, reward, terminated, _, info = env.step(f"{r + 1} {c + 1} {digit}")
    assert f"row {r + 1} already has a {digit}" in info["feedback"]["error"]
    assert env.grid == before and reward == 0.0 and not terminated
    assert "Cannot write" in obs


def test_box_conflict_is_named() -> None:
    env = SudokuEnv()
    env.reset(seed=5, options={"params": {"size": 4, "blanks": 6}})
    n = 4
    for i, v in enumerate(env.grid):
        if v:
            continue
        r, c = divmod(i, n)
        box_only = [
            env.grid[j]
            for j in range(n * n)
            if env.grid[j] and box_of(j // n, j % n, n) == box_of(r, c, n) and j // n != r and j % n != c
        ]
        if box_only:
            break
    _obs, *_, info = env.step(f"place {r + 1} {c + 1} {box_only[0]}")
    assert f"box {box_of(r, c, n) + 1} already has a {box_only[0]}" in info["feedback"]["error"]


def test_givens_are_fixed_and_progress_is_counted() -> None:
    env = SudokuEnv()
    env.reset(seed=2, options={"difficulty": 0.0})
    n = env.params.size
    given = next(i for i, v in enumerate(env.givens) if v)
    *_, info = env.step(f"{given // n + 1} {given % n + 1} {env.givens[given]}")
    assert "is a given" in info["feedback"]["error"]
    r, c = first_blank(env)
    left = env.remaining()
    *_, info = env.step(f"{r + 1} {c + 1} {env.solution[r * n + c]}")
    assert f"{left - 1} blanks remain" in info["feedback"]["summary"]


def test_wrong_entry_is_cleared_by_the_oracle_and_text_forms_parse() -> None:
    env = SudokuEnv()
    env.reset(seed=11, options={"params": {"size": 9, "blanks": 50}})
    n = 9
    # Find a blank and a legal-but-wrong digit for it.
    for i, v in enumerate(env.grid):
        r, c = divmod(i, n)
        wrong = [d for d in env.legal_digits(r, c) if d != env.solution[i]] if v == 0 else []
        if wrong:
            break
    env.step(json_call := f'{{"name": "place", "arguments": {{"row": {r + 1}, "col": {c + 1}, "value": {wrong[0]}}}}}')
    assert env.grid[i] == wrong[0], json_call
    assert env.oracle_action() == f"clear {r + 1} {c + 1}"
    *_, info = env.step(env.oracle_action())
    assert env.grid[i] == 0 and info["feedback"]["summary"].startswith(f"Erased {wrong[0]}")
    assert env._text_form("(3, 4) = 5") is not None
    assert env._text_form("hello") is None


def test_out_of_range_is_explained() -> None:
    env = SudokuEnv()
    env.reset(seed=0, options={"difficulty": 0.0})
    *_, info = env.step("9 9 1")
    assert "must be in 1..4" in info["feedback"]["error"]
    r, c = first_blank(env)
    *_, info = env.step(f"{r + 1} {c + 1} 7")
    assert "1..4" in info["feedback"]["error"]
