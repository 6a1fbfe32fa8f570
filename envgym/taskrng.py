"""A per-task random generator that costs ~1 µs to create: counter-based draws first, Mersenne Twister later.

Why: seeding `random.Random` (Mersenne Twister: 2.5 KB of state mixed twice) costs ~10 µs and a NumPy
generator ~30 µs, more than a whole reset of a small puzzle, and most small puzzles draw a handful of numbers.
`CounterRandom` is a `random.Random` (so `randint`, `choice`, `shuffle`, `sample`... all work unchanged) whose
first `COUNTER_DRAWS` words are SplitMix64 outputs, i.e. a hash of (seed, draw index): nothing to set up. A
family that keeps drawing (a generator that shuffles, retries or searches) then gets the C Mersenne Twister,
seeded from the counter stream, for its cheap per-draw cost. The stream is a pure function of the seed, so
tasks stay deterministic and replayable; it differs from `random.Random(seed)`'s, so an env that switches to
it must bump its version.
"""

from __future__ import annotations

import _random
import math
import os
import random
from typing import Any, ClassVar

_M64 = (1 << 64) - 1
_GAMMA = 0x9E3779B97F4A7C15  # SplitMix64's increment (the golden ratio in 64 bits)
_MUL1, _MUL2 = 0xBF58476D1CE4E5B9, 0x94D049BB133111EB
_FLOAT = 1.0 / (1 << 53)
_PLAIN_SEQUENCES = (list, tuple, range)
_RANDBELOW_BITS = random.Random._randbelow_with_getrandbits  # type: ignore[attr-defined]  # CPython's own


def _mix(z: int) -> int:
    """SplitMix64's finaliser: a bijection on 64-bit words with full avalanche."""
    z = ((z ^ (z >> 30)) * _MUL1) & _M64
    z = ((z ^ (z >> 27)) * _MUL2) & _M64
    return z ^ (z >> 31)


