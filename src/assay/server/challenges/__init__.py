"""challenges app."""
