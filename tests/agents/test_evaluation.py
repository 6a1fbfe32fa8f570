"""`evaluate` reports progress as episodes finish: per batch for model policies, per episode for scripted ones."""

from envgym.agents.evaluation import evaluate
from envgym.agents.policies.scripted import make_scripted_agent
from envgym.agents.toy import ToyGuessEnv, tiny_policy
from envgym.agents.trainer import make_env


def test_progress_counts_every_episode_once():
    batches: list[int] = []
    result = evaluate(ToyGuessEnv, tiny_policy(), episodes=6, batch_size=4, on_done=batches.append)
    assert batches == [4, 2] and result.episodes == 6
    singles: list[int] = []
    evaluate(lambda: make_env("envgym/GuessNumber-v0"), make_scripted_agent("oracle", 0), episodes=3,
             on_done=singles.append)  # fmt: skip
    assert singles == [1, 1, 1]
