"""teams app."""
