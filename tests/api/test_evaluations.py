"""A host's re-run in place keeps the earlier evaluation: /api/v1/submissions/N/evaluations lists every one with
its evidence (worker, what it was scored against, its files), and .../evaluations/M/files/KIND serves each file
by the current evaluation's rule (ResultReader): hosts the stored bytes (presigned on an object store), the team
the splits it may see and its logs unless the phase hides them; nobody else anything (404).

The world: alice's test-phase submission (a public and a host-only split), evaluated by worker "first-box",
re-run by the host, evaluated again by worker "second-box" with other scores and logs."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.utils import timezone

from tests.api.test_schemathesis import _schema, keep_connection  # noqa: F401  (a WSGI call keeps the test's db)
from tests.factories import client_for, upload
from tests.s3 import s3_bucket, s3_server, s3_storage  # noqa: F401  (a real S3 API server for the presign test)

pytestmark = pytest.mark.django_db

FIRST_PUBLIC, SECOND_PUBLIC = [{"public": {"Accuracy": 0.5, "F1": 0.5}}], [{"public": {"Accuracy": 0.75, "F1": 0.5}}]
FIRST = {"result": [*FIRST_PUBLIC, {"private": {"Accuracy": 0.1111, "F1": 0.5}}], "submission_metadata": {"a": 1}}
SECOND = {"result": [*SECOND_PUBLIC, {"private": {"Accuracy": 0.2222, "F1": 0.5}}], "submission_metadata": {"b": 2}}
HIDDEN = ("0.1111", "0.2222")  # the host-only split's scores: never in a participant's answer


def _evaluate(sub, worker_name: str, output: dict, stdout: str):
    from assay.server.submissions.services import queue
    from assay.server.submissions.services.tokens import create_worker_token

    token = create_worker_token(None, worker_name)[0]
    claimed = queue.claim_next(token, f"{worker_name}-1")
    assert claimed is not None and claimed.pk == sub.pk
    completion = queue.Completion(attempt=claimed.attempt, output=output, stdout=stdout, stderr=f"warn /srv/{stdout}")
    done = queue.complete(token, sub.pk, completion)
    assert done.status == "finished", done.failure_reason
    return done


@pytest.fixture
def rerun(world, users):
    """Alice's submission, evaluated twice (the host re-ran it in place between the two)."""
    from assay.server.submissions.services import lifecycle
    from assay.server.submissions.services.submit import SubmissionFields, submit

    phase = world["challenge"].phases.get(codename="test")
    sub = submit(users["participant"], phase, upload(b'{"test-a0": 1}'), "preds.json", SubmissionFields())
    sub = _evaluate(sub, "first-box", FIRST, "first-run")
    lifecycle.rerun(users["host"], sub)
    return _evaluate(sub, "second-box", SECOND, "second-run")


def _list(user, sub):
    return client_for(user).get(f"/api/v1/submissions/{sub.pk}/evaluations")


def _file(user, sub, number, kind: str):
    return client_for(user).get(f"/api/v1/submissions/{sub.pk}/evaluations/{number}/files/{kind}")


@pytest.mark.parametrize("reader", ["host", "admin"])
def test_hosts_see_every_evaluation_with_its_evidence(rerun, users, reader):
    response = _list(users[reader], rerun)
    assert response.status_code == 200, response.content
    first, second = response.json()["results"]
    assert (first["number"], first["current"], second["number"], second["current"]) == (1, False, 2, True)
    assert first["output"]["result"] == FIRST["result"] and second["output"]["result"] == SECOND["result"]
    assert (first["worker"], second["worker"]) == ("first-box", "second-box")
    assert first["rerun_by"] == "host1" and first["rerun_at"] and second["rerun_by"] is None
    digest = rerun.phase.test_annotation_sha256 or None
    for ev in (first, second):
        assert ev["status"] == "finished" and ev["started_at"] and ev["completed_at"]
        assert ev["scored_against"] == {"recorded": True, "annotation_sha256": digest, "data_package": None}
        assert set(ev["files"]) == {"stdout", "stderr", "result", "metadata"}
    url = first["files"]["stdout"]
    assert url.endswith(f"/api/v1/submissions/{rerun.pk}/evaluations/1/files/stdout")
    assert client_for(users[reader]).get(url.split("testserver", 1)[1]).content == b"first-run"


