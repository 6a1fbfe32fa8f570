"""Mutation operators: valid code, minimal diffs, exact gold patches, seeded order."""

from __future__ import annotations

import ast

import numpy as np

from envgym.environments.swe.mutations import ModuleMutator, apply_mutations, find_mutations, order_sites, unified_diff
from envgym.environments.swe.trees import apply_unified

SOURCE = '''"""A module."""


def clamp(value, low, high):
    # keep value in range
    if value < low:
        return low
    if value > high and not low > high:
        return high
    total = value + 0
    items = list(range(1, 10))[2:5]
    return helper(total, items)


def helper(a, b):
    if not b:
        raise ValueError("empty")
    return a - len(b) * 2


def flag():
    return True
'''


def test_every_operator_family_is_found_and_yields_valid_code() -> None:
    mutations = find_mutations("m.py", SOURCE)
    operators = {m.operator for m in mutations}
    expected = {"flip_comparison", "boundary_comparison", "bool_operator", "drop_not", "arith_operator",
                "swap_operands", "swap_arguments", "off_by_one", "change_constant", "drop_return",
                "drop_raise", "drop_statement", "invert_condition", "wrong_variable"}  # fmt: skip
    assert expected <= operators
    for mutation in mutations:
        mutated = apply_mutations(SOURCE, [mutation])
        assert mutated != SOURCE
        ast.parse(mutated)
        # the gold patch is the exact diff back, and it applies
        gold = unified_diff("m.py", mutated, SOURCE)
        assert apply_unified({"m.py": mutated.encode()}, gold)["m.py"].decode() == SOURCE
        # the edit is local: the comment and docstring survive
        assert "# keep value in range" in mutated and '"""A module."""' in mutated


def test_combined_mutations_apply_bottom_up() -> None:
    mutations = find_mutations("m.py", SOURCE)
    a = next(m for m in mutations if m.operator == "drop_raise")
    b = next(m for m in mutations if m.operator == "flip_comparison" and m.line < a.line)
    combined = apply_mutations(SOURCE, [a, b])
    assert "raise ValueError" not in combined
    ast.parse(combined)


def test_site_order_is_seeded() -> None:
    sites = ModuleMutator("m.py", SOURCE).sites()
    first = order_sites(sites, np.random.default_rng(3))
    again = order_sites(sites, np.random.default_rng(3))
    other = order_sites(sites, np.random.default_rng(4))
    assert first == again
    assert first != other
    assert sorted(map(repr, first)) == sorted(map(repr, sites))


def test_unified_diff_handles_missing_final_newline() -> None:
    old, new = "a = 1\nb = 2", "a = 1\nb = 3"
    patch = unified_diff("x.py", old, new)
    assert "\\ No newline at end of file" in patch
    assert apply_unified({"x.py": old.encode()}, patch)["x.py"].decode() == new
