"""Per-case rows: reported by a worker as their own part, stored privately (gzip'd JSON lines, sha256,
count, columns), read back joined with the phase's hidden case metadata, and served by
GET /api/v1/submissions/<id>/cases to the challenge's hosts, auditors and staff only."""

from __future__ import annotations

import base64
import csv
import gzip
import hashlib
import io
import json

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from rest_framework.test import APIClient

from assay.evaluation.contract import MAX_CASES_GZIP_BYTES, encode_cases
from assay.server.challenges.models import ChallengeAuditor
from assay.server.submissions.models import Submission, SubmissionCases
from assay.server.submissions.services import cases as case_service
from assay.server.submissions.services.submit import SubmissionFields, submit
from assay.server.submissions.services.tokens import create_worker_token
from assay.server.teams.models import ParticipantTeamMember
from tests.factories import client_for, make_user, register_team, upload

pytestmark = pytest.mark.django_db

RESULT = {"result": [{"public": {"Accuracy": 0.75, "F1": 0.5}}]}
ROWS = [
    {"case_id": "c1", "reference": 1, "prediction": 1, "probability": 0.9, "sex": "claimed-by-participant"},
    {"case_id": "c2", "reference": 0, "prediction": 1, "probability": 0.6},
    {"case_id": "c3", "reference": 2, "prediction": 2, "probability": None, "note": '=HYPERLINK("x")'},
]
METADATA = b"case_id,sex,camera\nc1,F,topcon\nc2,M,\n"


@pytest.fixture
def worker(admin_user, demo_challenge) -> APIClient:
    _, token = create_worker_token(admin_user, "test worker")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.fixture
def queued(team, participant, demo_challenge) -> Submission:
    phase = demo_challenge.phases.get(codename="dev")
    return submit(participant, phase, upload(b'{"dev-a0": 1}'), "preds.json", SubmissionFields(method_name="m1"))


def claim(worker: APIClient) -> dict:
    response = worker.post("/api/v1/worker/claim", {"worker_id": "w1"}, format="json")
    assert response.status_code == 200
    return response.json()["job"]


def complete(worker: APIClient, job: dict, **report):
    body = {"attempt": job["attempt"], "output": RESULT, "stdout": "", "stderr": "", **report}
    return worker.post(f"/api/v1/worker/jobs/{job['submission_id']}/complete", body, format="json")


def wire(rows: list[dict]) -> str:
    return base64.b64encode(encode_cases(rows)).decode()


# --- the worker protocol and storage ------------------------------------------------------------------------


def test_cases_sent_as_their_own_part_are_stored_privately(worker, queued, media) -> None:
    response = complete(worker, claim(worker), cases=wire(ROWS))
    assert response.status_code == 200 and response.json()["status"] == "finished"
    queued.refresh_from_db()
    assert queued.output == {"result": [{"public": {"Accuracy": 0.75, "F1": 0.5}}]}  # no cases in the output
    stored = SubmissionCases.objects.get(submission=queued)
    assert stored.count == 3
    assert stored.columns == ["case_id", "reference", "prediction", "probability", "sex", "note"]
    data = (media / stored.file.name).read_bytes()
    assert hashlib.sha256(data).hexdigest() == stored.sha256
    assert [json.loads(line) for line in gzip.decompress(data).splitlines()] == ROWS
    assert stored.file.name.startswith(f"submission_cases/{queued.pk}/")


def test_cases_inside_the_output_are_split_off_by_the_server(worker, queued) -> None:
    assert complete(worker, claim(worker), output={**RESULT, "cases": ROWS}).json()["status"] == "finished"
    queued.refresh_from_db()
    assert "cases" not in queued.output
    assert case_service.raw_rows(queued) == ROWS


def test_a_result_without_cases_works_as_before(worker, queued) -> None:
    assert complete(worker, claim(worker)).json()["status"] == "finished"
    assert not SubmissionCases.objects.filter(submission=queued).exists()
    assert case_service.case_rows(queued) is None


def test_unusable_rows_fail_the_submission_with_the_reason(worker, queued) -> None:
    rows = [{"case_id": "a"}, {"case_id": "a"}]
    answer = complete(worker, claim(worker), cases=wire(rows)).json()
    assert answer["status"] == "failed"
    assert answer["failure_reason"] == (
        "the evaluation script returned an unusable result: evaluate() returned 'cases'[1] repeats case_id 'a'; "
        "each case appears once"
    )
    assert not SubmissionCases.objects.filter(submission=queued).exists()