def test_the_team_sees_its_evaluations_cut_without_the_hosts_evidence(rerun, users):
    response = _list(users["participant"], rerun)
    assert response.status_code == 200
    first, second = response.json()["results"]
    assert first["output"]["result"] == FIRST_PUBLIC and second["output"]["result"] == SECOND_PUBLIC
    assert first["worker"] is None and first["rerun_by"] is None and first["rerun_at"]
    assert first["scored_against"]["annotation_sha256"] is None  # the labels' digest is the hosts'
    assert set(first["files"]) == {"stdout", "stderr", "result"}  # metadata: the hosts'
    assert not any(secret in response.content.decode() for secret in HIDDEN)


def test_a_phase_that_hides_logs_hides_every_evaluations_logs_from_the_team(rerun, users):
    from assay.server.challenges.models import ChallengePhase

    ChallengePhase.objects.filter(pk=rerun.phase_id).update(disable_logs=True)
    first, second = _list(users["participant"], rerun).json()["results"]
    assert set(first["files"]) == set(second["files"]) == {"result"}
    for number in (1, 2):
        assert _file(users["participant"], rerun, number, "stdout").status_code == 403
        assert _file(users["participant"], rerun, number, "result").status_code == 200
    assert set(_list(users["host"], rerun).json()["results"][0]["files"]) >= {"stdout", "stderr"}


@pytest.mark.parametrize(("reader", "status"), [("other_participant", 404), ("other_host", 404)])
def test_anyone_else_is_told_no_such_submission(rerun, users, reader, status):
    assert _list(users[reader], rerun).status_code == status
    for kind in ("stdout", "result", "metadata"):
        assert _file(users[reader], rerun, 1, kind).status_code == status


def test_anonymous_is_asked_to_sign_in(rerun):
    assert client_for().get(f"/api/v1/submissions/{rerun.pk}/evaluations").status_code == 401
    assert client_for().get(f"/api/v1/submissions/{rerun.pk}/evaluations/1/files/stdout").status_code == 401


def test_each_evaluations_files_for_the_host(rerun, users):
    host = users["host"]
    assert _file(host, rerun, 1, "stdout").content == b"first-run"
    assert _file(host, rerun, 2, "stdout").content == b"second-run"
    assert _file(host, rerun, 1, "stderr").content == b"warn /srv/first-run"  # the stored text, paths and all
    assert json.loads(_file(host, rerun, 1, "metadata").content) == {"a": 1}
    result = _file(host, rerun, 1, "result")
    assert result["Content-Type"] == "application/json" and "0.1111" in result.content.decode()
    assert 'filename="submission-' in result["Content-Disposition"]


def test_each_evaluations_files_for_the_team_are_cut(rerun, users):
    alice = users["participant"]
    result = _file(alice, rerun, 1, "result")
    assert result.status_code == 200 and json.loads(result.content) == FIRST_PUBLIC
    assert _file(alice, rerun, 1, "stdout").content == b"first-run"
    assert b"/srv/" not in _file(alice, rerun, 1, "stderr").content  # the server's folders are the hosts'
    assert _file(alice, rerun, 1, "metadata").status_code == 404
    assert _file(alice, rerun, 2, "metadata").status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "evaluations/0/files/stdout",
        "evaluations/3/files/stdout",
        "evaluations/99999999999999999999/files/stdout",
        "evaluations/1/files/input",  # the submission's own file: not an evaluation's
        "evaluations/1/files/STDOUT",
        "evaluations/1/files/stdout_file",
        "evaluations/1/files/" + "x" * 2000,
        "evaluations/1/files/..%2F..%2Fsettings.py",
        "evaluations/-1/files/stdout",
        "evaluations/1.0/files/stdout",
    ],
)
def test_hostile_numbers_and_kinds_are_404(rerun, users, path):
    response = client_for(users["host"]).get(f"/api/v1/submissions/{rerun.pk}/{path}")
    assert response.status_code == 404


