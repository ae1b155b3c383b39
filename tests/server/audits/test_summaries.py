"""The audit summary on the server: the bundle's ``audit`` imported onto its phase, the summary computed
from the stored per-case rows once a result commits, its intervals set beside the leaderboard scores, its
steps on the evidence trail; and an audit that fails never costs the submission its result."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from django.core.files.base import ContentFile

from assay.audit import interval, summarise
from assay.bundle import read_bundle
from assay.server import tasks
from assay.server.audits.models import AuditSummary, TrailRecord
from assay.server.audits.services import summaries
from assay.server.audits.services.summaries import sha256_json, summarise_submission
from assay.server.challenges.services.bundle_import import import_bundle
from assay.server.leaderboards.models import LeaderboardEntry
from assay.server.submissions.models import Submission, SubmissionCases
from assay.server.submissions.services.cases import case_rows, store_cases
from assay.server.submissions.services.submit import SubmissionFields, submit
from assay.server.tasks.models import Task
from tests.factories import DEMO_BUNDLE, finish, upload

pytestmark = pytest.mark.django_db

SETTINGS = {
    "task": "binary",
    "threshold": 0.5,
    "bootstrap": {"resamples": 200, "seed": 11},
    "intervals": {"Accuracy": "sensitivity", "F1": "auroc"},
}
# 60 cases: positives c0..c29 called positive from c6 on (sensitivity 24/30), negatives c30..c59 called
# negative up to c53 (specificity 24/30); probabilities spread so the ROC has a curve.
ROWS = [
    {
        "case_id": f"c{i}",
        "reference": int(i < 30),
        "probability": round(
            (0.38 + 0.02 * i) if i < 30 else (0.05 + 0.01 * (i - 30) if i < 54 else 0.6 + 0.01 * (i - 54)), 4
        ),
    }
    for i in range(60)
]
RESULT = {"result": [{"public": {"Accuracy": 0.8, "F1": 0.7}}]}  # the demo's dev phase has one split


def set_audit(challenge, settings) -> None:
    challenge.phases.filter(codename="dev").update(audit=settings)


@pytest.fixture
def queued(team, participant, demo_challenge) -> Submission:
    phase = demo_challenge.phases.get(codename="dev")
    return submit(participant, phase, upload(b'{"dev-a0": 1}'), "preds.json", SubmissionFields(method_name="m1"))


def scored(sub, django_capture_on_commit_callbacks, output=None) -> Submission:
    """The worker reports ``output`` (the result and the rows); the commit's callbacks run, then the task
    runner's due tasks (the summary)."""
    with django_capture_on_commit_callbacks(execute=True):
        finish(sub, output or {**RESULT, "cases": ROWS})
    tasks.run_due()
    sub.refresh_from_db()
    return sub


def test_the_summary_is_a_background_task_not_part_of_the_result(
    queued, demo_challenge, django_capture_on_commit_callbacks
):
    set_audit(demo_challenge, SETTINGS)
    with django_capture_on_commit_callbacks(execute=True):
        finish(queued, {**RESULT, "cases": ROWS})
    assert not AuditSummary.objects.exists()  # the worker's complete answered without the bootstrap
    assert Task.objects.filter(name=summaries.SUMMARISE, payload={"submission": queued.pk}).count() == 1
    tasks.run_due()  # the summary's, and the notifications' of the same result
    assert Task.objects.get(name=summaries.SUMMARISE).state == Task.State.DONE
    assert AuditSummary.objects.filter(submission=queued).exists()
    Submission.objects.filter(pk=queued.pk).delete()
    summaries.summarise_task({"submission": queued.pk})  # gone since: nothing to do, no error


def trail_kinds(sub) -> list[str]:
    return list(TrailRecord.objects.filter(submission=sub).order_by("seq").values_list("kind", flat=True))


def entry_intervals(sub) -> dict[str, dict]:
    return {
        e.phase_split.dataset_split.codename: e.intervals
        for e in LeaderboardEntry.objects.filter(submission=sub, is_disabled=False).select_related(
            "phase_split__dataset_split"
        )
    }


def test_the_bundle_audit_key_is_imported_onto_its_phase(media, host_team, tmp_path):
    folder = Path(shutil.copytree(DEMO_BUNDLE, tmp_path / "bundle"))
    path = folder / "challenge_config.yaml"
    config = yaml.safe_load(path.read_text())
    dev = next(p for p in config["challenge_phases"] if p["codename"] == "dev")
    dev["audit"] = {"task": "ordinal", "grades": [0, 1, 2], "referable_from": 1, "intervals": {"Accuracy": "qwk"}}
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    with read_bundle(folder) as bundle:
        challenge = import_bundle(bundle, host_team=host_team).challenge
    assert challenge.phases.get(codename="dev").audit == {
        "task": "ordinal",
        "prediction": None,
        "threshold": None,
        "grades": [0, 1, 2],
        "referable_from": 1,
        "subgroups": [],
        "min_group_size": 30,
        "bootstrap": {"resamples": 1000, "seed": 0, "level": 0.95},
        "intervals": {"Accuracy": "qwk"},
    }
    assert challenge.phases.get(codename="test").audit is None


