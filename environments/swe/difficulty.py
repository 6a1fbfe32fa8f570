"""Task difficulty in [0, 1] from what makes a planted bug hard to fix, and the level ladder the env uses.

Why these terms: more combined mutations mean more places to find; subtle operators (off-by-one, boundary
comparisons) survive a read-through; a failure that shows up in only one test gives little signal; and the hint
level decides whether the report names the failing tests and the file. Levels 0-3 are the env's `difficulty`
buckets: level = min(3, floor(4 * difficulty)) picks the task pool.
"""

from __future__ import annotations

import math

# (mutations combined, hint level) per level; hint 0 names tests + file, 3 only one behaviour.
LEVELS: dict[int, tuple[int, int]] = {0: (1, 0), 1: (1, 1), 2: (2, 2), 3: (3, 3)}


def task_difficulty(n_mutations: int, subtleties: list[float], n_failing: int, hint_level: int) -> float:
    """Weighted sum: hint 0.35, mutation count 0.25, operator subtlety 0.25, narrowness of the failure 0.15."""
    subtle = sum(subtleties) / len(subtleties) if subtleties else 0.5
    narrow = 1.0 / math.sqrt(max(n_failing, 1))
    value = 0.35 * hint_level / 3 + 0.25 * (n_mutations - 1) / 2 + 0.25 * subtle + 0.15 * narrow
    return round(min(max(value, 0.0), 1.0), 3)


def level_for(difficulty: float) -> int:
    """The level whose task pool `difficulty` selects."""
    return min(3, math.floor(4 * difficulty))
