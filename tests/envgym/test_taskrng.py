"""CounterRandom: the per-task generator of the puzzle families (v1). Its stream is part of every puzzle task, so
these tests pin it: a change here changes tasks and needs a version bump of the puzzle families."""

from __future__ import annotations

import copy
import pickle
import random

import pytest

from envgym.taskrng import CounterRandom, first_below


def _draws(rng: random.Random, n: int = 40) -> list[float]:
    return [rng.random() for _ in range(n)]


def test_known_answers_pin_the_stream() -> None:
    # SplitMix64 of seed 0: the reference outputs of the published algorithm (first words below the twister)
    rng = CounterRandom(0)
    assert [rng.getrandbits(64) for _ in range(3)] == [
        0xE220A8397B1DCDAF,
        0x6E789E6AA1B965F4,
        0x06C45D188009454F,
    ]
    assert CounterRandom(7).randint(1, 10) == 7
    rng = CounterRandom(42)  # 8 counter draws, then the twister seeded from the stream
    assert [rng.randrange(100) for _ in range(12)] == [94, 20, 35, 44, 4, 27, 43, 55, 80, 22, 61, 5]


def test_same_seed_same_stream_across_the_twister_switch() -> None:
    a, b = CounterRandom(12345), CounterRandom(12345)
    n = CounterRandom.COUNTER_DRAWS * 4
    assert [a.randrange(1000) for _ in range(n)] == [b.randrange(1000) for _ in range(n)]
    assert a._twisted and not CounterRandom(1)._twisted  # past the counter draws: the C twister serves
    assert _draws(CounterRandom(1)) != _draws(CounterRandom(2))


def test_a_method_bound_before_the_switch_keeps_one_stream() -> None:
    """`shuffle` holds `self._randbelow` for its whole loop: the switch must not reseed on every later draw."""
    a, b = CounterRandom(3), CounterRandom(3)
    items = list(range(50))
    a.shuffle(items)
    expected = [b._randbelow(i + 1) for i in reversed(range(1, 50))]
    swaps = list(range(50))
    for i, j in zip(reversed(range(1, 50)), expected, strict=True):
        swaps[i], swaps[j] = swaps[j], swaps[i]
    assert items == swaps
    assert len(set(expected[CounterRandom.COUNTER_DRAWS + 2 :])) > 5  # not a constant after the switch


@pytest.mark.parametrize("used", [0, 3, CounterRandom.COUNTER_DRAWS, 30])
def test_state_pickle_and_copy_resume_the_stream(used: int) -> None:
    rng = CounterRandom(99)
    _draws(rng, used)
    state = rng.getstate()
    clone_p, clone_c = pickle.loads(pickle.dumps(rng)), copy.deepcopy(rng)
    expected = _draws(rng)
    assert _draws(clone_p) == expected
    assert _draws(clone_c) == expected
    rng.setstate(state)
    assert _draws(rng) == expected
    with pytest.raises(ValueError, match="not a CounterRandom state"):
        rng.setstate(random.Random(1).getstate())


def test_seed_restarts_and_big_or_negative_seeds_work() -> None:
    rng = CounterRandom(5)
    first = _draws(rng)
    rng.seed(5)
    assert _draws(rng) == first
    assert _draws(CounterRandom(2**80)) != _draws(CounterRandom(2**80 + 1))
    assert _draws(CounterRandom(-1)) != _draws(CounterRandom(1))
    assert 0 <= CounterRandom(1).randrange(2**100) < 2**100
    assert CounterRandom(1).getrandbits(130) < 2**130
    with pytest.raises(TypeError):
        CounterRandom("seed")  # type: ignore[arg-type]


def test_uniform_enough() -> None:
    counts = [0] * 6
    for seed in range(6000):
        counts[CounterRandom(seed).randrange(6)] += 1  # first draw of many seeds: the counter path
    assert all(850 < c < 1150 for c in counts), counts
    rng = CounterRandom(0)
    mean = sum(rng.random() for _ in range(20000)) / 20000
    assert abs(mean - 0.5) < 0.01


@pytest.mark.parametrize(
    "args",
    [(10,), (1, 11), (-5, 5), (0, 2**70), (3, 4), (5,), (2, 20, 3), (20, 2, -3)],
)
def test_randrange_and_randint_shortcuts_draw_what_random_random_does(args: tuple[int, ...]) -> None:
    # the shortcuts skip `random.Random.randrange`'s argument frames; the draws must be the same, switch included
    ours, reference = CounterRandom(99), CounterRandom(99)
    n = CounterRandom.COUNTER_DRAWS * 3
    assert [ours.randrange(*args) for _ in range(n)] == [random.Random.randrange(reference, *args) for _ in range(n)]
    if len(args) == 2:
        ours, reference = CounterRandom(7), CounterRandom(7)
        a, b = args[0], args[1] - 1
        assert [ours.randint(a, b) for _ in range(n)] == [
            random.Random.randrange(reference, a, b + 1) for _ in range(n)
        ]


@pytest.mark.parametrize("args", [(0,), (-3,), (5, 5), (5, 1), (1.5,), (1, 10, 0)])
def test_randrange_shortcut_refuses_what_random_random_refuses(args: tuple[object, ...]) -> None:
    with pytest.raises((ValueError, TypeError)) as ours:
        CounterRandom(1).randrange(*args)  # type: ignore[arg-type]
    with pytest.raises((ValueError, TypeError)) as reference:
        random.Random(1).randrange(*args)  # type: ignore[arg-type]
    assert type(ours.value) is type(reference.value)


@pytest.mark.parametrize(
    ("population", "k"),
    [(list(range(16)), 5), (list(range(16)), 16), (tuple("abcdefghij"), 3), (range(1000), 7), (list(range(200)), 30)],
)
def test_sample_shortcut_returns_what_random_random_does(population: object, k: int) -> None:
    for seed in range(20):  # some seeds cross the twister switch mid-sample
        ours, reference = CounterRandom(seed), CounterRandom(seed)
        assert ours.sample(population, k) == random.Random.sample(reference, population, k)  # type: ignore[arg-type]
        assert ours.random() == reference.random()  # and the stream continues from the same point


def test_sample_shortcut_refuses_what_random_random_refuses() -> None:
    with pytest.raises(ValueError):
        CounterRandom(1).sample([1, 2], 3)
    with pytest.raises(TypeError):
        CounterRandom(1).sample({1, 2}, 1)  # type: ignore[call-overload]
    assert CounterRandom(3).sample(["a", "b"], 1, counts=[2, 1]) == random.Random.sample(
        CounterRandom(3), ["a", "b"], 1, counts=[2, 1]
    )


@pytest.mark.parametrize("n", [1, 2, 3, 10, 30, 1000, 2**31 - 1, 2**63 + 5, 2**64 - 1, 2**64, 2**70])
def test_first_below_is_the_generators_first_draw(n: int) -> None:
    # n = 1 rejects half the words, 2**63 + 5 almost half: long rejection runs reach the twister fallback
    for seed in [*range(300), 2**64 - 1, 2**64, -7]:
        assert first_below(seed, n) == CounterRandom(seed)._randbelow(n), (seed, n)
