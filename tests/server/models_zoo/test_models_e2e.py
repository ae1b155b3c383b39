"""End to end (issue 16 item 1): a code-bundle model registered once over /api/v1, submitted to the two
phases of the static-dataset container challenge without uploading it again, both evaluations finishing on
both leaderboards, and the model's page (web and API) listing both results — for its team, and once published
and its submissions public, for a stranger."""

from __future__ import annotations

import json

import pytest

from tests.factories import client_for, make_user, upload
from tests.server.models_zoo.test_models import CARD, finish
from tests.server.submissions.test_code_bundles import GOOD, zipped
from tests.server.submissions.test_container_submissions import static_challenge  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db


def test_a_model_registered_once_is_evaluated_on_two_phases_and_its_page_lists_both(
    participant,
    team,
    host,
    media,
    static_challenge,  # noqa: F811
    client,
):
    api = client_for(participant)
    body = {"name": "counter", "kind": "code_bundle", "card": json.dumps(CARD), "label": "1.0"}
    made = api.post("/api/v1/models", {**body, "file": upload(zipped(GOOD), "model.zip")}, format="multipart")
    assert made.status_code == 201, made.content
    model = made.json()
    version = model["versions"][0]
    assert model["intended_use"] == CARD["intended_use"] and version["number"] == 1 and not model["is_published"]

    phases = api.get(f"/api/v1/models/{model['id']}/phases").json()["results"]
    assert [p["codename"] for p in phases] == ["dev", "test"]
    subs = []
    for phase in phases:
        answer = api.post(
            f"/api/v1/models/{model['id']}/versions/1/submit", {"phase": phase["id"], "is_public": True}, format="json"
        )
        assert answer.status_code == 201, answer.content
        assert answer.json()["input_file_sha256"] == version["file_sha256"]
        subs.append(answer.json()["id"])
    from assay.server.submissions.models import Submission

    for pk, accuracy in zip(subs, (0.7, 0.8), strict=True):
        assert finish(Submission.objects.get(pk=pk), accuracy).status == "finished"

    for phase in static_challenge.phases.filter(codename__in=["dev", "test"]):
        split = phase.phase_splits.order_by("pk").first()
        board = client_for(host).get(f"/api/v1/phase-splits/{split.pk}/leaderboard").json()
        assert {row["submission"]["id"] for row in board["results"]} & set(subs), phase.codename

    results = api.get(f"/api/v1/models/{model['id']}/results").json()["results"]
    assert sorted(r["submission"] for r in results) == sorted(subs)
    assert {r["phase_codename"] for r in results} == {"dev", "test"} and all(r["output"] for r in results)

    client.force_login(participant)
    page = client.get(f"/models/{model['id']}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert html.count("Leaderboard</a>") == 2 and "Submit to a phase" in html and version["file_sha256"] in html

    stranger = make_user("bob")
    assert client_for(stranger).get(f"/api/v1/models/{model['id']}").status_code == 404
    assert api.post(f"/api/v1/models/{model['id']}/publish", {"published": True}, format="json").status_code == 200
    seen = client_for(stranger).get(f"/api/v1/models/{model['id']}/results").json()["results"]
    assert sorted(r["submission"] for r in seen) == sorted(subs)  # public submissions of public phases
    client.force_login(stranger)
    html = client.get(f"/models/{model['id']}/").content.decode()
    assert html.count("Leaderboard</a>") == 2 and "Submit to a phase" not in html


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"name": "m", "kind": "image", "card": "{not json"}, 400),
        ({"name": "m", "kind": "weights"}, 400),
        ({"name": "m\x00", "kind": "code_bundle"}, 400),
        ({"name": "m", "kind": "code_bundle", "card": json.dumps({"contact": "x" * 301})}, 400),
        ({"name": "m", "kind": "code_bundle", "team": 999999}, 403),
    ],
)
def test_hostile_registrations_are_refused_over_the_api(participant, team, media, body, status):
    answer = client_for(participant).post(
        "/api/v1/models", {**body, "file": upload(zipped(GOOD), "model.zip")}, format="multipart"
    )
    assert answer.status_code == status, answer.content
