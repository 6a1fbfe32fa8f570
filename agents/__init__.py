"""envgym."""
