"""accounts app."""
