"""Leaderboard rules: standings kept up to date, ranking, visibility, aggregation, history, exports."""
