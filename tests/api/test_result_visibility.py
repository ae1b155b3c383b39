"""A hidden split's scores never reach a participant, through any face; the hosts see everything.

The demo's Test phase ranks a ``public`` split (visibility 3) and keeps a ``private`` one for hosts
(visibility 1). Alice's team submits to it; the queue records a result for both splits, a host-only
metadata file, and (in one case) the script's own result document, which quotes the private split.
Then every place a result can be read is read as Alice, as Bob (another team), as a host and as an admin.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
from django.test import Client
from django.utils import timezone

from tests.factories import client_for, finish, upload

pytestmark = pytest.mark.django_db

PUBLIC = {"Accuracy": 0.825, "F1": 0.6}
PRIVATE = {"Accuracy": 0.575, "F1": 0.7302}
SECRET = "0.7302"  # the private F1: in no participant's answer, in every host's
OUTPUT = {"result": [{"public": PUBLIC}, {"private": PRIVATE}], "submission_metadata": {"annotations": "v2-secret"}}
CUT = [{"public": PUBLIC}]
FULL = [{"public": PUBLIC}, {"private": PRIVATE}]


def _scored(world, users, output: dict):
    from assay.server.submissions.services.submit import SubmissionFields, submit

    phase = world["challenge"].phases.get(codename="test")
    sub = submit(users["participant"], phase, upload(b'{"test-a0": 1}'), "preds.json", SubmissionFields())
    done = finish(sub, output)
    assert done.status == "finished", done.failure_reason
    return done


@pytest.fixture
def scored(world, users):
    """Alice's test-phase submission; Assay wrote the result document from the splits."""
    return _scored(world, users, OUTPUT)


@pytest.fixture
def free_form(world, users):
    """Like ``scored``, but the evaluation script wrote its own result document, quoting the private split."""
    return _scored(world, users, {**OUTPUT, "submission_result": {"test": PRIVATE, "note": "well done"}})


def web_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _get(client, url: str):
    """Follow a signed (absolute) URL with the same client."""
    return client.get(url.split("testserver", 1)[-1])


# --- /api/v1: detail, lists, result file, signed result URL -----------------------------------------


@pytest.mark.parametrize(("reader", "expected"), [("participant", CUT), ("host", FULL), ("admin", FULL)])
def test_api_detail_cuts_hidden_splits(scored, users, reader, expected):
    response = client_for(users[reader]).get(f"/api/v1/submissions/{scored.pk}")
    assert response.status_code == 200
    assert response.json()["output"]["result"] == expected
    assert (SECRET in response.content.decode()) is (reader != "participant")


def test_api_detail_refuses_another_team_with_404(scored, users):
    response = client_for(users["other_participant"]).get(f"/api/v1/submissions/{scored.pk}")
    assert response.status_code == 404


def test_api_phase_list_cuts_and_its_result_url_serves_the_cut_document(scored, users):
    alice = client_for(users["participant"])
    response = alice.get(f"/api/v1/phases/{scored.phase_id}/submissions")
    assert response.status_code == 200
    row = response.json()["results"][0]
    assert row["output"]["result"] == CUT
    assert SECRET not in response.content.decode()
    document = _get(client_for(), row["result_url"])  # a signed URL: no credentials needed
    assert document.status_code == 200
    assert json.loads(b"".join(document.streaming_content) if document.streaming else document.content) == CUT


def test_api_host_list_and_csv_show_every_split(scored, users):
    host = client_for(users["host"])
    challenge = scored.phase.challenge_id
    rows = host.get(f"/api/v1/challenges/{challenge}/submissions").json()["results"]
    assert rows[0]["output"]["result"] == FULL  # the one submission shape: hosts see every split
    exported = host.get(f"/api/v1/challenges/{challenge}/submissions?export=csv")
    assert exported.status_code == 200 and SECRET in exported.content.decode()
    alice = client_for(users["participant"]).get(f"/api/v1/challenges/{challenge}/submissions?export=csv")
    assert alice.status_code == 403


def _body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


@pytest.mark.parametrize(("reader", "expected"), [("participant", CUT), ("host", FULL)])
def test_api_result_file_is_cut(scored, users, reader, expected):
    client = client_for(users[reader])
    response = client.get(f"/api/v1/submissions/{scored.pk}/result")
    assert response.status_code == 200
    assert json.loads(response.content) == expected
    url = client.get(f"/api/v1/phases/{scored.phase_id}/submissions").json()["results"]
    if reader == "participant":
        assert json.loads(_body(_get(client_for(), url[0]["result_url"]))) == expected


