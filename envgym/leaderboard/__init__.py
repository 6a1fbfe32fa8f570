"""The leaderboard: submission bundles, `envgym submit`, and a server that re-grades everything it is sent.

Importing this package is cheap; the server's FastAPI/SQLAlchemy imports live in `server`/`db` only.
"""
