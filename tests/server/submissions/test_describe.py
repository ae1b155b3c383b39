"""Renaming a submission's method after submitting (``lifecycle.describe``): its team only, on the web
and ``PATCH /api/v1/submissions/<id>``; the cached leaderboard shows the new name at once."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from assay.server.submissions.models import Submission
from assay.server.submissions.services import lifecycle
from assay.server.submissions.services.errors import SubmissionError
from tests.factories import World, make_user

pytestmark = [pytest.mark.django_db, pytest.mark.results(("A", 0.9, 0.5), ("B", 0.5, 0.5))]


def api(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def sub_of(world: World, team: str = "A") -> Submission:
    return Submission.objects.get(participant_team=world.teams[team])


def refused(user, sub, **fields) -> tuple[str, int]:
    with pytest.raises(SubmissionError) as err:
        lifecycle.describe(user, sub, **fields)
    return err.value.code, err.value.status


def test_the_team_renames_its_method_and_nobody_else_may(world: World):
    sub = sub_of(world)
    done = lifecycle.describe(world.users["A"], sub, method_name="  ResNet-50 + TTA ", method_description="d")
    assert (done.method_name, done.method_description) == ("ResNet-50 + TTA", "d")
    assert refused(world.host, sub, method_name="x") == ("forbidden", 403)
    assert refused(world.users["B"], sub, method_name="x") == ("not_found", 404)
    sub.refresh_from_db()
    assert sub.method_name == "ResNet-50 + TTA"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"method_name": "x" * (lifecycle.METHOD_NAME_MAX + 1)}, "longer than 1000"),
        ({"method_description": "x" * (lifecycle.METHOD_DESCRIPTION_MAX + 1)}, "longer than 20000"),
        ({"method_name": "a\x00b"}, "null characters"),
        ({}, "give method_name or method_description"),
    ],
)
def test_bad_input_is_refused_with_why(world: World, fields, message):
    with pytest.raises(SubmissionError) as err:
        lifecycle.describe(world.users["A"], sub_of(world), **fields)
    assert (err.value.status, message in err.value.message) == (400, True)


def test_api_patch_statuses(world: World):
    sub = sub_of(world)
    url = f"/api/v1/submissions/{sub.pk}"
    got = api(world.users["A"]).patch(url, {"method_name": "Mine"}, format="json")
    assert got.status_code == 200 and got.json()["method_name"] == "Mine"
    assert api(world.users["A"]).patch(url, {"method_name": ["a"]}, format="json").status_code == 400
    assert api(world.users["A"]).patch(url, [1, 2], format="json").status_code == 400
    assert api(world.users["A"]).patch(url, {"method_name": "x" * 1001}, format="json").status_code == 400
    assert api(world.users["A"]).patch(url, {}, format="json").status_code == 400
    assert api(world.host).patch(url, {"method_name": "host's"}, format="json").status_code == 403
    assert api(world.users["B"]).patch(url, {"method_name": "b"}, format="json").status_code == 404
    assert api(make_user("eve")).patch(url, {"method_name": "e"}, format="json").status_code == 404
    assert api().patch(url, {"method_name": "e"}, format="json").status_code == 401
    assert api(world.users["A"]).patch("/api/v1/submissions/999999", {"method_name": "e"}).status_code == 404
    sub.refresh_from_db()
    assert sub.method_name == "Mine"


def test_web_form_renames_and_refuses_strangers(world: World):
    sub = sub_of(world)
    web = Client()
    web.force_login(world.users["A"])
    url = f"/submissions/{sub.pk}/describe"
    page = web.get(f"/challenges/{world.challenge.pk}/submissions")
    assert page.status_code == 200 and f'id="method-name-{sub.pk}"'.encode() in page.content
    assert web.post(url, {"method_name": "From the web", "method_description": "how"}).status_code == 302
    sub.refresh_from_db()
    assert (sub.method_name, sub.method_description) == ("From the web", "how")
    assert web.post(url, {"method_name": "x" * 1001}, follow=True).content.count(b"longer than 1000") == 1
    web.force_login(world.users["B"])
    assert web.post(url, {"method_name": "b"}).status_code == 404
    sub.refresh_from_db()
    assert sub.method_name == "From the web"


def test_the_cached_leaderboard_shows_the_new_name(world: World, settings):
    settings.READ_CACHE_SECONDS = 300
    url = f"/api/v1/phase-splits/{world.ps().pk}/leaderboard"

    def methods() -> list:
        response = api().get(url)
        assert response.status_code == 200, response.content
        return sorted(r["submission"]["method_name"] for r in response.json()["results"])

    before = methods()
    assert methods() == before  # now served from the cache
    lifecycle.describe(world.users["A"], sub_of(world), method_name="Renamed")
    assert "Renamed" in methods()


def test_without_a_bump_the_cache_would_serve_the_old_name(world: World, settings):
    """The check above can fail: a write that bumps nothing (a queryset update) leaves the cached page."""
    settings.READ_CACHE_SECONDS = 300
    url = f"/api/v1/phase-splits/{world.ps().pk}/leaderboard"
    first = api().get(url).json()["results"]
    Submission.objects.filter(pk=sub_of(world).pk).update(method_name="Unseen")
    assert api().get(url).json()["results"] == first


def test_evalai_update_submission_meta_renames_through_the_same_rule(world: World):
    sub = sub_of(world)
    url = f"/api/jobs/challenges/{world.challenge.pk}/submissions/{sub.pk}/update_submission_meta/"
    got = api(world.users["A"]).patch(url, {"method_name": "Via EvalAI"}, format="json")
    assert got.status_code == 200 and got.json()["method_name"] == "Via EvalAI"
    assert api(world.users["A"]).patch(url, {"method_name": "x" * 1001}, format="json").status_code == 400
    assert api(world.host).patch(url, {"method_name": "host's"}, format="json").status_code == 403
    sub.refresh_from_db()
    assert sub.method_name == "Via EvalAI"
