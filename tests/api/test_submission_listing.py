"""Every face that lists a phase's submissions answers, row for row, what the same reader is told about each
submission alone, and reads a page in a fixed number of statements, however many rows it has.

The faces: ``/api/v1/phases/<id>/submissions`` (the team's), ``/api/v1/challenges/<id>/submissions`` (the
hosts'), ``/api/v1/me/submissions`` (a person's), EvalAI's ``/api/jobs/challenge/<c>/challenge_phase/<p>/
submission/`` (the team's), and the web's host and team pages. A list reads its rows its own way (one page of
rows, the related rows shared), so the reference is the single-submission answer (``GET /api/v1/submissions/N``,
EvalAI's ``GET /api/jobs/submission/N/``), read its own way; ``test_submission_data.py`` holds that one to the
documented serializer. Signed URLs are pinned to one timestamp so both answers carry the same bytes.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.factories import T0, client_for, finish, make_user, upload

pytestmark = pytest.mark.django_db

OUTPUT = {"result": [{"public": {"Accuracy": 0.825, "F1": 0.6}}, {"private": {"Accuracy": 0.5, "F1": 0.7}}]}
DETAIL_ONLY = ("scored_against", "stdout", "stderr")  # what the detail adds to the listed shape


@pytest.fixture(autouse=True)
def one_second(monkeypatch):
    """Signed URLs' timestamps fixed: a row and its detail, read a second apart, sign alike."""
    from django.core import signing

    monkeypatch.setattr(signing.TimestampSigner, "timestamp", lambda self: "1")


@pytest.fixture
def listed(world, users):
    """Team Alice (alice, and carol who joined it) in both phases: finished (the Test phase's result cut for the
    team), failed with its files removed, waiting, hidden by the team; Team Bob's one result; and the other
    challenge's one submission by alice's team there."""
    from assay.server.challenges.models import Participation
    from assay.server.submissions.models import Submission
    from assay.server.submissions.services.submit import SubmissionFields, submit
    from assay.server.teams.models import ParticipantTeamMember

    alice, bob = users["participant"], users["other_participant"]
    carol = make_user("carol")
    ParticipantTeamMember.objects.create(team=world["teams"]["participant"], user=carol)
    test = world["challenge"].phases.get(codename="test")
    dev = world["challenge"].phases.get(codename="dev")
    made = [
        finish(submit(alice, test, upload(b'{"test-a0": 1}'), "preds.json", SubmissionFields()), OUTPUT),
        finish(submit(carol, dev, upload(), "p.json", SubmissionFields(method_name="m", is_public=True))),
        finish(submit(bob, dev, upload(), "bob.json", SubmissionFields(meta={"uses_modulo": True}))),
    ]
    failed = submit(carol, dev, upload(name="ünï.json"), "ünï.json", SubmissionFields(method_description="d\n"))
    Submission.objects.filter(pk=failed.pk).update(
        status="failed", failure_reason="boom", started_at=timezone.now() - dt.timedelta(seconds=3, microseconds=5),
        completed_at=timezone.now(), files_removed_at=timezone.now(), files_removed_policy="retention",
        is_flagged=True,
    )  # fmt: skip
    hidden = submit(alice, dev, upload(), "hidden.json", SubmissionFields())
    Submission.objects.filter(pk=hidden.pk).update(ignore_submission=True, status="cancelled")
    waiting = submit(alice, test, upload(b'{"test-a0": 2}'), "w.json", SubmissionFields(is_public=True))
    elsewhere = world["other_challenge"]
    Participation.objects.create(challenge=elsewhere, team=world["teams"]["participant"], terms_accepted_at=T0)
    there = submit(alice, elsewhere.phases.get(codename="dev"), upload(), "there.json", SubmissionFields())
    return {"subs": [*made, failed, hidden, waiting, there], "test": test, "dev": dev, "carol": carol}


def _detail(client, sub_id: int) -> dict:
    response = client.get(f"/api/v1/submissions/{sub_id}")
    assert response.status_code == 200, response.content
    return {key: value for key, value in response.json().items() if key not in DETAIL_ONLY}


def _expected_ids(**where) -> list[int]:
    from assay.server.submissions.models import Submission

    return list(Submission.objects.filter(**where).order_by("-submitted_at", "-id").values_list("pk", flat=True))


def _assert_rows_are_details(client, page: dict, ids: list[int]) -> None:
    assert page["count"] == len(ids) and page["next"] is None and page["previous"] is None
    assert [row["id"] for row in page["results"]] == ids
    for row in page["results"]:
        assert row == _detail(client, row["id"])


@pytest.mark.parametrize("reader", ["participant", "carol", "other_participant", "host", "admin"])
def test_the_teams_phase_list_is_each_submissions_answer(listed, users, reader):
    user = listed["carol"] if reader == "carol" else users[reader]
    client = client_for(user)
    for phase in (listed["test"], listed["dev"]):
        page = client.get(f"/api/v1/phases/{phase.pk}/submissions").json()
        team = {"participant": "Team Alice", "carol": "Team Alice", "other_participant": "Team Bob"}.get(reader)
        ids = _expected_ids(phase=phase, participant_team__name=team, ignore_submission=False) if team else []
        _assert_rows_are_details(client, page, ids)
    assert reader in ("host", "admin") or page["count"]  # every participant reads rows somewhere


