"""No result can stop a worker (issue 11 item 4), end to end over real HTTP.

A live server, the real worker loop (``assay.worker.Worker`` with its HTTP client, evaluating in its
sandbox) and an evaluation script that returns whatever a participant makes it return: NaN, inf, a
mean that overflows to inf, a word, non-finite numbers in the free-form keys, thousands of labels, megabytes.
Every submission ends with a status and a reason, and the next one is evaluated. An undefined metric
is stored as null, shown as "—" on every face (web, API, EvalAI API, CLI, exports) and ranked last.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest
from django.contrib.auth.models import AnonymousUser
from django.test import Client
from rest_framework.test import APIClient
from typer.testing import CliRunner

from assay.cli.main import app
from assay.evaluation.contract import check_output
from assay.server.challenges.models import Challenge, ChallengePhaseSplit
from assay.server.leaderboards.models import LeaderboardEntry
from assay.server.leaderboards.services.ranking import evalai_rows, leaderboard
from assay.server.submissions.models import Submission
from assay.server.submissions.services.lifecycle import mark
from assay.server.submissions.services.submit import SubmissionFields, submit
from assay.server.submissions.services.tokens import create_worker_token
from assay.worker import Worker, WorkerClient
from tests.factories import DEMO_BUNDLE, import_published, register_team, upload

from .test_worker_e2e import api_for, post_submission, run_worker_thread

pytestmark = pytest.mark.django_db(transaction=True)

# The participant's file decides what evaluate() returns (Python's json reads NaN and Infinity).
ECHO_MAIN = """
import json

def evaluate(test_annotation_file, user_submission_file, phase_codename, **kwargs):
    with open(user_submission_file) as fh:
        sub = json.load(fh)
    if "predictions" in sub:  # the demo container challenge's MAE: 20 predictions of 1.7e308 overflow to inf
        values = sub["predictions"]
        mae = sum(abs(v) for v in values) / len(values)
        return {"result": [{"public": {"Accuracy": mae, "F1": 0.5}}]}
    if "labels" in sub:
        return {"result": [{"public": {f"m{i}": 0.5 for i in range(sub["labels"])}}]}
    if "mib" in sub:
        return {"result": [{"public": {"Accuracy": 0.5, "F1": 0.5}}], "submission_result": "x" * (sub["mib"] << 20)}
    print("returning", sub["output"])
    return sub["output"]
