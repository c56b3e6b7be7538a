"""The leaderboard behind docs/RESULTS.md: `python -m scripts.leaderboard --help`.

cli (train, export and score every row; write the report), rows (what is trained and its
targets), stats (per-seed records and per-row summaries), report (the markdown; the hand-written
choices come from docs/RESULTS_CHOICES.md) and score (a worker run in the runtime venv,
`python -m scripts.leaderboard.score`).
"""
