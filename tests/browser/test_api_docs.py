"""Swagger UI at /api/v1/docs renders the API in a real browser with no request leaving the server."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from .conftest import shot


@pytest.mark.django_db(transaction=True)
def test_the_api_docs_render_offline(new_page, live_server):
    page = new_page()
    ours = urlsplit(live_server.url).netloc
    elsewhere: list[str] = []
    failed: list[str] = []

    def route(r) -> None:
        """As on a machine without internet: anything not from our server is refused (and remembered)."""
        if urlsplit(r.request.url).netloc != ours:
            elsewhere.append(r.request.url)
            r.abort()
        else:
            r.continue_()

    page.route("**/*", route)
    page.on("response", lambda resp: resp.status >= 400 and failed.append(f"{resp.status} {resp.url}"))
    page.goto("/api/v1/docs")
    # Swagger UI's bundle ran, fetched the schema and drew one block per operation
    page.wait_for_selector(".swagger-ui .info .title:has-text('Assay API')")
    page.wait_for_selector(".opblock-summary-path[data-path='/api/v1/tokens']")
    assert page.locator(".swagger-ui .opblock").count() > 20
    shot(page, "api-docs")
    assert elsewhere == [], elsewhere
    assert failed == [], failed
