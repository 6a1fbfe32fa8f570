"""The toy code-breaking env (E3): positional guesses, feedback that echoes each symbol with its mark."""

from envgym.environments.toy import ToyCodeEnv


def _env(difficulty: float) -> ToyCodeEnv:
    env = ToyCodeEnv()
    env.reset(seed=3, options={"difficulty": difficulty})
    return env


def test_feedback_echoes_the_guess_with_a_mark_per_position():
    env = _env(0.2)
    assert env.length == 2
    wrong = "A" if env.code[1] != "A" else "B"
    obs, reward, terminated, _, _ = env.step(f"{env.code[0]} {wrong} D D")  # words after the first L are ignored
    assert obs == f"{env.code[0]} + {wrong} -" and reward == 0.0 and not terminated
    obs, reward, terminated, _, info = env.step(" ".join(env.code))
    assert reward == 1.0 and terminated and info["solved"]


def test_the_first_words_must_be_symbols():
    env = _env(0.2)
    for action in [f"x {env.code[0]} {env.code[1]}", env.code[0], ""]:
        obs, reward, terminated, _, _ = env.step(action)
        assert obs == "x" and reward == 0.0 and not terminated


def test_difficulty_sets_the_code_length():
    assert [_env(d).length for d in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)] == [1, 2, 3, 4, 5, 6]
