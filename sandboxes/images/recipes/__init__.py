"""Dockerfile recipes shipped with envgym (data files; see recipe_builder.py)."""
