"""Web pages. Thin: each view reads a form, calls a service, and renders what the service returns."""
