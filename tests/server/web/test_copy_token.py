"""The copy button beside a new token: hidden until the script finds a clipboard, the token always in a
selectable <pre> (progressive enhancement)."""

from __future__ import annotations

import pytest
from django.test import Client

from assay.server.challenges.models import Challenge
from tests.factories import make_user

pytestmark = pytest.mark.django_db

BUTTON = '<button type="button" class="small secondary" data-copy="new-token" hidden>Copy token</button>'


def test_new_api_token_has_a_hidden_copy_button_and_selectable_text():
    web = Client()
    web.force_login(make_user("carol"))
    assert BUTTON not in web.get("/account/tokens").content.decode()  # no token shown, nothing to copy
    html = web.post("/account/tokens", {"name": "laptop", "days": 30}).content.decode()
    assert BUTTON in html and '<pre id="new-token">ap_' in html
    assert "/static/web/copy.js" in html


def test_new_worker_token_has_the_same_button(demo_challenge, host):
    Challenge.objects.filter(pk=demo_challenge.pk).update(remote_evaluation=True)
    web = Client()
    web.force_login(host)
    response = web.post(f"/challenges/{demo_challenge.pk}/host/workers", {"name": "box"})
    assert response.status_code == 200
    html = response.content.decode()
    assert BUTTON in html and '<pre id="new-token">aw_' in html and "/static/web/copy.js" in html
