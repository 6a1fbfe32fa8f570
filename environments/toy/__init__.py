"""Toy envs for learner tests and small experiments (registered as envgym/ToyBandit-v0, ToyGuess-v0,
ToyCode-v0)."""

from envgym.environments.toy.envs import SYMBOLS, ToyBanditEnv, ToyCodeEnv, ToyGuessEnv

__all__ = ["SYMBOLS", "ToyBanditEnv", "ToyCodeEnv", "ToyGuessEnv"]
