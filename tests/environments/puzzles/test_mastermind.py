"""envgym/Mastermind-v0: the rules (pegs, hints, codes)."""

import numpy as np
import pytest

import envgym  # noqa: F401  (registers the ids)
from envgym.environments.puzzles import mastermind
from envgym.environments.puzzles.mastermind import COLOURS, MastermindEnv, code_space, score


def test_score_counts_black_and_white_pegs() -> None:
    def pegs(guess: tuple[int, ...], secret: tuple[int, ...]) -> tuple[int, int]:
        return divmod(score(guess, secret, len(guess)), len(guess) + 1)

    assert pegs((0, 0, 1, 1), (0, 1, 0, 1)) == (2, 2)
    assert pegs((0, 1, 2, 3), (0, 1, 2, 3)) == (4, 0)
    assert pegs((0, 0, 0, 0), (1, 2, 3, 4)) == (0, 0)
    assert pegs((0, 0, 1, 2), (0, 3, 0, 0)) == (1, 1)


def test_vectorised_scores_match_the_scalar_score() -> None:
    space = code_space(4, 6, True)
    cands = np.arange(0, len(space.codes), 37)
    guess = (0, 0, 1, 2)
    fast = space.scores(guess, cands)
    assert [int(x) for x in fast] == [score(guess, space.code(int(i)), 4) for i in cands]


def test_feedback_reports_pegs_and_budget_is_solver_count_plus_slack() -> None:
    env = MastermindEnv()
    env.reset(seed=3, options={"difficulty": 0.5})
    assert env.max_turns == env.solver_count + env.params.slack
    secret = env.spell(env.secret)
    guess = secret[1:] + secret[0]
    b, w = divmod(score(tuple("RGBYOPCWMK".index(c) for c in guess), env.secret, 4), 5)
    obs, _reward, _terminated, _truncated, info = env.step(guess)
    assert f"{b} black, {w} white" in info["feedback"]["summary"] or guess == secret
    assert "Guesses so far" in obs


def test_low_difficulty_hints_consistent_codes_high_does_not() -> None:
    env = MastermindEnv()
    env.reset(seed=0, options={"difficulty": 0.0})
    _, _, _, _, info = env.step(env.random_action(np.random.default_rng(1)))
    assert info["solved"] or "consistent" in info["feedback"]["hint"]
    env.reset(seed=0, options={"difficulty": 1.0})
    _, _, _, _, info = env.step("RRRRR")
    assert info["feedback"]["hint"] is None


def test_contradicting_guess_is_pointed_out() -> None:
    env = MastermindEnv()
    env.reset(seed=8, options={"params": {"pegs": 4, "colours": 6}})
    env.step("RRGG")
    first = env.history[0][1]
    # find a code that contradicts the first answer
    space = env.space
    bad = next(space.code(i) for i in range(len(space.codes)) if score(space.code(i), (0, 0, 1, 1), 4) != first)
    if bad == env.secret:
        return
    _, _, _, _, info = env.step(env.spell(bad))
    assert "contradicts the feedback to guess(es) 1" in info["feedback"]["details"]


def test_invalid_codes_cost_a_turn_and_explain() -> None:
    env = MastermindEnv()
    env.reset(seed=0, options={"params": {"pegs": 4, "colours": 6}})
    _, _, terminated, _, info = env.step("RGB")
    assert "needs 4 letters" in info["feedback"]["error"] and info["turn"] == 1 and not terminated
    _, _, _, _, info = env.step('{"name": "guess", "arguments": {"code": "RGBZ"}}')
    assert "'Z' not in the palette" in info["feedback"]["error"]


@pytest.mark.parametrize("text", ["RGBY", "rgby", "guess R G B Y", "R,G,B,Y", "guess: RGBY"])
def test_text_form(text: str) -> None:
    env = MastermindEnv()
    env.reset(seed=0, options={"params": {"pegs": 4, "colours": 6}})
    _, _, _, _, info = env.step(text)
    assert info["tool_call"]["name"] == "guess"
    assert env.history and env.spell(env.history[-1][0]) == "RGBY"


def test_oracle_recovers_after_random_guesses() -> None:
    env = MastermindEnv(max_turns=60)
    rng = np.random.default_rng(0)
    for seed in range(40):
        env.reset(seed=seed, options={"difficulty": 1.0})
        for _ in range(3):
            *_, terminated, _, info = env.step(env.random_action(rng))
            if terminated:
                break
        while not terminated:
            *_, terminated, truncated, info = env.step(env.oracle_action())
            assert not truncated
        assert info["solved"]


def test_no_repeat_codes() -> None:
    env = MastermindEnv()
    for seed in range(20):
        env.reset(seed=seed, options={"params": {"pegs": 4, "colours": 6, "allow_repeats": False}})
        assert len(set(env.secret)) == 4
    with pytest.raises(ValueError):
        env.reset(seed=0, options={"params": {"pegs": 5, "colours": 4, "allow_repeats": False}})


def test_solver_guesses_grow_with_difficulty() -> None:
    env = MastermindEnv()
    means = []
    for d in (0.0, 0.5, 1.0):
        counts = []
        for seed in range(40):
            env.reset(seed=seed, options={"difficulty": d})
            counts.append(env.solver_count)
        means.append(float(np.mean(counts)))
    assert means[0] < means[1] < means[2]


def test_eager_game_tree_matches_the_lazy_walk() -> None:
    from envgym.environments.puzzles import mastermind

    eager = mastermind.CodeSpace(4, 5, True)
    assert len(eager.counts_by_secret) == len(eager.codes)
    lazy = mastermind.CodeSpace.__new__(mastermind.CodeSpace)
    lazy.__dict__.update(eager.__dict__)
    lazy.memo, lazy.counts_by_secret = {(): eager.root}, {}
    for index in range(0, len(eager.codes), 7):
        assert lazy.solver_guesses(index) == eager.counts_by_secret[index]


def test_guess_texts_read_the_same_from_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    space = code_space(4, 6, True)
    space.reads.clear()
    for text in ("RGBY", "rgby", "R G B Y", "R-G,B y", "RGBZ", "RG", "RGBYRG", "ZZ", "rgbk"):
        first = space.read(text)
        assert space.read(text) == first and text in space.reads
        letters, guess, problems = first
        assert letters == text.upper().replace(" ", "").replace("-", "").replace(",", "")
        assert (guess is None) == bool(problems)
        if guess is not None:
            assert "".join(COLOURS[c] for c in guess) == letters
    assert space.read("RGBZ")[2] == "'Z' not in the palette RGBYOP"
    assert space.read("RZ")[2] == "the code needs 4 letters, got 2; 'Z' not in the palette RGBYOP"
    monkeypatch.setattr(mastermind, "_READS_LIMIT", 4)
    for i in range(20):
        space.read("R" * (i % 7))
    assert len(space.reads) <= 4
    space.read("R" * 100)
    assert "R" * 100 not in space.reads  # long texts are read every time, never kept
    space.reads.clear()