def test_free_form_result_document_is_for_hosts_while_a_split_is_hidden(free_form, users):
    """The script's own document may quote the private split: the team gets the visible splits instead."""
    alice = client_for(users["participant"])
    cut = alice.get(f"/api/v1/submissions/{free_form.pk}/result")
    assert cut.status_code == 200
    assert json.loads(cut.content) == CUT
    url = alice.get(f"/api/v1/phases/{free_form.phase_id}/submissions").json()["results"][0]["result_url"]
    assert json.loads(_body(_get(client_for(), url))) == CUT
    host = client_for(users["host"]).get(f"/api/v1/submissions/{free_form.pk}/result")
    assert host.status_code == 200
    assert json.loads(host.content) == {"test": PRIVATE, "note": "well done"}


@pytest.mark.parametrize("how", ["visibility 2", "revealed"])
def test_the_team_sees_the_split_once_its_visibility_allows(free_form, users, how):
    """effective_visibility is the rule: visibility 2 (owner and host), or reveal_at passed, opens it."""
    from assay.server.challenges.models import ChallengePhaseSplit

    private = ChallengePhaseSplit.objects.filter(phase=free_form.phase, dataset_split__codename="private")
    if how == "visibility 2":
        private.update(visibility=2)
    else:
        private.update(reveal_at=timezone.now() - dt.timedelta(minutes=1))
    alice = client_for(users["participant"])
    assert alice.get(f"/api/v1/submissions/{free_form.pk}").json()["output"]["result"] == FULL
    document = alice.get(f"/api/v1/submissions/{free_form.pk}/result")
    assert document.status_code == 200
    assert json.loads(document.content) == {"test": PRIVATE, "note": "well done"}


# --- the web pages ----------------------------------------------------------------------------------


def test_web_my_submissions_cuts_hidden_splits(scored, users):
    url = f"/challenges/{scored.phase.challenge_id}/submissions"
    for path in (url, url + "/rows"):
        page = web_client(users["participant"]).get(path)
        assert page.status_code == 200
        text = page.content.decode()
        assert "0.8250" in text and SECRET not in text and "private" not in text.split("<tbody", 1)[-1]


def test_web_host_page_shows_every_split(scored, users):
    page = web_client(users["host"]).get(f"/challenges/{scored.phase.challenge_id}/host/submissions")
    assert page.status_code == 200 and SECRET in page.content.decode()


@pytest.mark.parametrize(("reader", "status", "expected"), [("participant", 200, CUT), ("host", 200, FULL),
                                                            ("other_participant", 404, None)])  # fmt: skip
def test_web_result_file_is_cut(scored, users, reader, status, expected):
    response = web_client(users[reader]).get(f"/submissions/{scored.pk}/files/result")
    assert response.status_code == status
    if expected is not None:
        assert json.loads(_body(response)) == expected


def test_web_free_form_result_is_the_visible_splits_for_the_team(free_form, users):
    team = web_client(users["participant"]).get(f"/submissions/{free_form.pk}/files/result")
    assert team.status_code == 200 and json.loads(_body(team)) == CUT
    host = web_client(users["host"]).get(f"/submissions/{free_form.pk}/files/result")
    assert host.status_code == 200 and json.loads(_body(host)) == {"test": PRIVATE, "note": "well done"}


@pytest.mark.parametrize(("reader", "status"), [("participant", 404), ("other_participant", 404), ("host", 200)])
def test_web_metadata_file_is_for_hosts(scored, users, reader, status):
    response = web_client(users[reader]).get(f"/submissions/{scored.pk}/files/metadata")
    assert response.status_code == status
    if status == 200:
        assert json.loads(_body(response)) == {"annotations": "v2-secret"}


# --- the EvalAI-compatible API ------------------------------------------------------------------------


def _evalai_submission(client, sub) -> dict:
    response = client.get(f"/api/jobs/submission/{sub.pk}/")
    assert response.status_code == 200
    return response.json()


@pytest.mark.parametrize(("reader", "expected"), [("participant", CUT), ("host", FULL)])
def test_evalai_submission_result_file_is_cut(scored, users, reader, expected):
    client = client_for(users[reader])
    shown = _evalai_submission(client, scored)
    assert json.loads(_body(_get(client_for(), shown["submission_result_file"]))) == expected
    listed = client.get(
        f"/api/jobs/challenge/{scored.phase.challenge_id}/challenge_phase/{scored.phase_id}/submission/"
    )
    if reader == "participant":
        row = listed.json()["results"][0]
        assert json.loads(_body(_get(client_for(), row["submission_result_file"]))) == CUT
        assert row["submission_metadata_file"] is None
        assert shown["submission_metadata_file"] is None
    else:
        assert shown["submission_metadata_file"] is not None


