"""The plain challenge list, the health check, and the admin for every model."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib import admin

from assay.bundle import read_bundle
from assay.server.challenges.models import Challenge
from assay.server.challenges.services.bundle_import import import_bundle
from tests.factories import DEMO_BUNDLE

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo(media, host_team):
    with read_bundle(DEMO_BUNDLE) as bundle:
        return import_bundle(bundle, host_team=host_team).challenge


def test_unapproved_challenge_is_listed_only_for_its_hosts_and_staff(client, demo, host, admin_user):
    assert demo.title not in client.get("/").content.decode()
    client.force_login(host)
    assert demo.title in client.get("/").content.decode()
    client.force_login(admin_user)
    assert demo.title in client.get("/").content.decode()


def test_published_and_approved_challenge_is_public(client, demo):
    Challenge.objects.filter(pk=demo.pk).update(approved_by_admin=True, published=True)
    page = client.get("/").content.decode()
    assert demo.title in page and "Demo hosts" not in page


def test_disabled_challenge_is_hidden(client, demo):
    Challenge.objects.filter(pk=demo.pk).update(approved_by_admin=True, published=True, is_disabled=True)
    assert demo.title not in client.get("/").content.decode()


def test_healthz(client):
    assert client.get("/healthz").json()["status"] == "ok"


def test_every_assay_model_has_an_admin_page(admin_client, demo):
    for model in apps.get_models():
        if model.__module__.startswith("assay.server."):
            assert admin.site.is_registered(model), model.__name__
            meta = model._meta
            response = admin_client.get(f"/admin/{meta.app_label}/{meta.model_name}/")
            assert response.status_code == 200, model.__name__


def test_challenge_change_page_renders(admin_client, demo):
    assert admin_client.get(f"/admin/challenges/challenge/{demo.pk}/change/").status_code == 200


def test_healthz_is_liveness_only(client, monkeypatch):
    """Whether the process answers: a dead in-process worker (or a database that does not answer) is
    /readyz's to report, never a reason to restart a server that serves requests."""
    from django.db.backends.utils import CursorWrapper

    from assay.server import inprocess_worker

    monkeypatch.setattr(inprocess_worker, "health", lambda: "the in-process worker died (RuntimeError: x)")

    def no_database(*args, **kwargs):
        raise AssertionError("/healthz asked the database")

    monkeypatch.setattr(CursorWrapper, "execute", no_database)
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
