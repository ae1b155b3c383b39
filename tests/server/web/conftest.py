"""Fixtures of the web pages' tests: the audit workflow's world (tests/server/audits/conftest.py), and
``audited``, that world with a summary on team A's submission (tests/server/web/audit_world.py)."""

from __future__ import annotations

import pytest

from tests.server.audits.conftest import audit  # noqa: F401  (the fixture, shared)

from .audit_world import summarise_into


@pytest.fixture
def audited(audit):  # noqa: F811  (the imported fixture)
    summarise_into(audit.sub_a)
    return audit