@pytest.mark.parametrize(
    ("cases", "status", "message"),
    [
        ("not base64!", 400, "cases: not base64"),
        (base64.b64encode(b"plain text, not gzip").decode(), 200, "not gzip'd JSON lines"),
        (base64.b64encode(gzip.compress(b'{"case_id": "a"}\n[1, 2]\n', mtime=0)).decode(), 200, "'cases'[1] as list"),
    ],
)
def test_malformed_wire_cases_are_refused_clearly(worker, queued, cases: str, status: int, message: str) -> None:
    response = complete(worker, claim(worker), cases=cases)
    assert response.status_code == status
    text = response.json()["error"]["message"] if status != 200 else response.json()["failure_reason"]
    assert message in text
    if status == 200:
        assert response.json()["status"] == "failed"


def test_oversized_cases_are_refused_by_the_server(worker, queued) -> None:
    from assay.server.submissions.services.errors import SubmissionError
    from assay.server.submissions.services.queue import Completion

    too_big = "A" * (4 * (MAX_CASES_GZIP_BYTES // 3 + 2))
    with pytest.raises(SubmissionError) as refused:
        Completion(attempt=1, output=RESULT, cases=too_big)
    assert refused.value.status == 413
    assert f"the server takes at most {MAX_CASES_GZIP_BYTES // 1024**2} MiB" in refused.value.message


def test_a_rerun_replaces_the_cases(queued, media, django_capture_on_commit_callbacks) -> None:
    first = case_service.store_cases(queued, ROWS)
    old_name = first.file.name
    with django_capture_on_commit_callbacks(execute=True):
        second = case_service.store_cases(queued, ROWS[:1])
    assert SubmissionCases.objects.filter(submission=queued).count() == 1
    assert second.count == 1 and second.file.name != old_name
    assert not default_storage.exists(old_name)  # the replaced file is gone once committed
    queued.refresh_from_db()
    assert case_service.raw_rows(queued) == ROWS[:1]
    with django_capture_on_commit_callbacks(execute=True):
        case_service.drop_cases(queued)
    assert not SubmissionCases.objects.filter(submission=queued).exists()
    assert not default_storage.exists(second.file.name)


def test_store_checks_rows_with_the_contract(queued) -> None:
    from assay.evaluation.contract import ResultError

    with pytest.raises(ResultError, match="key 'scores'"):
        case_service.store_cases(queued, [{"case_id": "x", "scores": [1, 2]}])
    assert not SubmissionCases.objects.filter(submission=queued).exists()


# --- the join with the hidden case metadata -------------------------------------------------------------------


def _with_metadata(sub: Submission, content: bytes = METADATA) -> None:
    phase = sub.phase
    phase.case_metadata.save("meta.csv", ContentFile(content), save=True)


def test_metadata_overrides_participant_keys_and_missing_cases_get_none(queued) -> None:
    case_service.store_cases(queued, ROWS)
    _with_metadata(queued, b"\xef\xbb\xbfcase_id,sex,camera\nc1,F,topcon\nc2,M,\nc9,F,canon\n")
    queued.refresh_from_db()
    rows = case_service.case_rows(queued)
    assert rows == [
        {**ROWS[0], "sex": "F", "camera": "topcon"},  # the host's sex, not the participant's
        {**ROWS[1], "sex": "M", "camera": None},
        {**ROWS[2], "sex": None, "camera": None},  # not in the metadata
    ]
    assert case_service.case_columns(queued) == [
        "case_id", "reference", "prediction", "probability", "sex", "note", "camera"
    ]  # fmt: skip


def test_without_metadata_the_rows_are_as_returned(queued) -> None:
    case_service.store_cases(queued, ROWS)
    assert case_service.case_rows(queued) == ROWS


# --- who reads them: GET /api/v1/submissions/<id>/cases ---------------------------------------------------------


@pytest.fixture
def with_cases(queued) -> Submission:
    case_service.store_cases(queued, ROWS)
    _with_metadata(queued)
    queued.refresh_from_db()
    return queued


def test_hosts_read_the_joined_rows_as_json(with_cases, host) -> None:
    response = client_for(host).get(f"/api/v1/submissions/{with_cases.pk}/cases")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3
    assert body["columns"] == ["case_id", "reference", "prediction", "probability", "sex", "note", "camera"]
    assert body["results"][0] == {**ROWS[0], "sex": "F", "camera": "topcon"}
    paged = client_for(host).get(f"/api/v1/submissions/{with_cases.pk}/cases?page_size=2&page=2").json()
    assert paged["count"] == 3 and [r["case_id"] for r in paged["results"]] == ["c3"]


def test_the_csv_is_safe_to_open_in_a_spreadsheet(with_cases, host) -> None:
    response = client_for(host).get(f"/api/v1/submissions/{with_cases.pk}/cases?format=csv")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["case_id", "reference", "prediction", "probability", "sex", "note", "camera"]
    assert rows[1] == ["c1", "1", "1", "0.9", "F", "", "topcon"]
    assert rows[3] == ["c3", "2", "2", "", "", '\'=HYPERLINK("x")', ""]


def test_an_unknown_format_is_refused(with_cases, host) -> None:
    response = client_for(host).get(f"/api/v1/submissions/{with_cases.pk}/cases?format=xml")
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "format is json or csv"


def test_who_may_read_the_rows(with_cases, host, participant, demo_challenge, django_user_model) -> None:
    url = f"/api/v1/submissions/{with_cases.pk}/cases"
    auditor = make_user("audrey")
    ChallengeAuditor.objects.create(challenge=demo_challenge, user=auditor, added_by=host)
    other = make_user("bob")
    register_team(demo_challenge, other, "Team Bob")
    staff = make_user("root", staff=True)
    assert client_for(auditor).get(url).status_code == 200
    assert client_for(staff).get(url).status_code == 200
    refused = client_for(participant).get(url)  # the submitting team sees the submission, not its rows
    assert refused.status_code == 403
    assert "only the challenge's hosts and auditors" in refused.json()["error"]["message"]
    assert client_for(other).get(url).status_code == 404  # another team: as if it did not exist
    assert client_for(make_user("stranger")).get(url).status_code == 404
    assert client_for(None).get(url).status_code == 401
    assert client_for(host).get("/api/v1/submissions/999999/cases").status_code == 404


def test_an_auditor_in_the_submitting_team_does_not_read_its_rows(with_cases, host, demo_challenge, team) -> None:
    auditor = make_user("audrey")
    ChallengeAuditor.objects.create(challenge=demo_challenge, user=auditor, added_by=host)
    ParticipantTeamMember.objects.create(team=team, user=auditor)
    response = client_for(auditor).get(f"/api/v1/submissions/{with_cases.pk}/cases")
    assert response.status_code == 403


def test_an_auditor_of_another_challenge_reads_nothing(with_cases, host, host_team) -> None:
    from tests.factories import import_published

    other = import_published(host_team)
    auditor = make_user("audrey")
    ChallengeAuditor.objects.create(challenge=other, user=auditor, added_by=host)
    assert client_for(auditor).get(f"/api/v1/submissions/{with_cases.pk}/cases").status_code == 404


def test_a_submission_without_rows_answers_404_to_its_hosts(queued, host) -> None:
    response = client_for(host).get(f"/api/v1/submissions/{queued.pk}/cases")
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "this submission's evaluation returned no per-case rows"


def test_evaluated_again_the_rows_are_replaced_or_dropped(worker, queued, django_capture_on_commit_callbacks) -> None:
    assert complete(worker, claim(worker), cases=wire(ROWS)).json()["status"] == "finished"
    first = SubmissionCases.objects.get(submission=queued).file.name
    Submission.objects.filter(pk=queued.pk).update(status="resuming")  # as a resume queues it again
    with django_capture_on_commit_callbacks(execute=True):
        assert complete(worker, claim(worker), cases=wire(ROWS[:2])).json()["status"] == "finished"
    stored = SubmissionCases.objects.get(submission=queued)
    assert stored.count == 2 and stored.file.name != first and not default_storage.exists(first)
    Submission.objects.filter(pk=queued.pk).update(status="resuming")
    with django_capture_on_commit_callbacks(execute=True):
        assert complete(worker, claim(worker)).json()["status"] == "finished"  # this time without rows
    assert not SubmissionCases.objects.filter(submission=queued).exists()
    assert not default_storage.exists(stored.file.name)