def test_another_submissions_number_reaches_only_its_own_evaluations(rerun, world, users):
    from assay.server.submissions.services.submit import SubmissionFields, submit

    phase = world["challenge"].phases.get(codename="test")
    other = submit(users["participant"], phase, upload(b'{"test-a0": 0}'), "other.json", SubmissionFields())
    other = _evaluate(other, "third-box", FIRST, "third-run")
    rows = _list(users["host"], other).json()["results"]
    assert [r["number"] for r in rows] == [1] and rows[0]["worker"] == "third-box"
    assert _file(users["host"], other, 1, "stdout").content == b"third-run"
    assert _file(users["host"], other, 2, "stdout").status_code == 404  # rerun's evaluation 2 is not other's
    assert client_for(users["host"]).get("/api/v1/submissions/999999999/evaluations").status_code == 404


def test_a_waiting_evaluation_is_listed_without_worker_files_or_scored_against(rerun, users):
    from assay.server.submissions.services import lifecycle

    lifecycle.rerun(users["host"], rerun)
    rows = _list(users["host"], rerun).json()["results"]
    assert [r["number"] for r in rows] == [1, 2, 3]
    waiting = rows[2]
    assert waiting["current"] and waiting["status"] == "submitted"
    assert waiting["worker"] is None and waiting["files"] == {} and waiting["scored_against"] is None
    assert rows[1]["worker"] == "second-box" and rows[1]["rerun_by"] == "host1"
    assert _file(users["host"], rerun, 2, "stdout").content == b"second-run"  # kept by the second re-run
    assert _file(users["host"], rerun, 3, "stdout").status_code == 404


def test_logs_removed_by_retention_are_gone_for_earlier_evaluations_too(rerun, users):
    from assay.server.submissions.models import Submission, SubmissionAttempt

    SubmissionAttempt.objects.filter(submission=rerun).update(stdout_file="")
    Submission.objects.filter(pk=rerun.pk).update(files_removed_at=timezone.now(), files_removed_policy="logs")
    for reader in ("host", "participant"):
        response = _file(users[reader], rerun, 1, "stdout")
        assert response.status_code == 410 and response.json()["error"]["code"] == "removed_by_retention"
        first = _list(users[reader], rerun).json()["results"][0]
        assert "stdout" not in first["files"] and "result" in first["files"]  # its result stays


def test_the_host_is_sent_to_the_object_store(s3_storage, s3_server, world, users):  # noqa: F811
    import httpx

    from assay.server.submissions.services import lifecycle
    from assay.server.submissions.services.submit import SubmissionFields, submit

    phase = world["challenge"].phases.get(codename="test")
    sub = submit(users["participant"], phase, upload(b'{"test-a0": 1}'), "preds.json", SubmissionFields())
    sub = _evaluate(sub, "first-box", FIRST, "first-run")
    lifecycle.rerun(users["host"], sub)
    response = _file(users["host"], sub, 1, "stdout")
    assert response.status_code == 302 and response["Location"].startswith(s3_server.endpoint)
    assert httpx.get(response["Location"]).content == b"first-run"
    team = _file(users["participant"], sub, 1, "result")  # cut for the team: served here, read from the store
    assert team.status_code == 200 and json.loads(team.content) == FIRST_PUBLIC


# --- the web: the host's page of the submission, and each evaluation's file ---------------------------------


