"""envgym/Minesweeper-v0: no-guess generation, and the rules."""

import pytest

import envgym  # noqa: F401  (registers the ids)
from envgym.environments.puzzles.minesweeper import MinesweeperEnv, deduce, neighbour_masks


@pytest.mark.parametrize("difficulty", [0.0, 0.5, 1.0])
def test_opening_is_safe_and_the_board_needs_no_guess(difficulty: float) -> None:
    env = MinesweeperEnv()
    for seed in range(20):
        env.reset(seed=seed, options={"difficulty": difficulty})
        assert env.revealed[env.start] and env.counts[env.start] == 0 and not env.layout[env.start]
        assert env.hidden_safe() > 0 and env.moves
        assert all(not env.layout[i] for i in env.moves)
        assert env.max_turns == len(env.moves) + env.params.slack


def test_deductions_are_sound() -> None:
    env = MinesweeperEnv()
    for seed in range(20):
        env.reset(seed=seed, options={"difficulty": 1.0})
        p = env.params
        opened = sum(1 << i for i, r in enumerate(env.revealed) if r)
        safe, mines = deduce(env.counts, opened, 0, env.n_mines, neighbour_masks(p.rows, p.cols))
        assert safe, "a no-guess board always has a next safe cell"
        for i in range(p.rows * p.cols):
            if safe >> i & 1:
                assert not env.layout[i]
            if mines >> i & 1:
                assert env.layout[i]


def test_harder_means_bigger_denser_boards() -> None:
    env = MinesweeperEnv()
    stats = []
    for d in (0.0, 0.5, 1.0):
        env.reset(seed=2, options={"difficulty": d})
        stats.append((env.params.rows * env.params.cols, env.n_mines / (env.params.rows * env.params.cols)))
    assert stats == sorted(stats)


def test_mine_ends_the_game_and_says_where() -> None:
    env = MinesweeperEnv()
    env.reset(seed=0, options={"difficulty": 0.5})
    cols = env.params.cols
    mine = env.layout.index(True)
    obs, reward, terminated, truncated, info = env.step(f"reveal {mine // cols + 1} {mine % cols + 1}")
    assert terminated and not truncated and reward == 0.0 and not info["solved"]
    assert f"({mine // cols + 1}, {mine % cols + 1}) was a mine" in info["feedback"]["summary"]
    assert "*" in obs


def test_reveal_numbers_flags_and_repeats() -> None:
    env = MinesweeperEnv()
    env.reset(seed=1, options={"difficulty": 0.5})
    cols = env.params.cols
    target = env.moves[0]
    r, c = target // cols + 1, target % cols + 1
    *_, info = env.step(f"flag {r} {c}")
    assert f"Flagged ({r}, {c})" in info["feedback"]["summary"] and target in env.flags
    *_, info = env.step(f"{r} {c}")
    assert "flagged" in info["feedback"]["summary"] and not env.revealed[target]
    assert env.oracle_action() == f"flag {r} {c}"
    env.step(env.oracle_action())
    hidden = env.hidden_safe()
    *_, info = env.step(f"reveal {r} {c}")
    summary = info["feedback"]["summary"]
    assert env.revealed[target] and (f"shows {env.counts[target]}" in summary or "opened" in summary)
    if env.hidden_safe():
        assert f"{env.hidden_safe()} safe cells still hidden" in summary and env.hidden_safe() < hidden
    *_, info = env.step(f"reveal {r} {c}")
    assert "already revealed" in info["feedback"]["summary"]
    *_, info = env.step("reveal 99 1")
    assert "row must be in 1.." in info["feedback"]["error"]


def test_shift_flood_equals_the_cell_by_cell_flood() -> None:
    """`flood_bits` (whole-mask shifts) opens exactly what `flood_mask` opens, and the solver's reveals agree."""
    import random

    from envgym.environments.puzzles.minesweeper import (
        flood_bits,
        flood_mask,
        grid_shape,
        neighbour_table,
        solve_from,
    )

    rnd = random.Random(7)
    for _ in range(300):
        rows, cols = rnd.randint(4, 12), rnd.randint(4, 12)
        n = rows * cols
        placed = rnd.sample(range(n), rnd.randint(1, n - 9))
        masks, nbrs = neighbour_masks(rows, cols), neighbour_table(rows, cols)
        counts, numbered = [0] * n, 0
        for i in placed:
            numbered |= masks[i]
            for j in nbrs[i]:
                counts[j] += 1
        shape = grid_shape(rows, cols)
        safe = [i for i in range(n) if i not in placed]
        opened = 0
        for start in rnd.sample(safe, min(4, len(safe))):
            expected = flood_mask(start, counts, opened, masks)
            assert flood_bits(start, shape[3] & ~numbered, opened, shape) == expected
            opened = expected
        first = flood_mask(safe[0], counts, 0, masks)
        assert solve_from(counts, first, len(placed), masks, numbered, shape) == solve_from(
            counts, first, len(placed), masks, numbered
        )


