"""Thin adapters from envgym envs to the trainers and harnesses people run, one module each.

Nothing is imported here: each module imports its third-party library when used, so `import envgym` never
pulls in trl, verifiers, skyrl-gym or datasets. `pip install envgym[integrations]` installs them.

- `envgym.integrations.trl`: `environment_factory` classes for `trl.GRPOTrainer`
- `envgym.integrations.verifiers`: `load_environment(env_id)` -> a verifiers `MultiTurnEnv`
- `envgym.integrations.skyrl`: a skyrl-gym `BaseTextEnv`
- `envgym.integrations.datasets`: task rows (env_id, seed, difficulty, prompt) as a `datasets.Dataset`
- `envgym.integrations.openai_standin`: a local OpenAI-compatible chat server for tests (scripted answers, faults)
"""