def _key(seed: Any) -> int:
    """A 64-bit key for any int seed (non-negative ints below 2**64 map to themselves; others are folded)."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"CounterRandom seeds are ints, got {type(seed).__name__}")
    if 0 <= seed <= _M64:
        return seed
    key, rest = (1 if seed < 0 else 0), abs(seed)
    while rest:
        key = _mix(key ^ (rest & _M64))
        rest >>= 64
    return key


def first_below(seed: int, n: int) -> int:
    """`CounterRandom(seed)._randbelow(n)`: the first draw of a task's stream, for families that draw one number.

    The same words and the same rejection rule, without creating the generator (an object, a property and a
    method call cost more than the draw itself on a small puzzle's reset). Anything unusual (a seed outside
    [0, 2**64), n wider than a word, a run of rejections that reaches the twister) goes through the generator.
    """
    if type(seed) is int and 0 <= seed <= _M64 and type(n) is int and 0 < n <= _M64:
        shift = 64 - n.bit_length()
        s = seed
        for _ in range(CounterRandom.COUNTER_DRAWS):
            s = (s + _GAMMA) & _M64
            z = ((s ^ (s >> 30)) * _MUL1) & _M64
            z = ((z ^ (z >> 27)) * _MUL2) & _M64
            r = (z ^ (z >> 31)) >> shift
            if r < n:
                return r
    return CounterRandom(seed)._randbelow(n)


class CounterRandom(random.Random):
    """`random.Random` with SplitMix64 draws for the first `COUNTER_DRAWS` words, then a seeded Mersenne Twister.

    Draw i (i < COUNTER_DRAWS) is `mix(seed + (i + 1) * GAMMA)`; the twister is seeded with the next two words.
    The switch swaps the instance's class to a twister-backed subclass (so not meant for further subclassing).
    """

    gauss_next: float | None
    _twisted: ClassVar[bool] = False
    COUNTER_DRAWS: ClassVar[int] = 8  # ~0.5 µs each; seeding the twister costs ~10 µs

    def __init__(self, seed: int | None = None) -> None:
        if type(seed) is int and 0 <= seed <= _M64:  # the per-reset path: nothing to undo on a new instance
            self._state, self._left, self.gauss_next = seed, self.COUNTER_DRAWS, None
        else:
            self.seed(seed)

    def seed(self, a: Any = None, version: int = 2) -> None:
        """Restart the stream from `a` (an int; None: from os.urandom)."""
        self._state = _key(int.from_bytes(os.urandom(8)) if a is None else a)
        self._left = self.COUNTER_DRAWS
        self.gauss_next = None
        if self._twisted:
            self.__class__ = CounterRandom  # back to the counter stream

    def _twister(self) -> None:
        """Leave the counter stream: seed the C Mersenne Twister from it and let it serve every later draw."""
        s = self._state
        words = [_mix((s + _GAMMA) & _M64), _mix((s + 2 * _GAMMA) & _M64)]
        self._state = (s + 2 * _GAMMA) & _M64
        _random.Random.seed(self, words[0] | (words[1] << 64))
        self.__class__ = _Twisted  # later draws run the twister's C code (a class swap: no reference cycle)

    def _randbelow(self, n: int) -> int:  # type: ignore[override]
        """A uniform int in [0, n) by rejection (what `randrange`, `choice`, `shuffle` and `sample` call)."""
        if self._left <= 0:  # a caller may hold this bound method from before the switch
            if not self._twisted:
                self._twister()
            return _RANDBELOW_BITS(self, n)
        shift = 64 - n.bit_length()
        if shift < 0:  # wider than one word
            return _RANDBELOW_BITS(self, n)
        while True:
            self._left -= 1
            s = self._state = (self._state + _GAMMA) & _M64
            z = ((s ^ (s >> 30)) * _MUL1) & _M64
            z = ((z ^ (z >> 27)) * _MUL2) & _M64
            r = (z ^ (z >> 31)) >> shift
            if r < n:
                return r

    def randrange(self, start: int, stop: int | None = None, step: int = 1) -> int:  # type: ignore[override]
        """`random.Random.randrange` (the same draws), without its argument-conversion frames for plain ints."""
        if type(start) is int and type(step) is int and step == 1:
            if stop is None:
                if start > 0:
                    return self._randbelow(start)
            elif type(stop) is int and stop > start:
                return start + self._randbelow(stop - start)
        return super().randrange(start, stop, step)

    def randint(self, a: int, b: int) -> int:
        """`random.Random.randint` (the same draws), one frame instead of three for plain ints."""
        if type(a) is int and type(b) is int and b >= a:
            return a + self._randbelow(b - a + 1)
        return super().randrange(a, b + 1)

    def sample(self, population: Any, k: int, *, counts: Any = None) -> list[Any]:  # type: ignore[override]
        """`random.Random.sample` (the same draws, the same result), without its ABC check for plain sequences."""
        if counts is not None or type(population) not in _PLAIN_SEQUENCES:
            return super().sample(population, k, counts=counts)
        n = len(population)
        if not 0 <= k <= n:
            raise ValueError("Sample larger than population or is negative")
        randbelow = self._randbelow
        result: list[Any] = [None] * k
        setsize = 21  # CPython's rule: a pool list when it is smaller than a k-set
        if k > 5:
            setsize += 4 ** math.ceil(math.log(k * 3, 4))
        if n <= setsize:
            pool = list(population)
            for i in range(k):
                j = randbelow(n - i)
                result[i] = pool[j]
                pool[j] = pool[n - i - 1]
        else:
            selected: set[int] = set()
            for i in range(k):
                j = randbelow(n)
                while j in selected:
                    j = randbelow(n)
                selected.add(j)
                result[i] = population[j]
        return result

    def getrandbits(self, k: int) -> int:
        if self._left <= 0:
            if not self._twisted:
                self._twister()
            return _random.Random.getrandbits(self, k)
        if k < 0:
            raise ValueError("number of bits must be non-negative")
        self._left -= 1
        s = self._state = (self._state + _GAMMA) & _M64
        z = ((s ^ (s >> 30)) * _MUL1) & _M64
        z = ((z ^ (z >> 27)) * _MUL2) & _M64
        z ^= z >> 31
        if k <= 64:
            return z >> (64 - k)
        bits, have = z, 64
        while have < k:  # long draws: further words, most significant first
            s = self._state = (self._state + _GAMMA) & _M64
            bits, have = (bits << 64) | _mix(s), have + 64
        return bits >> (have - k)

    def random(self) -> float:
        """A float in [0, 1) with 53 random bits."""
        if self._left <= 0:
            if not self._twisted:
                self._twister()
            return _random.Random.random(self)
        self._left -= 1
        s = self._state = (self._state + _GAMMA) & _M64
        z = ((s ^ (s >> 30)) * _MUL1) & _M64
        z = ((z ^ (z >> 27)) * _MUL2) & _M64
        return ((z ^ (z >> 31)) >> 11) * _FLOAT

    def getstate(self) -> tuple[Any, ...]:
        twister = _random.Random.getstate(self) if self._twisted else None
        return ("CounterRandom-1", self._state, self._left, twister, self.gauss_next)

    def setstate(self, state: tuple[Any, ...]) -> None:
        if not (isinstance(state, tuple) and len(state) == 5 and state[0] == "CounterRandom-1"):
            raise ValueError(f"not a CounterRandom state: {str(state)[:60]}")
        _, counter, left, twister, gauss_next = state
        self.seed(0)
        self._state, self._left, self.gauss_next = counter, left, gauss_next
        if twister is not None:
            _random.Random.setstate(self, twister)
            self.__class__ = _Twisted


class _Twisted(CounterRandom):
    """A `CounterRandom` past its counter draws: every draw is the seeded C Mersenne Twister's."""

    _twisted: ClassVar[bool] = True
    getrandbits = _random.Random.getrandbits  # type: ignore[assignment]
    random = _random.Random.random  # type: ignore[assignment]
    _randbelow = _RANDBELOW_BITS
