"""The audit templates end to end: the DR template's sample submission goes through the real worker (the
in-process transport, sandboxed evaluation), its 600 per-case rows are stored and joined with the hidden
case metadata, and the audit summary shows the handheld camera's gap; the breast-cancer sample gets
calibration, a ROC curve and intervals beside its leaderboard scores."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from assay.server.leaderboards.models import LeaderboardEntry
from assay.server.submissions.models import Submission
from assay.server.submissions.services.tokens import create_worker_token
from tests.factories import REPO, import_published, register_team
from tests.server.submissions.test_worker_e2e import post_submission, run_worker_thread, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def _built(name: str, target: Path) -> Path:
    spec = importlib.util.spec_from_file_location(
        f"e2e_build_{name.replace('-', '_')}", REPO / "examples" / name / "build.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.build(target)
    return target


def _scored(url: str, challenge, participant, admin_user, bundle: Path, tmp_path: Path):
    from assay.server.audits.models import AuditSummary

    register_team(challenge, participant, f"Team {challenge.pk}")
    phase = challenge.phases.get()
    sid = post_submission(participant, phase, (bundle / "sample" / "submission.json").read_bytes(), "sample.json")
    _, token = create_worker_token(admin_user, "audit-e2e")
    run_worker_thread(url, token, tmp_path / "w", transport="inprocess").thread.join(300)
    sub = Submission.objects.get(pk=sid)
    assert sub.status == "finished", (sub.status, sub.failure_reason)
    summary = wait_for(lambda: AuditSummary.objects.filter(submission=sub).first(), timeout=120, what="the summary")
    return sub, summary.document


def _by_group(document: dict, attribute: str) -> dict[str, dict]:
    (table,) = [t for t in document["subgroups"]["attributes"] if t["attribute"] == attribute]
    return {row["group"]: row for row in table["rows"]}


def test_dr_sample_is_stored_case_by_case_and_its_summary_shows_the_camera_gap(
    live_server, task_runner, media, host_team, participant, admin_user, tmp_path
):
    from assay.server.submissions.services.cases import case_rows

    bundle = _built("audit-dr-grading", tmp_path / "dr")
    challenge = import_published(host_team, bundle)
    sub, document = _scored(live_server.url, challenge, participant, admin_user, bundle, tmp_path)

    rows = case_rows(sub)
    assert len(rows) == 600 and sub.cases.count == 600
    assert {row["camera"] for row in rows} == {"desktop-A", "desktop-B", "handheld"}  # from the hidden metadata
    assert "cases" not in (sub.output or {})  # the rows are kept apart from the output participants see

    assert document["task"] == "ordinal" and document["n"] == 600
    qwk = document["headline"]["qwk"]
    assert qwk["low"] < qwk["value"] < qwk["high"]
    cameras = _by_group(document, "camera")
    assert cameras["handheld"]["figures"]["qwk"]["value"] < cameras["desktop-A"]["figures"]["qwk"]["value"] - 0.08
    assert cameras["handheld"]["gap"]["qwk"] < 0  # below the overall figure
    entry = LeaderboardEntry.objects.get(submission=sub)
    low, high = entry.intervals["QWK"]
    assert low < entry.result["QWK"] < high and set(entry.intervals) == {
        "QWK",
        "Accuracy",
        "Referable sensitivity",
        "Referable specificity",
        "Coverage",
    }


def test_bc_sample_gets_calibration_and_a_site_table(
    live_server, task_runner, media, host_team, participant, admin_user, tmp_path
):
    bundle = _built("audit-breast-cancer", tmp_path / "bc")
    challenge = import_published(host_team, bundle)
    sub, document = _scored(live_server.url, challenge, participant, admin_user, bundle, tmp_path)

    assert document["task"] == "binary" and document["n"] == 171
    assert document["calibration"]["reliability"] and document["curves"]["roc"]["tpr"][-1] == 1.0
    sites = _by_group(document, "site")
    assert sites["C"]["figures"]["specificity"]["value"] < sites["A"]["figures"]["specificity"]["value"]
    entry = LeaderboardEntry.objects.get(submission=sub)
    assert set(entry.intervals) == {"AUROC", "Sensitivity", "Specificity", "Balanced accuracy"}
