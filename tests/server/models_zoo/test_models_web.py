"""The model pages' forms (issue 16 item 1): register from the web, submit a version to two phases from the
model page, refusals shown on the page; and hostile input on the API (oversized files, a tarball naming a
digest its config does not have, bad phase ids, NUL)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

import pytest

from assay.server.models_zoo.models import Model
from assay.server.submissions.models import Submission
from tests.factories import client_for, upload
from tests.server.images import digest_of, fake_image_tarball
from tests.server.models_zoo.test_models import CARD, image_model
from tests.server.submissions.test_code_bundles import GOOD, zipped
from tests.server.submissions.test_container_submissions import static_challenge  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db


def test_register_and_submit_to_two_phases_from_the_web(participant, team, media, static_challenge, client):  # noqa: F811
    client.force_login(participant)
    data = zipped(GOOD)  # the same bytes twice (a zip records the time it was made)
    form = {"name": "counter", "team": team.pk, "kind": "code_bundle", "label": "1.0", **CARD}
    answer = client.post("/models/", {**form, "file": upload(data, "model.zip")})
    model = Model.objects.get(name="counter")
    assert answer.status_code == 302 and answer["Location"] == f"/models/{model.pk}/"
    html = client.get(answer["Location"]).content.decode()
    assert "Submit to a phase" in html and CARD["intended_use"] in html
    for phase in static_challenge.phases.filter(codename__in=["dev", "test"]):
        answer = client.post(f"/models/{model.pk}/submit", {"version": 1, "phase": phase.pk}, follow=True)
        assert "submitted to" in answer.content.decode()
    subs = Submission.objects.filter(model_source__version__model=model)
    assert sorted(s.phase.codename for s in subs) == ["dev", "test"]
    answer = client.post(f"/models/{model.pk}/submit", {"version": 7, "phase": "x"}, follow=True)
    assert "Choose a version and a phase." in answer.content.decode()
    answer = client.post(f"/models/{model.pk}/versions", {"file": upload(data, "m.zip")}, follow=True)
    assert "already version 1" in answer.content.decode()  # the refusal, on the page
    answer = client.post("/models/", {**form, "name": "other", "file": upload(b"not a zip", "model.zip")})
    assert answer.status_code == 400 and "not a readable zip" in answer.content.decode()


def test_an_image_digest_is_the_configs_own_hash_whatever_the_tarball_claims(participant, team, media):
    honest = fake_image_tarball()
    with tarfile.open(fileobj=io.BytesIO(honest)) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    config_name = next(n for n in members if n.endswith(".json") and n != "manifest.json")
    claimed = "0" * 64 + ".json"  # a config file named for another digest
    manifest = json.loads(members["manifest.json"])
    manifest[0]["Config"] = claimed
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in ((claimed, members[config_name]), ("manifest.json", json.dumps(manifest).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    model = image_model(participant, team, buf.getvalue())
    expected = "sha256:" + hashlib.sha256(members[config_name]).hexdigest()
    assert model.versions.get().image_digest == expected == digest_of(honest)


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("submit", {"phase": "x"}, 400),
        ("submit", {"phase": 10**30}, 400),
        ("submit", {"phase": 999999}, 404),
        ("submit", {}, 400),
    ],
)
def test_hostile_submits_over_the_api(participant, team, media, path, body, status):
    model = image_model(participant, team)
    answer = client_for(participant).post(f"/api/v1/models/{model.pk}/versions/1/{path}", body, format="json")
    assert answer.status_code == status, answer.content


def test_oversized_files_nul_labels_and_cards_over_the_api(participant, team, media, settings):
    api = client_for(participant)
    model = image_model(participant, team)
    settings.SUBMISSION_MAX_BYTES = 1024
    big = fake_image_tarball(padding=4096)
    answer = api.post(f"/api/v1/models/{model.pk}/versions", {"file": upload(big, "m.tar")}, format="multipart")
    assert answer.status_code == 413, answer.content
    settings.SUBMISSION_MAX_BYTES = 10 * 1024**2
    small = fake_image_tarball(padding=1)
    answer = api.post(
        f"/api/v1/models/{model.pk}/versions", {"file": upload(small, "m.tar"), "label": "v\x00"}, format="multipart"
    )
    assert answer.status_code == 400 and model.versions.count() == 1
    answer = api.patch(f"/api/v1/models/{model.pk}", {"summary": "x" * 20_001}, format="json")
    assert answer.status_code == 400 and "at most" in answer.content.decode()
    answer = api.patch(f"/api/v1/models/{model.pk}", {"summary": "Counts."}, format="json")
    assert answer.status_code == 200 and answer.json()["summary"] == "Counts."
