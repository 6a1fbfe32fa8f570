"""envgym/Hanoi-v0: the rules (larger-on-smaller, text form)."""

import numpy as np
import pytest

import envgym  # noqa: F401  (registers the ids)
from envgym.environments.puzzles.hanoi import HanoiEnv, optimal_moves


def test_optimal_length_is_two_to_the_n_minus_one_and_grows_with_difficulty() -> None:
    env = HanoiEnv()
    lengths = []
    for d in (0.0, 0.5, 1.0):
        env.reset(seed=3, options={"difficulty": d})
        assert env.optimal == 2**env.params.discs - 1
        assert env.max_turns > env.optimal
        lengths.append(env.optimal)
    assert lengths == sorted(lengths) and lengths[0] < lengths[-1]


def test_larger_on_smaller_is_illegal_and_names_the_discs() -> None:
    env = HanoiEnv()
    env.reset(seed=0, options={"params": {"discs": 3}})
    env.step("move 0 1")  # disc 1 onto peg 1
    obs, reward, terminated, _truncated, info = env.step("move 0 1")  # disc 2 onto disc 1
    assert "disc 2 is larger than disc 1" in info["feedback"]["error"]
    assert not terminated and reward == 0.0 and info["turn"] == 2
    assert "Peg 1 (B): 1" in obs


def test_empty_peg_and_same_peg_are_explained() -> None:
    env = HanoiEnv()
    env.reset(seed=0, options={"params": {"discs": 3}})
    _, _, _, _, info = env.step('{"name": "move", "arguments": {"from_peg": 2, "to_peg": 1}}')
    assert "peg 2 is empty" in info["feedback"]["error"]
    _, _, _, _, info = env.step("move 0 0")
    assert "must change pegs" in info["feedback"]["error"]
    _, _, _, _, info = env.step("move 0 5")
    assert info["feedback"]["error"]  # out of range: a parse error or a rule error, never an exception


@pytest.mark.parametrize("text", ["move 0 2", "0 2", "A C", "a->c", "move from peg 0 to peg 2", "0,2"])
def test_text_form(text: str) -> None:
    env = HanoiEnv()
    env.reset(seed=0)
    assert env._text_form(text) is not None
    call = env._text_form(text)
    assert call is not None and call.arguments == {"from_peg": 0, "to_peg": 2}


def test_oracle_recovers_from_any_legal_position() -> None:
    env = HanoiEnv(max_turns=1000)
    rng = np.random.default_rng(0)
    for seed in range(30):
        env.reset(seed=seed, options={"params": {"discs": 5, "random_start": seed % 2 == 0}})
        for _ in range(int(rng.integers(0, 20))):
            env.step(env.random_action(rng))
            if env.done:
                break
        if env.done:
            continue
        needed = optimal_moves(env.pos, env.params.discs, env.target)
        for _ in range(needed):
            *_, terminated, _, info = env.step(env.oracle_action())
        assert terminated and info["solved"]


def test_a_played_episode_leaves_the_next_fixed_start_untouched() -> None:
    env = HanoiEnv(params={"discs": 3})
    first, _ = env.reset(seed=5)
    start = (list(env.pos), [list(s) for s in env.stacks()], env.optimal, env.max_turns)
    while not env.done:
        env.step(env.oracle_action())
    assert env.stacks()[env.target] == [3, 2, 1]
    again, _ = env.reset(seed=5)  # the same target: the kept start, copied
    assert again == first and (env.pos, env.stacks(), env.optimal, env.max_turns) == start