def test_a_scored_submission_gets_its_summary_intervals_and_trail(
    queued, demo_challenge, django_capture_on_commit_callbacks
):
    set_audit(demo_challenge, SETTINGS)
    sub = scored(queued, django_capture_on_commit_callbacks)
    assert sub.status == Submission.Status.FINISHED
    summary = AuditSummary.objects.get(submission=sub)
    expected = summarise(SETTINGS, ROWS)
    assert summary.document == expected
    assert summary.document["headline"]["sensitivity"]["value"] == pytest.approx(24 / 30)
    assert summary.settings_sha256 == sha256_json(SETTINGS)
    assert summary.cases_sha256 == SubmissionCases.objects.get(submission=sub).sha256
    sensitivity, auroc = interval(expected, "sensitivity"), interval(expected, "auroc")
    both = {"Accuracy": list(sensitivity), "F1": list(auroc)}
    assert entry_intervals(sub) == {"public": both}
    assert trail_kinds(sub) == ["evaluated", "cases_stored", "summarised"]
    record = TrailRecord.objects.get(submission=sub, kind="summarised")
    assert record.payload == {
        "summary_sha256": sha256_json(expected),
        "settings_sha256": summary.settings_sha256,
        "cases_sha256": summary.cases_sha256,
    }


def test_summarising_again_gives_the_same_document(queued, demo_challenge, django_capture_on_commit_callbacks):
    set_audit(demo_challenge, SETTINGS)
    sub = scored(queued, django_capture_on_commit_callbacks)
    first = AuditSummary.objects.get(submission=sub).document
    again = summarise_submission(sub)
    assert again.document == first and AuditSummary.objects.filter(submission=sub).count() == 1


def test_subgroups_come_from_the_hosts_case_metadata(queued, demo_challenge, media):
    phase = demo_challenge.phases.get(codename="dev")
    lines = ["case_id,sex"] + [f"c{i},{'F' if i % 2 else 'M'}" for i in range(60)]
    phase.case_metadata.save("cases.csv", ContentFile("\n".join(lines).encode()))
    settings = {**SETTINGS, "subgroups": ["sex"], "min_group_size": 10}
    set_audit(demo_challenge, settings)
    store_cases(queued, [{**row, "sex": "X"} for row in ROWS])  # the participant's "sex" is overridden
    summary = summarise_submission(queued)
    (table,) = summary.document["subgroups"]["attributes"]
    assert [(row["group"], row["n"]) for row in table["rows"]] == [("F", 30), ("M", 30)]
    assert summary.document == summarise(settings, case_rows(Submission.objects.get(pk=queued.pk)))


def test_rows_the_audit_cannot_score_leave_an_error_and_the_result_stands(
    queued, demo_challenge, django_capture_on_commit_callbacks
):
    set_audit(demo_challenge, SETTINGS)
    rows = [{"case_id": "a", "reference": 2, "probability": 0.4}, {"case_id": "b", "reference": 0, "probability": 0.1}]
    sub = scored(queued, django_capture_on_commit_callbacks, {**RESULT, "cases": rows})
    assert sub.status == Submission.Status.FINISHED
    document = AuditSummary.objects.get(submission=sub).document
    assert document["error"] == "reference[0] = 2.0: a binary reference is 0 or 1"
    assert (document["task"], document["n"]) == ("binary", 2)
    assert entry_intervals(sub) == {"public": {}}
    assert trail_kinds(sub) == ["evaluated", "cases_stored", "summarised"]
    assert TrailRecord.objects.get(submission=sub, kind="summarised").payload["error"] == document["error"]


def test_an_internal_failure_is_logged_stored_and_the_result_stands(
    queued, demo_challenge, django_capture_on_commit_callbacks, monkeypatch, caplog
):
    set_audit(demo_challenge, SETTINGS)

    def broken(settings, rows):
        raise RuntimeError("boom")

    monkeypatch.setattr("assay.audit.summarise", broken)
    sub = scored(queued, django_capture_on_commit_callbacks)
    assert sub.status == Submission.Status.FINISHED
    assert LeaderboardEntry.objects.filter(submission=sub).count() == 1
    document = AuditSummary.objects.get(submission=sub).document
    assert document["error"].startswith("the audit figures could not be computed")
    assert "boom" in caplog.text


def test_a_failing_trail_in_the_receiver_does_not_undo_the_result(
    queued, demo_challenge, django_capture_on_commit_callbacks, monkeypatch, caplog
):
    set_audit(demo_challenge, SETTINGS)

    def broken(*args, **kwargs):
        raise ValueError("trail down")

    monkeypatch.setattr(summaries.trail, "append", broken)
    sub = scored(queued, django_capture_on_commit_callbacks)
    assert sub.status == Submission.Status.FINISHED
    assert LeaderboardEntry.objects.filter(submission=sub).count() == 1
    assert "trail down" in caplog.text


def test_no_audit_or_no_rows_means_no_summary(queued, demo_challenge, django_capture_on_commit_callbacks):
    sub = scored(queued, django_capture_on_commit_callbacks)  # the phase has no audit
    assert not AuditSummary.objects.exists() and trail_kinds(sub) == []
    assert summarise_submission(sub) is None

    set_audit(demo_challenge, SETTINGS)
    SubmissionCases.objects.filter(submission=sub).delete()
    assert summarise_submission(sub) is None


def test_a_result_without_rows_in_an_audited_phase_is_only_on_the_trail(
    queued, demo_challenge, django_capture_on_commit_callbacks
):
    set_audit(demo_challenge, SETTINGS)
    sub = scored(queued, django_capture_on_commit_callbacks, RESULT)
    assert not AuditSummary.objects.exists()
    assert trail_kinds(sub) == ["evaluated"]


def test_interval_labels_a_split_lacks_are_left_out(queued, demo_challenge, django_capture_on_commit_callbacks):
    set_audit(demo_challenge, {**SETTINGS, "intervals": {"Accuracy": "sensitivity", "Recall": "specificity"}})
    sub = scored(queued, django_capture_on_commit_callbacks)
    document = AuditSummary.objects.get(submission=sub).document
    assert entry_intervals(sub)["public"] == {"Accuracy": list(interval(document, "sensitivity"))}
