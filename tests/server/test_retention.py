"""Per-phase retention (``submission_artifact_retention_policy``): what is due, the dry run, ``--apply``,
and what every face says about a removed file. Results, leaderboard entries and released audits stay."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.core.files.storage import default_storage
from django.urls import reverse
from django.utils import timezone
from typer.testing import CliRunner

from assay.cli.main import app
from assay.server.leaderboards.models import LeaderboardEntry
from assay.server.storage import ContentWriter
from assay.server.submissions.models import Submission
from assay.server.submissions.services import lifecycle, retention
from assay.server.submissions.services.errors import SubmissionError
from assay.server.submissions.services.submit import SubmissionFields, submit
from tests.factories import client_for, upload

NOW = timezone.now()


def settled(participant, phase, *, days_old: int, status: str = "finished", content: bytes = b'{"a": 1}'):
    """A submission made ``days_old`` days ago, with its input file and both logs in storage."""
    sub = submit(participant, phase, upload(content, "preds.json"), "preds.json", SubmissionFields())
    writer = ContentWriter()
    sub.stdout_file = writer.save(f"submission_logs/{sub.pk}", "stdout.txt", data=b"x" * 300)[0]
    sub.stderr_file = writer.save(f"submission_logs/{sub.pk}", "stderr.txt", data=b"y" * 20)[0]
    sub.status = status
    sub.output = {"result": [{"public": {"Accuracy": 0.5}}]}
    sub.save()
    Submission.objects.filter(pk=sub.pk).update(submitted_at=NOW - dt.timedelta(days=days_old))
    sub.refresh_from_db()
    return sub


@pytest.fixture
def phase(team, demo_challenge):
    phase = demo_challenge.phases.get(codename="dev")
    phase.submission_artifact_retention_policy = "days_30"
    phase.max_submissions_per_day = phase.max_submissions = phase.max_submissions_per_month = 1000
    phase.max_concurrent_submissions_allowed = 1000
    phase.save()
    return phase


def test_only_settled_old_unaudited_submissions_are_due(participant, phase, demo_challenge):
    old = settled(participant, phase, days_old=31, content=b'{"old": 1}')
    settled(participant, phase, days_old=29, content=b'{"recent": 1}')
    settled(participant, phase, days_old=40, status="running", content=b'{"running": 1}')
    released = settled(participant, phase, days_old=40, content=b'{"released": 1}')
    from assay.server.audits.models import Release

    Release.objects.create(submission=released, released_by=demo_challenge.creator or participant, released_at=NOW)
    other = demo_challenge.phases.exclude(pk=phase.pk).first()
    if other is not None:  # keep_forever: never due
        assert other.submission_artifact_retention_policy == "keep_forever"

    items = list(retention.due(NOW))
    assert [i.submission_id for i in items] == [old.pk]
    (item,) = items
    assert item.policy == "days_30" and item.phase == "dev"
    assert {(f, size) for f, _, size in item.files} == {("input_file", 10), ("stdout_file", 300), ("stderr_file", 20)}
    assert item.size == 330


def test_dry_run_changes_nothing_and_apply_removes_files_not_results(
    participant, phase, media, django_capture_on_commit_callbacks
):
    sub = settled(participant, phase, days_old=31)
    entry = LeaderboardEntry.objects.create(
        phase_split=phase.phase_splits.first(),
        submission=sub,
        participant_team=sub.participant_team,
        result={"Accuracy": 0.5},
    )
    names = [sub.input_file.name, sub.stdout_file.name, sub.stderr_file.name]
    assert len(list(retention.due(NOW))) == 1
    assert all(default_storage.exists(n) for n in names)
    sub.refresh_from_db()
    assert sub.files_removed_at is None and sub.input_file.name == names[0]

    with django_capture_on_commit_callbacks(execute=True):
        removed = retention.apply(NOW)
    assert [r.submission_id for r in removed] == [sub.pk]
    sub.refresh_from_db()
    assert sub.files_removed_at == NOW and sub.files_removed_policy == "days_30"
    assert not sub.input_file and not sub.stdout_file and not sub.stderr_file
    assert sub.input_file_name == "preds.json" and sub.input_file_sha256  # what it was stays on record
    assert sub.output == {"result": [{"public": {"Accuracy": 0.5}}]}
    assert LeaderboardEntry.objects.filter(pk=entry.pk).exists()
    assert not any(default_storage.exists(n) for n in names)
    assert retention.apply(NOW) == []  # once


def test_a_file_another_submission_still_names_is_kept(participant, phase, media, django_capture_on_commit_callbacks):
    sub = settled(participant, phase, days_old=31)
    clone_input = sub.input_file.name
    Submission.objects.filter(pk=sub.pk).update(status="finished")
    twin = Submission.objects.create(
        phase=phase,
        participant_team=sub.participant_team,
        created_by=participant,
        status="submitted",
        input_file=clone_input,
    )
    with django_capture_on_commit_callbacks(execute=True):
        retention.apply(NOW)
    assert default_storage.exists(clone_input)
    assert Submission.objects.get(pk=twin.pk).input_file.name == clone_input


def test_every_face_says_the_file_was_removed(participant, phase, host, media, client):
    sub = settled(participant, phase, days_old=31)
    retention.apply(NOW)
    client.force_login(participant)
    page = client.get(reverse("web:submission-file", args=[sub.pk, "input"]))
    assert page.status_code == 410
    assert b"removed on" in page.content and b"retention policy (days_30)" in page.content
    assert client.get(reverse("web:submission-file", args=[sub.pk, "stdout"])).status_code == 410

    api = client_for(participant)
    stdout = api.get(f"/api/v1/submissions/{sub.pk}/stdout")
    assert stdout.status_code == 410, stdout.content
    assert stdout.json()["error"]["code"] == "removed_by_retention"
    assert "retention policy" in stdout.json()["error"]["message"]
    detail = api.get(f"/api/v1/submissions/{sub.pk}").json()
    assert detail["files_removed_policy"] == "days_30" and detail["files_removed_at"]

    with pytest.raises(SubmissionError, match="retention policy") as refused:
        lifecycle.rerun(host, sub)
    assert refused.value.status == 410


def test_the_host_sets_the_policy_on_the_phase_settings(host, phase, client):
    from assay.server.challenges.services import hosting

    assert hosting.update_phase(host, phase, {"submission_artifact_retention_policy": "months_3"}) == [
        "submission_artifact_retention_policy"
    ]
    from assay.server.web.forms import PhaseSettingsForm

    form = PhaseSettingsForm.for_phase(phase)
    assert form.initial["submission_artifact_retention_policy"] == "months_3"
    bad = PhaseSettingsForm(
        data={f"phase-{phase.pk}-submission_artifact_retention_policy": "days_2"}, prefix=f"phase-{phase.pk}"
    )
    assert not bad.is_valid() and "submission_artifact_retention_policy" in bad.errors


@pytest.mark.django_db(transaction=True)
def test_assay_admin_retention_shows_first_and_applies_on_request(participant, phase, media):
    sub = settled(participant, phase, days_old=45)
    dry = CliRunner().invoke(app, ["admin", "retention"])
    assert dry.exit_code == 0, dry.output
    assert (
        f"submission {sub.pk}" in dry.output and "would remove the files of 1 submission(s) (328 bytes)" in dry.output
    )
    assert "--apply" in dry.output
    assert Submission.objects.get(pk=sub.pk).files_removed_at is None

    done = CliRunner().invoke(app, ["admin", "retention", "--apply", "--json"])
    assert done.exit_code == 0, done.output
    report = json.loads(done.output)
    assert report["applied"] and report["submissions"] == 1 and report["bytes"] == 328
    assert report["items"][0]["submission"] == sub.pk
    assert Submission.objects.get(pk=sub.pk).files_removed_at is not None
    assert not default_storage.exists(report["items"][0]["files"][0]["name"])


def test_the_task_runner_applies_it_daily_once_scheduled(participant, phase, media, django_capture_on_commit_callbacks):
    from assay.server import tasks
    from assay.server.tasks.models import Task

    sub = settled(participant, phase, days_old=31)
    with django_capture_on_commit_callbacks(execute=True):
        assert retention.schedule() is True
        assert retention.schedule() is False  # one chain, however often it is asked
        assert tasks.run_due() == 1
    sub.refresh_from_db()
    assert sub.files_removed_at is not None
    (following,) = Task.objects.filter(name=retention.SCHEDULED, state=Task.State.QUEUED)
    assert following.run_after > timezone.now() + dt.timedelta(hours=23)
    assert tasks.run_due() == 0  # tomorrow's run waits for tomorrow
    assert retention.unschedule() == 1


def test_an_in_place_reruns_earlier_logs_go_with_the_submissions_and_its_results_stay(
    participant, phase, host, media, django_capture_on_commit_callbacks
):
    """The attempt a host's re-run keeps names the earlier logs and result: retention removes those logs
    when it removes the submission's own, and keeps the result document (results always stay)."""
    sub = settled(participant, phase, days_old=31)
    writer = ContentWriter()
    sub.submission_result_file = writer.save(f"submission_results/{sub.pk}", "result.json", data=b"[]")[0]
    sub.save()
    earlier_logs = [sub.stdout_file.name, sub.stderr_file.name]
    earlier_result = sub.submission_result_file.name
    lifecycle.rerun(host, sub)
    sub.refresh_from_db()
    sub.stdout_file = writer.save(f"submission_logs/{sub.pk}", "stdout.txt", data=b"second run")[0]
    sub.status = "finished"
    sub.save()

    (item,) = retention.due(NOW)
    assert {f for f, _, _ in item.files} == {
        "input_file",
        "stdout_file",
        "attempt 1 stdout_file",
        "attempt 1 stderr_file",
    }
    with django_capture_on_commit_callbacks(execute=True):
        retention.apply(NOW)
    (attempt,) = sub.attempts.all()
    assert not attempt.stdout_file and not attempt.stderr_file
    assert attempt.submission_result_file.name == earlier_result and default_storage.exists(earlier_result)
    assert not any(default_storage.exists(n) for n in earlier_logs)
    assert list(retention.due(NOW)) == []


def test_a_log_a_kept_evaluation_still_names_is_not_deleted(
    participant, phase, media, django_capture_on_commit_callbacks
):
    from assay.server.submissions.models import SubmissionAttempt

    sub = settled(participant, phase, days_old=31)
    fresh = settled(participant, phase, days_old=1, content=b'{"fresh": 1}')
    SubmissionAttempt.objects.create(
        submission=fresh, number=1, status="finished", rerun_at=NOW, stdout_file=sub.stdout_file.name
    )
    with django_capture_on_commit_callbacks(execute=True):
        retention.apply(NOW)
    assert default_storage.exists(SubmissionAttempt.objects.get(submission=fresh).stdout_file.name)
