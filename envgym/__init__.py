"""envgym: verifiable, difficulty-controlled, multi-turn text environments for LLM agents.

`import envgym` registers every env id with gymnasium and nothing heavier: torch, transformers and docker
load only when an env or policy that needs them is made.
"""

from envgym.registry import register_all

__version__ = "0.1.0"

register_all()

__all__ = ["__version__", "register_all"]