"""


def output(accuracy, f1=0.5, **extra) -> dict:
    return {"output": {"result": [{"public": {"Accuracy": accuracy, "F1": f1}}], **extra}}


CASES = [
    # (name, the participant's file, expected status, a fragment of the failure reason)
    ("nan", output(float("nan")), "finished", ""),
    (
        "inf",
        output(float("inf")),
        "failed",
        "evaluate() returned split 'public' metric 'Accuracy' = inf; a metric must be a finite number",
    ),
    ("overflow", {"predictions": [1.7e308] * 20}, "failed", "split 'public' metric 'Accuracy' = inf"),
    ("word", output("high"), "failed", "split 'public' metric 'Accuracy' = 'high', which is not a number"),
    (
        "metadata",
        output(0.25, submission_metadata={"t": float("nan"), "u": [float("inf"), -1e400], "note": "a \ud800 b"}),
        "finished",
        "",
    ),
    ("labels", {"labels": 5000}, "failed", "evaluate() returned more than 1000 metric values"),
    ("megabytes", {"mib": 5}, "failed", "MiB of JSON; at most 4 MiB can be stored"),
    ("next", output(0.75, 1.0), "finished", ""),
]


@pytest.fixture
def echo_challenge(media, host_team, tmp_path):
    folder = Path(shutil.copytree(DEMO_BUNDLE, tmp_path / "echo"))
    (folder / "evaluation_script" / "main.py").write_text(ECHO_MAIN)
    challenge = import_published(host_team, folder)
    challenge.phases.update(max_concurrent_submissions_allowed=len(CASES))  # all queued before the worker starts
    return challenge


def test_no_result_stops_the_worker(
    live_server, echo_challenge, participant, django_user_model, admin_user, host, tmp_path, monkeypatch
):
    register_team(echo_challenge, participant, "Team NaN")
    rival = django_user_model.objects.create_user("bob", "bob@uni.example", "pw")
    register_team(echo_challenge, rival, "Team Finite")
    dev = echo_challenge.phases.get(codename="dev")
    ids = {}
    for name, content, _, _ in CASES:
        author = rival if name == "next" else participant
        ids[name] = post_submission(author, dev, json.dumps(content).encode())  # NaN and Infinity tokens

    _, token = create_worker_token(admin_user, "undefined results")
    worker = run_worker_thread(live_server.url, token, tmp_path / "w", jobs=len(CASES))
    worker.thread.join(300)
    assert not worker.thread.is_alive() and worker.processed == len(CASES)

    for name, _, status, reason in CASES:
        sub = Submission.objects.get(pk=ids[name])
        assert (sub.status, name) == (status, name), sub.failure_reason
        assert reason in sub.failure_reason, (name, sub.failure_reason)
        assert sub.completed_at is not None and not sub.lease_owner
        if status == "failed":
            assert sub.failure_reason and not LeaderboardEntry.objects.filter(submission=sub).exists()

    nan = Submission.objects.get(pk=ids["nan"])
    assert nan.output == {"result": [{"public": {"Accuracy": None, "F1": 0.5}}]}
    assert LeaderboardEntry.objects.get(submission=nan).result == {"Accuracy": None, "F1": 0.5}
    meta = Submission.objects.get(pk=ids["metadata"])
    assert json.loads(meta.submission_metadata_file.read()) == {"t": None, "u": [None, None], "note": "a ? b"}

    # every face: the undefined metric is "—" (null in JSON) and its row ranks last
    ps = dev.phase_splits.get(dataset_split__codename="public")
    api = api_for(participant)
    board = api.get(f"/api/v1/phase-splits/{ps.pk}/leaderboard").json()
    rows = [(r["rank"], r["team"]["name"], r["scores"]["Accuracy"], r["display"]["Accuracy"]) for r in board["results"]]
    # Team NaN's best entry by Accuracy is its 0.25 one (the metadata case); its undefined one ranks below
    assert rows == [(1, "Team Finite", 0.75, "0.750"), (2, "Team NaN", 0.25, "0.250")]
    by_f1 = api.get(f"/api/v1/phase-splits/{ps.pk}/leaderboard", {"order_by": "F1"}).json()["results"]
    assert [r["team"]["name"] for r in by_f1] == ["Team Finite", "Team NaN"]
    detail = api.get(f"/api/v1/submissions/{ids['nan']}").json()
    assert detail["output"]["result"][0]["public"]["Accuracy"] is None

    # only the undefined entry left for Team NaN: it shows "—" and ranks after every number
    # flagged as a host does it (the service announces the change, so cached leaderboard pages are renewed)
    mark(host, Submission.objects.get(pk=ids["metadata"]), flagged=True)
    board = api.get(f"/api/v1/phase-splits/{ps.pk}/leaderboard").json()
    rows = [(r["rank"], r["team"]["name"], r["scores"]["Accuracy"], r["display"]["Accuracy"]) for r in board["results"]]
    assert rows == [(1, "Team Finite", 0.75, "0.750"), (2, "Team NaN", None, "—")]
    assert board["results"][1]["undefined"] == ["Accuracy"]

    evalai = api.get(f"/api/jobs/challenge_phase_split/{ps.pk}/leaderboard/").json()["results"]
    assert [r["result"] for r in evalai] == [[0.75, 1.0], [None, 0.5]]

    exported = api.get(f"/api/v1/phase-splits/{ps.pk}/leaderboard/export.csv")
    table = list(csv.reader(io.StringIO(b"".join(exported.streaming_content).decode())))
    header, rows_csv = table[0], table[1:]
    assert [r[header.index("Accuracy")] for r in rows_csv] == ["0.75", "—"]
    document = json.loads(b"".join(api.get(f"/api/v1/phase-splits/{ps.pk}/leaderboard/export.json").streaming_content))
    assert document["results"][1]["display"]["Accuracy"] == "—"

    hosts_csv = api_for(host).get(f"/api/v1/challenges/{echo_challenge.pk}/submissions", {"export": "csv"})
    by_id = {r["id"]: r for r in csv.DictReader(io.StringIO(hosts_csv.content.decode()))}
    cell = by_id[str(ids["nan"])]["result"]  # PostgreSQL's jsonb keeps its own key order
    assert cell.startswith("public: ") and sorted(cell[8:].split(", ")) == ["Accuracy=—", "F1=0.5"]
    assert by_id[str(ids["inf"])]["result"] == "" and "= inf" in by_id[str(ids["inf"])]["failure_reason"]

    page = Client().get(f"/challenges/{echo_challenge.pk}/leaderboard", {"split": ps.pk}).content.decode()
    nan_row = page[page.index("Team NaN") : page.index("</tr>", page.index("Team NaN"))]
    assert '<td class="num">—' in nan_row and "nan" not in nan_row.lower().replace("team nan", "")

    monkeypatch.setenv("ASSAY_CONFIG", str(tmp_path / "cli.json"))
    cli = CliRunner().invoke(app, ["leaderboard", str(ps.pk), "--server", live_server.url], catch_exceptions=False)
    assert cli.exit_code == 0, cli.output
    nan_line = next(line for line in cli.output.splitlines() if "Team NaN" in line)
    assert "—" in nan_line and "nan" not in nan_line.lower().replace("team nan", "")


def _scored(challenge, worker: APIClient, team_name: str, accuracy: float, f1: float = 0.5) -> int:
    """One submission of a new team, claimed and completed through the worker protocol (strict JSON:
    NaN travels as null, as the worker sends it)."""
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user(team_name.lower().replace(" ", "_"), "", "pw")
    register_team(challenge, user, team_name)
    phase = challenge.phases.get(codename="dev")
    sub = submit(user, phase, upload(b"{}"), "preds.json", SubmissionFields())
    job = worker.post("/api/v1/worker/claim", {"worker_id": "w"}, format="json").json()["job"]
    assert job["submission_id"] == sub.pk
    report = check_output({"result": [{"public": {"Accuracy": accuracy, "F1": f1}}]})
    answer = worker.post(
        f"/api/v1/worker/jobs/{sub.pk}/complete", {"attempt": job["attempt"], "output": report}, format="json"
    )
    assert answer.json()["status"] == "finished", answer.json()
    return sub.pk


def _ranks(ps, **kw) -> list[tuple]:
    board = leaderboard(AnonymousUser(), ps, **kw)
    return [(r["rank"], r["team"]["name"], r["display"]["Accuracy"]) for r in board.rows]


@pytest.mark.django_db(transaction=False)
def test_undefined_metrics_rank_last_in_both_directions(demo_challenge, admin_user):
    _, token = create_worker_token(admin_user, "ranking")
    worker = APIClient()
    worker.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    for name, accuracy in (("A", 0.9), ("U1", float("nan")), ("C", 0.2), ("U2", float("nan")), ("E", 0.5)):
        _scored(demo_challenge, worker, name, accuracy)
    ps = ChallengePhaseSplit.objects.get(phase__challenge=demo_challenge, phase__codename="dev")
    assert LeaderboardEntry.objects.filter(phase_split=ps, result__Accuracy=None).count() == 2

    higher_first = [(1, "A", "0.900"), (2, "E", "0.500"), (3, "C", "0.200"), (4, "U1", "—"), (4, "U2", "—")]
    assert _ranks(ps) == higher_first
    assert _ranks(ps, page=2, page_size=2) == higher_first[2:4]  # ranks of a deep page, counted in the index
    assert _ranks(ps, page=3, page_size=2) == higher_first[4:]

    lb = ps.leaderboard
    lb.schema = {**lb.schema, "metadata": {**lb.schema["metadata"], "Accuracy": {"sort_ascending": True}}}
    lb.save()  # lower is better now: the standings are rebuilt on the next read
    lower_first = [(1, "C", "0.200"), (2, "E", "0.500"), (3, "A", "0.900"), (4, "U1", "—"), (4, "U2", "—")]
    assert _ranks(ps) == lower_first
    assert _ranks(ps, page=2, page_size=2) == lower_first[2:4]
    assert [row[1] for row in _ranks(ps, order_by="F1")][:5] == ["A", "U1", "C", "U2", "E"]  # all tie on F1


@pytest.mark.django_db(transaction=False)
def test_an_undefined_metric_alone_is_a_finished_submission_shown_as_a_dash(demo_challenge, admin_user):
    _, token = create_worker_token(admin_user, "alone")
    worker = APIClient()
    worker.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    sid = _scored(demo_challenge, worker, "Lonely", float("nan"), float("nan"))
    entry = LeaderboardEntry.objects.get(submission_id=sid)
    assert entry.result == {"Accuracy": None, "F1": None}
    ps = entry.phase_split
    row = leaderboard(AnonymousUser(), ps).rows[0]
    assert row["rank"] == 1 and row["display"] == {"Accuracy": "—", "F1": "—"}
    assert row["undefined"] == ["Accuracy", "F1"]
    assert [r["result"] for r in evalai_rows(leaderboard(AnonymousUser(), ps))] == [[None, None]]


def test_a_job_the_worker_cannot_handle_fails_alone(live_server, echo_challenge, participant, admin_user, tmp_path):
    """Whatever breaks while a job is handled (here a payload without the key the worker reads, as a
    server of another version might send) fails that submission with the reason; the next is evaluated."""
    register_team(echo_challenge, participant, "Team Odd")
    dev = echo_challenge.phases.get(codename="dev")
    odd = post_submission(participant, dev, json.dumps(output(0.5)).encode())
    fine = post_submission(participant, dev, json.dumps(output(0.75)).encode())
    _, token = create_worker_token(admin_user, "odd jobs")
    worker = Worker(WorkerClient(live_server.url, token), tmp_path / "w", poll_wait=1)
    try:
        job = worker.client.claim(worker.worker_id, wait=1)
        assert job["submission_id"] == odd
        del job["phase"]
        worker.run_job(job)  # returns: the failure is reported, not raised
        sub = Submission.objects.get(pk=odd)
        assert sub.status == "failed"
        assert sub.failure_reason == "the worker failed on this submission: KeyError: 'phase'"
        worker.run(max_jobs=1)
    finally:
        worker.pool.close()
        worker.client.close()  # its kept-alive connection holds a live-server thread's database session
    assert Submission.objects.get(pk=fine).status == "finished"


@pytest.mark.django_db(transaction=False)
def test_evalai_remote_workers_follow_the_same_contract(demo_challenge, team, participant, host):
    """EvalAI's remote-worker PUT carries the result as a JSON string, where Python's json writes NaN:
    undefined, as from Assay's worker; an infinity is refused with the split and label named."""
    Challenge.objects.filter(pk=demo_challenge.pk).update(remote_evaluation=True)
    demo_challenge.refresh_from_db()
    dev = demo_challenge.phases.get(codename="dev")
    url = f"/api/jobs/challenge/{demo_challenge.pk}/update_submission/"

    def put(sub, accuracy, metadata=""):
        result = [{"split": "public", "show_to_participant": True, "accuracies": {"Accuracy": accuracy, "F1": 0.5}}]
        body = {"submission": sub.pk, "submission_status": "finished", "result": json.dumps(result)}
        return api_for(host).put(url, {**body, "metadata": metadata}, format="multipart")

    sub = submit(participant, dev, upload(), "p.json", SubmissionFields())
    refused = put(sub, float("inf"))
    assert refused.status_code == 400, refused.content
    assert refused.json()["error"].startswith("evaluate() returned split 'public' metric 'Accuracy' = inf;")
    accepted = put(sub, float("nan"), metadata=json.dumps({"threshold": float("nan")}))
    assert accepted.status_code == 200, accepted.content
    assert LeaderboardEntry.objects.get(submission=sub).result == {"Accuracy": None, "F1": 0.5}
    stored = Submission.objects.get(pk=sub.pk)
    assert stored.status == "finished" and json.loads(stored.submission_metadata_file.read()) == {"threshold": None}