def _web(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_hosts_page_shows_each_evaluations_evidence_and_links(rerun, world, users):
    base = f"/challenges/{world['challenge'].pk}/host/submissions/{rerun.pk}"
    html = _web(users["host"]).get(base).content.decode()
    assert "first-box" in html and "second-box" in html
    for kind in ("stdout", "stderr", "result", "metadata"):
        assert f'href="/submissions/{rerun.pk}/evaluations/1/files/{kind}"' in html
    digest = rerun.phase.test_annotation_sha256
    assert (f">{digest[:12]}</code>" in html) if digest else ("no annotation file" in html)
    page = _web(users["host"]).get(f"/submissions/{rerun.pk}/evaluations/1/files/stdout")
    assert page.status_code == 200 and page.content == b"first-run"
    assert page["Content-Security-Policy"] == "default-src 'none'; sandbox"


@pytest.mark.parametrize(
    ("reader", "status"), [("participant", 200), ("other_participant", 404), ("other_host", 404), ("host", 200)]
)
def test_the_web_evaluation_file_follows_the_one_rule(rerun, users, reader, status):
    page = _web(users[reader]).get(f"/submissions/{rerun.pk}/evaluations/1/files/result")
    assert page.status_code == status
    if status == 200:
        assert ("0.1111" in page.content.decode()) is (reader == "host")
    assert Client().get(f"/submissions/{rerun.pk}/evaluations/1/files/result").status_code == 302  # sign in


def test_the_schema_describes_both_routes():
    import yaml

    schema = yaml.safe_load(Client().get("/api/v1/schema").content)
    listing = schema["paths"]["/api/v1/submissions/{submission_id}/evaluations"]["get"]
    body = listing["responses"]["200"]["content"]["application/json"]["schema"]
    page = schema["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]
    item = schema["components"]["schemas"][page["properties"]["results"]["items"]["$ref"].rsplit("/", 1)[1]]
    assert {"number", "current", "worker", "scored_against", "files", "output"} <= set(item["properties"])
    download = schema["paths"]["/api/v1/submissions/{submission_id}/evaluations/{number}/files/{kind}"]["get"]
    kind = next(p for p in download["parameters"] if p["name"] == "kind")
    assert sorted(kind["schema"]["enum"]) == ["metadata", "result", "stderr", "stdout"]
    assert {"200", "302", "403", "404", "410"} <= set(download["responses"])


def test_real_answers_match_the_documented_schema(rerun, users, keep_connection):  # noqa: F811
    """The host's and the team's lists (nulls, cut outputs, file maps) as the schema documents them."""
    import schemathesis

    from tests.factories import token_for

    operation = _schema()["/api/v1/submissions/{submission_id}/evaluations"]["GET"]
    for reader in ("host", "participant"):
        case = operation.Case(path_parameters={"submission_id": rerun.pk})
        response = case.call(headers={"Authorization": f"Bearer {token_for(users[reader])}"})
        assert response.status_code == 200, response.text
        case.validate_response(response, checks=(schemathesis.checks.response_schema_conformance,))


def _zip(labels: bytes):
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("labels/test.json", labels)
    buf.seek(0)
    return buf


def test_each_evaluation_names_the_package_version_it_was_scored_against(world, users):
    """The phase pinned v1 for the first evaluation and v2 (re-pinned) for the re-run: each names its own, on the
    host's page and in the list (the team too: an on-request package's card is every signed-in user's)."""
    from assay.server.challenges.models import ChallengePhase
    from assay.server.data_packages.services import publishing
    from assay.server.submissions.services import lifecycle
    from assay.server.submissions.services.submit import SubmissionFields, submit

    package = publishing.create_package(users["host"], world["host_team"].pk, "ev-data", "Ev", "on_request", {})
    v1 = publishing.publish_version(users["host"], package, _zip(b'{"a": 1}'))
    v2 = publishing.publish_version(users["host"], package, _zip(b'{"a": 2}'))
    phase = world["challenge"].phases.get(codename="test")
    ChallengePhase.objects.filter(pk=phase.pk).update(data_package_version=v1)
    sub = submit(users["participant"], phase, upload(b'{"test-a0": 1}'), "preds.json", SubmissionFields())
    sub = _evaluate(sub, "first-box", FIRST, "first-run")
    lifecycle.rerun(users["host"], sub)
    ChallengePhase.objects.filter(pk=phase.pk).update(data_package_version=v2)
    sub = _evaluate(sub, "second-box", SECOND, "second-run")

    first, second = _list(users["host"], sub).json()["results"]
    assert first["scored_against"]["data_package"] == {"name": "ev-data", "version": v1.number}
    assert second["scored_against"]["data_package"] == {"name": "ev-data", "version": v2.number}
    team = _list(users["participant"], sub).json()["results"]  # an on-request package's card: any signed-in user
    assert [ev["scored_against"]["data_package"]["version"] for ev in team] == [v1.number, v2.number]
    assert [ev["scored_against"]["annotation_sha256"] for ev in team] == [None, None]  # the digest: hosts only
    html = _web(users["host"]).get(f"/challenges/{world['challenge'].pk}/host/submissions/{sub.pk}").content.decode()
    assert f"ev-data v{v1.number}" in html and f"ev-data v{v2.number}" in html
