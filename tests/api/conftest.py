"""API test fixtures: the shared ones (tests/fixtures.py), with every role of the authorization matrix
(``users``) and the two-challenge ``world``. Builders (users, tokens, clients, finished submissions) are
in tests/factories.py."""

from tests.fixtures import fast_password_hashing, media, no_throttling, users, world  # noqa: F401
