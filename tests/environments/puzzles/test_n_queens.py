"""envgym/NQueens-v0: the rules (attacking pairs, clues, removal)."""

import pytest

import envgym  # noqa: F401  (registers the ids)
from envgym.environments.puzzles.n_queens import NQueensEnv, attacks, complete


@pytest.mark.parametrize("n", [4, 5, 8, 12])
def test_complete_finds_valid_solutions(n: int) -> None:
    solution = complete(n, {})
    assert solution is not None and len(solution) == n
    queens = sorted(solution.items())
    assert not any(attacks(a, b) for k, a in enumerate(queens) for b in queens[k + 1 :])


def test_clues_come_from_a_solution_and_length_grows() -> None:
    env = NQueensEnv()
    needed = []
    for d in (0.0, 0.5, 1.0):
        env.reset(seed=3, options={"difficulty": d})
        assert complete(env.params.n, dict(env.fixed)) is not None
        needed.append(env.params.n - len(env.fixed))
    assert needed == sorted(needed) and needed[0] < needed[-1]


def test_attacked_square_names_the_attacking_queen() -> None:
    env = NQueensEnv()
    env.reset(seed=0, options={"params": {"n": 8, "preplaced": 1}})
    ((qr, qc),) = env.fixed.items()
    # Same column, another row.
    row = (qr + 3) % 8
    _obs, _reward, terminated, _, info = env.step(f"place {row + 1} {qc + 1}")
    assert f"attacked by the queen at ({qr + 1}, {qc + 1}) (same column)" in info["feedback"]["error"]
    assert row not in env.queens and not terminated
    # Diagonal.
    dr = 1 if qr < 7 else -1
    dc = 1 if qc < 7 else -1
    *_, info = env.step(f"{qr + dr + 1} {qc + dc + 1}")
    assert "(same diagonal)" in info["feedback"]["error"]


def test_clues_are_fixed_and_own_queens_can_be_removed() -> None:
    env = NQueensEnv()
    env.reset(seed=5, options={"params": {"n": 6, "preplaced": 2}})
    (qr, qc) = next(iter(env.fixed.items()))
    *_, info = env.step(f"remove {qr + 1} {qc + 1}")
    assert "pre-placed" in info["feedback"]["summary"]
    action = env.oracle_action()
    env.step(action)
    r, c = (int(x) for x in action.split()[1:])
    *_, info = env.step(f"remove {r} {c}")
    assert f"Removed the queen at ({r}, {c})" in info["feedback"]["summary"] and (r - 1) not in env.queens
    *_, info = env.step(f"remove {r} {c}")
    assert "No queen" in info["feedback"]["summary"]


def test_dead_end_is_hinted_and_the_oracle_backs_out() -> None:
    env = NQueensEnv()
    env.reset(seed=0, options={"params": {"n": 4, "preplaced": 0, "slack": 20}})
    env.step("place 1 1")  # every 4-queens solution avoids the corners
    *_, info = env.step("place 2 3")
    assert "no safe square left" in (info["feedback"]["hint"] or "")
    assert env.oracle_action() == "remove 2 3"
    while True:
        *_, reward, terminated, truncated, _ = env.step(env.oracle_action())
        if terminated or truncated:
            break
    assert reward == 1.0
