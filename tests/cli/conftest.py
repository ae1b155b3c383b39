"""The CLI tests use the API tests' fixtures (a live server with the demo challenge and every role)."""

from tests.fixtures import fast_password_hashing, media, no_throttling, users, world  # noqa: F401
