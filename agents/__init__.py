"""envgym.agents: policies, rollouts and the trainer. Importing this package stays light (no torch)."""
