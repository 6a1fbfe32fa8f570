"""`python -m envgym ...` is the `envgym` command (for environments where the script is not on PATH)."""

from envgym.cli import main

main()
