"""leaderboards app."""
