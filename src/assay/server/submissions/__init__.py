"""submissions app."""
