"""Refusals on the web: one styled page in the site's layout, for Django's own 404/403/400/500 and for a
refusal a view lets escape; under /api/ the same failures stay JSON."""

from __future__ import annotations

import pytest
from django.test import Client, RequestFactory

from assay.server.refusals import Refusal
from assay.server.web.views import errors

pytestmark = pytest.mark.django_db


def _is_styled_page(response, status: int, text: str) -> None:
    assert response.status_code == status
    assert response["Content-Type"].startswith("text/html")
    body = response.content.decode()
    assert 'class="brand"' in body  # the site's header: the page extends the base layout
    assert text in body


def test_an_unknown_page_is_the_styled_404():
    response = Client().get("/no/such/page")
    _is_styled_page(response, 404, "There is no such page.")
    assert "Page not found" in response.content.decode()


def test_a_view_s_own_404_text_is_shown():
    from django.contrib.auth.models import AnonymousUser
    from django.http import Http404

    request = RequestFactory().get("/teams/1")
    request.user = AnonymousUser()
    _is_styled_page(errors.not_found(request, Http404("no such team")), 404, "no such team")
    assert Client().get("/challenges/999999/").status_code == 404


def test_an_unknown_api_path_stays_json():
    response = Client().get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "no such API path"}}


def test_every_handler_renders_the_page_with_its_status():
    request = RequestFactory().get("/somewhere")
    from django.contrib.auth.models import AnonymousUser

    request.user = AnonymousUser()
    assert errors.bad_request(request).status_code == 400
    assert errors.forbidden(request).status_code == 403
    assert errors.server_error(request).status_code == 500
    page = errors.refusal_page(request, Refusal("quota", "no submissions left today", 429, ["a", "b"]))
    assert page.status_code == 429
    assert "no submissions left today" in page.content.decode() and "<li>b</li>" in page.content.decode()


def test_an_escaping_refusal_is_its_page_not_a_500():
    request = RequestFactory().get("/challenges/1/")
    middleware = errors.RefusalPages(lambda r: None)
    from django.contrib.auth.models import AnonymousUser

    request.user = AnonymousUser()
    page = middleware.process_exception(request, Refusal("closed", "the phase is closed", 409))
    assert page is not None and page.status_code == 409 and "the phase is closed" in page.content.decode()
    api = RequestFactory().get("/api/v1/challenges/1")
    assert middleware.process_exception(api, Refusal("closed", "the phase is closed", 409)) is None