def test_a_report_that_cannot_be_sent_becomes_a_reported_failure(
    live_server, echo_challenge, participant, admin_user, tmp_path
):
    """The safety net behind the contract: a report the strict JSON encoder refuses (the NaN that used to
    kill the worker, had it bypassed check_output) is replaced by a plain failure with the reason."""
    register_team(echo_challenge, participant, "Team Net")
    sid = post_submission(participant, echo_challenge.phases.get(codename="dev"), json.dumps(output(0.5)).encode())
    _, token = create_worker_token(admin_user, "net")
    worker = Worker(WorkerClient(live_server.url, token), tmp_path / "w", poll_wait=1)
    try:
        job = worker.client.claim(worker.worker_id, wait=1)
        unsendable = {"output": {"result": [{"public": {"Accuracy": float("nan"), "F1": 1.0}}]}, "stdout": "x"}
        worker._complete(job["submission_id"], job["attempt"], unsendable)  # returns; nothing raised
    finally:
        worker.pool.close()
        worker.client.close()  # its kept-alive connection holds a live-server thread's database session
    sub = Submission.objects.get(pk=sid)
    assert sub.status == "failed"
    assert sub.failure_reason.startswith(
        "the worker could not send the result: ValueError: Out of range float values are not JSON compliant"
    )  # (newer Pythons append the value)
