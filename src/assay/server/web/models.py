"""The web app has no models of its own: its pages show other apps' data through their services."""
