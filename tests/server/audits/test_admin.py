"""The audits models in Django's admin: listed for operators, the trail read-only, releases never deleted."""

from __future__ import annotations

import pytest
from django.test import Client

from assay.server.audits.models import TrailRecord
from assay.server.audits.services import trail

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(django_user_model):
    client = Client()
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.org", "pw"))
    return client


def test_every_audits_model_is_listed(operator, audit):
    for model in ("auditsummary", "questionnaire", "answerset", "review", "release", "trailrecord"):
        assert operator.get(f"/admin/audits/{model}/").status_code == 200, model


def test_the_trail_is_read_only(operator, audit):
    record = trail.append(audit.sub_a, "answered", "userA", {"answered": 1})
    page = operator.get(f"/admin/audits/trailrecord/{record.pk}/change/")
    assert page.status_code == 200 and b'name="kind"' not in page.content  # shown, not a form field
    assert operator.post(f"/admin/audits/trailrecord/{record.pk}/change/", {"kind": "released"}).status_code == 403
    assert operator.get("/admin/audits/trailrecord/add/").status_code == 403
    assert operator.post(f"/admin/audits/trailrecord/{record.pk}/delete/", {"post": "yes"}).status_code == 403
    assert TrailRecord.objects.get(pk=record.pk).kind == "answered"
