"""Policies: scripted reference agents (here, light) and model-backed ones (imported from their modules)."""

from envgym.agents.policies.scripted import OracleAgent, RandomAgent, make_scripted_agent

__all__ = ["OracleAgent", "RandomAgent", "make_scripted_agent"]