@pytest.mark.parametrize("reader", ["host", "admin"])
def test_the_hosts_challenge_list_is_each_submissions_answer(listed, world, users, reader):
    client = client_for(users[reader])
    challenge = world["challenge"]
    for query, where in (
        ("", {}),
        (f"?phase={listed['test'].pk}", {"phase": listed["test"]}),
        ("?status=submitted", {"status": "submitted"}),
    ):
        page = client.get(f"/api/v1/challenges/{challenge.pk}/submissions{query}").json()
        ids = _expected_ids(phase__challenge=challenge, **where)[::-1]  # the hosts' list: oldest first
        _assert_rows_are_details(client, page, ids)


@pytest.mark.parametrize("reader", ["participant", "carol", "other_participant"])
def test_my_submissions_list_is_each_submissions_answer(listed, users, reader):
    user = listed["carol"] if reader == "carol" else users[reader]
    client = client_for(user)
    team = "Team Bob" if reader == "other_participant" else "Team Alice"
    page = client.get("/api/v1/me/submissions").json()
    _assert_rows_are_details(client, page, _expected_ids(participant_team__name=team, ignore_submission=False))


@pytest.mark.parametrize("reader", ["participant", "carol", "other_participant"])
def test_evalais_phase_list_is_each_submissions_answer(listed, world, users, reader):
    user = listed["carol"] if reader == "carol" else users[reader]
    client = client_for(user)
    team = "Team Bob" if reader == "other_participant" else "Team Alice"
    for phase in (listed["test"], listed["dev"]):
        url = f"/api/jobs/challenge/{world['challenge'].pk}/challenge_phase/{phase.pk}/submission/"
        page = client.get(url).json()
        ids = _expected_ids(phase=phase, participant_team__name=team, ignore_submission=False)
        assert page["count"] == len(ids) and [row["id"] for row in page["results"]] == ids
        for row in page["results"]:
            assert row == client.get(f"/api/jobs/submission/{row['id']}/").json()


# --- statements per page: a fixed number, whatever the rows ------------------------------------------------


def _more(listed, world, users, n: int) -> None:
    """``n`` more submissions per phase from each member of both teams, in every status a list shows, so a page
    that read anything per row (its phase and challenge, team, creator, queue position) would read more. What is
    read once per phase, team or challenge on a page (the reader's splits and roles) stays the same: every page
    names the same ones."""
    from assay.server.submissions.models import Submission

    members = [
        (users["participant"], world["teams"]["participant"]),
        (listed["carol"], world["teams"]["participant"]),
        (users["other_participant"], world["teams"]["other_participant"]),
    ]
    statuses = ["finished", "failed", "submitted", "running", "cancelled"]
    rows = [
        Submission(
            phase=phase,
            participant_team=team,
            created_by=user,
            status=statuses[i % len(statuses)],
            output=OUTPUT if i % len(statuses) == 0 else None,
            input_file=f"submissions/more-{i}.json",
            stdout_file=f"submission_logs/more-{i}.txt",
            submission_result_file=f"submission_results/more-{i}.json",
            submission_metadata_file=f"submission_results/more-meta-{i}.json",
            submission_metadata={"i": i},
        )
        for i in range(n)
        for phase in (listed["test"], listed["dev"])
        for user, team in members
    ]  # fmt: skip (the newest rows of a short page name both phases and teams, as the older ones do)
    Submission.objects.bulk_create(rows)


def _statements(client, url: str) -> int:
    """Statements of one request, the fewer of two in a row: a per-process cache (tokens, phase rules) that ran out
    between them costs one of them a read, never both."""
    counts = []
    for _ in range(2):
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
        assert response.status_code == 200, response.content[:300]
        counts.append(len(queries.captured_queries))
    return min(counts)


def _web(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _faces(listed, world, users) -> dict[str, tuple[object, str]]:
    c, test = world["challenge"].pk, listed["test"].pk
    alice, host = users["participant"], users["host"]
    return {
        "v1 phase": (client_for(alice), f"/api/v1/phases/{test}/submissions?page_size=200"),
        "v1 challenge (host)": (client_for(host), f"/api/v1/challenges/{c}/submissions?page_size=200"),
        "v1 challenge (admin)": (client_for(users["admin"]), f"/api/v1/challenges/{c}/submissions?page_size=200"),
        "v1 me": (client_for(alice), "/api/v1/me/submissions?page_size=200"),
        "EvalAI phase": (
            client_for(alice),
            f"/api/jobs/challenge/{c}/challenge_phase/{test}/submission/?page_size=200",
        ),
        "web host page": (_web(host), f"/challenges/{c}/host/submissions"),
        "web team page": (_web(alice), f"/challenges/{c}/submissions"),
        "web team page, a phase": (_web(alice), f"/challenges/{c}/submissions?phase={test}"),
        "web my submissions": (_web(alice), "/me/submissions"),
    }


def test_a_page_reads_a_fixed_number_of_statements_whatever_its_rows(listed, world, users):
    faces = _faces(listed, world, users)
    for client, url in faces.values():
        client.get(url)  # per-process caches (phase rules, tokens) filled before counting
    _more(listed, world, users, 2)
    few = {name: _statements(client, url) for name, (client, url) in faces.items()}
    _more(listed, world, users, 12)
    many = {name: _statements(client, url) for name, (client, url) in faces.items()}
    assert many == few


@pytest.mark.parametrize("face", ["v1 phase", "v1 challenge (host)", "v1 me", "EvalAI phase"])
def test_an_api_page_of_200_rows_reads_at_most_a_dozen_statements(listed, world, users, face):
    _more(listed, world, users, 40)
    client, url = _faces(listed, world, users)[face]
    client.get(url)
    assert _statements(client, url) <= 12  # the reader, the view and its page: none per row
