"""Schemathesis against the OpenAPI schema of /api/v1: generated (and hostile) requests, no server error."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from .conftest import token_for


def _schema():
    import django

    django.setup()
    from django.core.wsgi import get_wsgi_application

    return schemathesis.openapi.from_wsgi("/api/v1/schema", get_wsgi_application())


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture
def api_schema(db, keep_connection):
    return _schema()


@pytest.fixture
def keep_connection():
    """As Django's test client does: a WSGI request must not close the test's database connection."""
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def auth_header(world, users, keep_connection):
    return {"Authorization": f"Bearer {token_for(users['participant'])}"}


@schema.parametrize()
@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@pytest.mark.django_db(transaction=False)
def test_no_server_error(case, auth_header):
    if "worker/" in case.path or case.path.endswith("/docs"):
        return  # the worker protocol has its own tests (it long-polls); docs are HTML
    response = case.call(headers=auth_header)
    case.validate_response(response, checks=(schemathesis.checks.not_a_server_error,))
