"""`sanitize_recurring` (the bounded table of observation texts already cleaned) gives exactly `sanitize`'s
result, first time and every time after, and never lets the table grow without bound."""

from __future__ import annotations

import envgym.text as text_module
from envgym.environments.puzzles.sliding import SlidingEnv
from envgym.text import sanitize, sanitize_recurring

DIRTY = [
    "plain board\n1 2\n3 _",
    "Sliding 2×2\n2 _\n1 3",
    "ansi \x1b[31mred\x1b[0m and a bell \x07",
    "astral \U0001f600 and a surrogate-free tab\tok",
    "line\r\nbreaks\rmixed",
]


def test_recurring_texts_are_cleaned_exactly_like_sanitize_every_time() -> None:
    for text in DIRTY:
        first, second = sanitize_recurring(text), sanitize_recurring(text)
        assert first == second == sanitize(text)


def test_a_str_subclass_is_never_looked_up() -> None:
    class Sneaky(str):
        def __hash__(self) -> int:
            return hash("plain board\n1 2\n3 _")

    sanitize_recurring("plain board\n1 2\n3 _")
    assert sanitize_recurring(Sneaky("evil \x1b[31m")) == sanitize("evil \x1b[31m")


def test_the_table_is_bounded_and_long_texts_are_not_kept() -> None:
    for i in range(text_module._CLEAN_SIZE + 10):
        sanitize_recurring(f"text {i}")
    cached = text_module._sanitize_cached.cache_info
    assert cached().currsize <= text_module._CLEAN_SIZE
    long_text = "x" * (text_module._CLEAN_CHARS + 1)
    before = cached()
    assert sanitize_recurring(long_text) == long_text
    assert (cached().hits, cached().misses) == (before.hits, before.misses)  # never looked up, never kept


def test_puzzle_observations_match_a_fresh_sanitize() -> None:
    env = SlidingEnv(params={"size": 2, "scramble": 3})
    for seed in range(5):
        observation, _ = env.reset(seed=seed)
        assert observation == sanitize(observation)
        for _ in range(3):
            observation, *_ = env.step(env.oracle_action())
            assert observation == sanitize(observation)