def test_evalai_files_by_key(scored, free_form, users):
    alice, host = client_for(users["participant"]), client_for(users["host"])

    def by_key(client, sub, field):
        return client.get("/api/jobs/submission_files/", {"bucket": "b", "key": getattr(sub, field).name})

    assert by_key(alice, scored, "submission_metadata_file").status_code == 406  # EvalAI's "does not exist"
    signed = by_key(host, scored, "submission_metadata_file")
    assert signed.status_code == 200
    assert json.loads(_body(_get(client_for(), signed.json()["signed_url"]))) == {"annotations": "v2-secret"}
    cut = by_key(alice, scored, "submission_result_file")
    assert cut.status_code == 200
    assert json.loads(_body(_get(client_for(), cut.json()["signed_url"]))) == CUT
    cut = by_key(alice, free_form, "submission_result_file")
    assert json.loads(_body(_get(client_for(), cut.json()["signed_url"]))) == CUT
    whole = by_key(host, free_form, "submission_result_file")
    assert json.loads(_body(_get(client_for(), whole.json()["signed_url"]))) == {"test": PRIVATE, "note": "well done"}


def test_signed_result_url_checks_the_reader_again_when_used(scored, users):
    """A URL handed to a member who has since left the team no longer serves the document."""
    from assay.server.teams.models import ParticipantTeamMember

    url = client_for(users["participant"]).get(f"/api/v1/phases/{scored.phase_id}/submissions").json()
    url = url["results"][0]["result_url"]
    ParticipantTeamMember.objects.filter(user=users["participant"]).update(status="removed")
    assert _get(client_for(), url).status_code == 404


# --- exports ------------------------------------------------------------------------------------------


def _csv(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(_body(response).decode())))


def test_phase_submissions_export(scored, free_form, users):
    url = f"/api/v1/phases/{scored.phase_id}/submissions/export.csv"
    alice = _csv(client_for(users["participant"]).get(url))
    assert {row["Result File"] for row in alice} == {
        scored.submission_result_file.name,
        free_form.submission_result_file.name,
    }  # readable (cut) for the team
    assert {row.get("Submission Metadata File") for row in alice} == {None}  # no such column for participants
    host = _csv(client_for(users["host"]).get(url))
    assert {r["Submission Metadata File"] for r in host} == {
        scored.submission_metadata_file.name,
        free_form.submission_metadata_file.name,
    }


def test_host_web_export_has_every_split(scored, users):
    response = web_client(users["host"]).get(f"/challenges/{scored.phase.challenge_id}/host/export/submissions.csv")
    assert response.status_code == 200
    assert SECRET in _body(response).decode()
    refused = web_client(users["participant"]).get(
        f"/challenges/{scored.phase.challenge_id}/host/export/submissions.csv"
    )
    assert refused.status_code == 404


@pytest.mark.parametrize(("reader", "status"), [("participant", 403), ("other_participant", 403), ("host", 200)])
def test_private_leaderboard_export(scored, users, reader, status):
    from assay.server.challenges.models import ChallengePhaseSplit

    ps = ChallengePhaseSplit.objects.get(phase=scored.phase, dataset_split__codename="private")
    response = client_for(users[reader]).get(f"/api/v1/phase-splits/{ps.pk}/leaderboard/export.json")
    assert response.status_code == status
    assert (SECRET in _body(response).decode()) is (status == 200)


def test_a_split_revealed_by_its_date_is_listed_alike_on_both_faces(world, users):
    """/api/v1 and the EvalAI API list a reader's phase-splits by one rule (challenges.services.listing)."""
    from assay.server.challenges.models import ChallengePhaseSplit

    challenge = world["challenge"]
    hidden = ChallengePhaseSplit.objects.get(phase__challenge=challenge, visibility=1)

    def listed() -> tuple[set, set]:
        alice = client_for(users["participant"])
        native = {r["id"] for r in alice.get(f"/api/v1/challenges/{challenge.pk}/phase-splits").json()["results"]}
        evalai = {r["id"] for r in alice.get(f"/api/challenges/{challenge.pk}/challenge_phase_split").json()}
        return native, evalai

    native, evalai = listed()
    assert native == evalai and hidden.pk not in native
    ChallengePhaseSplit.objects.filter(pk=hidden.pk).update(reveal_at=timezone.now() - dt.timedelta(minutes=1))
    native, evalai = listed()
    assert native == evalai and hidden.pk in native