def test_layout_solver_equals_the_count_solver() -> None:
    """`solve_layout` (the generator's, reading the mines as bitmasks) makes exactly the reveals of
    `solve_from` (reading only the revealed numbers), and gives up on exactly the same boards."""
    import random

    from envgym.environments.puzzles.minesweeper import (
        flood_bits,
        grid_shape,
        neighbour_table,
        solve_from,
        solve_layout,
    )

    rnd = random.Random(11)
    outcomes = {True: 0, False: 0}
    for _ in range(3000):
        rows, cols = rnd.randint(4, 10), rnd.randint(4, 10)
        n = rows * cols
        masks, nbrs, shape = neighbour_masks(rows, cols), neighbour_table(rows, cols), grid_shape(rows, cols)
        start = rnd.randrange(n)
        pool = [i for i in range(n) if i != start and i not in nbrs[start]]
        placed = rnd.sample(pool, rnd.randint(1, max(1, min(len(pool), n // 4))))
        counts, numbered, layout = [0] * n, 0, 0
        for i in placed:
            numbered |= masks[i]
            layout |= 1 << i
            for j in nbrs[i]:
                counts[j] += 1
        zeros = shape[3] & ~numbered
        opened = flood_bits(start, zeros, 0, shape)
        expected = solve_from(counts, opened, len(placed), masks, numbered, shape)
        assert solve_layout(opened, layout, masks, shape, zeros) == expected
        outcomes[expected is None] += 1
    assert min(outcomes.values()) > 300  # both solvable and guess-needing boards were exercised


def test_one_draw_placement_is_exactly_uniform() -> None:
    """`draw_placement` over every value of its draws: each first click equally often and, given the click,
    each set of mines outside its 3×3 block equally often (on both paths: the first draw's remainder, and the
    second draw taken when the first falls past the largest multiple)."""
    import random
    from collections import Counter
    from itertools import combinations

    from envgym.environments.puzzles.minesweeper import draw_placement, mine_pools, placement_radix

    class Scripted(random.Random):
        """Returns the scripted values from `randrange`, checking each is in range."""

        def __init__(self, values: list[int]) -> None:
            super().__init__(0)
            self.values = values

        def randrange(self, stop: int) -> int:  # type: ignore[override]
            value = self.values.pop(0)
            assert 0 <= value < stop
            return value

    rows, cols, k = 4, 5, 2
    n = rows * cols
    span, radix = placement_radix(rows, cols, k)
    pools = mine_pools(rows, cols)
    starts: Counter[int] = Counter()
    for start in range(n):
        orders, limit = radix[start]
        first: Counter[frozenset[int]] = Counter()
        for c in range(span // n):  # every value of the first draw with this click
            got_start, placed = draw_placement(Scripted([c * n + start, 0]), rows, cols, k)
            starts[got_start] += 1
            if c < limit:
                first[frozenset(placed)] += 1
        second = Counter(
            frozenset(draw_placement(Scripted([(span // n - 1) * n + start, c2]), rows, cols, k)[1])
            for c2 in range(orders)
        )  # the first draw's last value is past the multiple unless the multiple is the whole range
        expected = {frozenset(s) for s in combinations(pools[start], k)}
        assert set(first) == expected and len(set(first.values())) == 1
        if limit < span // n:
            assert set(second) == expected and len(set(second.values())) == 1
    assert set(starts) == set(range(n)) and set(starts.values()) == {span // n}


def test_incremental_board_and_counter_match_a_fresh_render() -> None:
    """The cell texts and hidden-cell counter kept move by move equal a render from `revealed`/`flags`."""
    import numpy as np

    from envgym.environments.puzzles.minesweeper import _CELL_TEXT

    env = MinesweeperEnv(difficulty=0.6)
    rng = np.random.default_rng(3)
    for seed in range(12):
        env.reset(seed=seed)
        done = False
        while not done:
            cols = env.params.cols
            hidden = [i for i, r in enumerate(env.revealed) if not r]
            i = hidden[int(rng.integers(len(hidden)))]
            verb = "flag" if rng.random() < 0.3 else ("reveal" if i not in env.flags else "flag")
            _, _, terminated, truncated, _ = env.step(f"{verb} {i // cols + 1} {i % cols + 1}")
            done = terminated or truncated
            cells = [
                _CELL_TEXT[env.counts[j]] if env.revealed[j] else ("F" if j in env.flags else "#")
                for j in range(len(env.revealed))
            ]
            assert env._cells == cells
            assert env.hidden_safe() == env.n_safe - sum(env.revealed)


def test_bits_lists_set_bits_in_ascending_order() -> None:
    import random

    from envgym.environments.puzzles.minesweeper import bits

    rnd = random.Random(5)
    for _ in range(2000):
        mask = rnd.getrandbits(rnd.randint(0, 900)) & rnd.getrandbits(900)
        assert bits(mask) == [i for i in range(mask.bit_length()) if mask >> i & 1]
    assert bits(0) == []
