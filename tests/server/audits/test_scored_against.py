"""A submission records what it was scored against when its worker is handed the job (the annotation file's
SHA-256 and the phase's pinned data package version), so a host who re-pins the phase between the evaluation
and the audit's release changes nothing of what the manifest names; /api/v1's submission detail tells it,
the package only to those who may see it, the annotation's SHA-256 only to the challenge's hosts."""

from __future__ import annotations

import dataclasses

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from assay.evidence.manifest import check_manifest
from assay.server.audits.models import Release
from assay.server.audits.services.manifest import build_manifest, manifest_of
from assay.server.challenges.models import Challenge, Participation
from assay.server.submissions.models import Submission, SubmissionAttempt
from assay.server.submissions.services import jobs, lifecycle, queue
from assay.server.submissions.services.queue import Completion
from assay.server.submissions.services.submit import SubmissionFields, submit
from assay.server.submissions.services.tokens import create_worker_token
from tests.factories import DEMO_BUNDLE, make_user, upload
from tests.server.data_packages.pinning import DEV_LABELS, bundle_folder, flipped, import_folder, labels_version, ref
from tests.server.data_packages.pinning import package as make_package
from tests.server.web.audit_world import released, summarise_into

pytestmark = pytest.mark.django_db
PERFECT = (DEMO_BUNDLE.parent / "demo-submissions" / "dev_perfect.json").read_bytes()
GOOD = {"result": [{"public": {"Accuracy": 1.0, "F1": 1.0}}]}


@dataclasses.dataclass
class Pinned:
    audit: object
    token: object
    v1: object
    package: object

    @property
    def dev(self):
        return self.audit.challenge.phases.get(codename="dev")


def pin(tmp_path, host_team, challenge, version: int, name: str) -> None:
    """The host (re-)imports the demo bundle with its dev phase pinned to ``version``; the phase keeps its audit."""
    dev = challenge.phases.get(codename="dev")
    audit_settings = dev.audit
    import_folder(bundle_folder(tmp_path, ref(version), name=name), host_team, challenge)
    Challenge.objects.filter(pk=challenge.pk).update(approved_by_admin=True, published=True)
    challenge.phases.filter(pk=dev.pk).update(audit=audit_settings)
    Participation.objects.filter(challenge=challenge).update(terms_accepted_at=timezone.now())


@pytest.fixture
def pinned(audit, tmp_path, host_team) -> Pinned:
    pkg = make_package(audit.host, host_team)
    v1 = labels_version(audit.host, pkg)
    pin(tmp_path, host_team, audit.challenge, 1, "v1")
    return Pinned(audit, create_worker_token(None, "w")[0], v1, pkg)


def evaluated(p: Pinned) -> Submission:
    """Team A's submission, claimed by the platform's worker (the job block it is handed) and scored."""
    sub = submit(p.audit.alice, p.dev, upload(PERFECT), "preds.json", SubmissionFields())
    held = queue.claim_next(p.token, "w1")
    assert held is not None and held.pk == sub.pk
    assert jobs.job_payload(held)["annotation"]["sha256"] == p.v1.files.get(path="labels/dev.json").sha256
    queue.complete(p.token, sub.pk, Completion(attempt=held.attempt, output=GOOD))
    return Submission.objects.get(pk=sub.pk)


def repin_to_v2(p: Pinned, tmp_path, host_team) -> str:
    """The host publishes v2 (every public label flipped) and re-pins the phase: its annotations change."""
    v2 = labels_version(p.audit.host, p.package, flipped(DEV_LABELS))
    pin(tmp_path, host_team, p.audit.challenge, 2, "v2")
    digest = v2.files.get(path="labels/dev.json").sha256
    assert p.dev.test_annotation_sha256 == digest  # the phase names v2's file now
    return digest


def test_a_claim_records_what_the_worker_is_handed_in_the_claims_own_statements(
    pinned, django_assert_num_queries
) -> None:
    sub = submit(pinned.audit.alice, pinned.dev, upload(PERFECT), "preds.json", SubmissionFields())
    # the claim's statements as they were before it recorded anything: one SELECT (the job's phase and challenge
    # joined, what the job block reads) and one UPDATE, in a transaction (here a savepoint)
    with django_assert_num_queries(4):
        held = queue.claim_next(pinned.token, "w1")
    payload = jobs.job_payload(held)  # what the worker is told
    stored = Submission.objects.get(pk=sub.pk)
    assert stored.scored_annotation_sha256 == payload["annotation"]["sha256"] == pinned.dev.test_annotation_sha256
    assert stored.scored_package_version_id == pinned.v1.pk


def test_evalais_host_run_worker_taking_a_named_job_records_it_too(pinned) -> None:
    sub = submit(pinned.audit.alice, pinned.dev, upload(PERFECT), "preds.json", SubmissionFields())
    queue.take(pinned.token, sub.pk, worker_id="evalai", lease_seconds=60)
    stored = Submission.objects.get(pk=sub.pk)
    assert (stored.scored_annotation_sha256, stored.scored_package_version_id) == (
        pinned.dev.test_annotation_sha256,
        pinned.v1.pk,
    )


def test_a_repin_between_evaluation_and_release_leaves_the_manifest_naming_v1(pinned, tmp_path, host_team) -> None:
    sub = evaluated(pinned)
    summarise_into(sub)
    v1_labels = pinned.v1.files.get(path="labels/dev.json")
    v2_digest = repin_to_v2(pinned, tmp_path, host_team)
    released(dataclasses.replace(pinned.audit, sub_a=sub))
    manifest = Release.objects.get(submission=sub).manifest
    assert manifest == manifest_of(sub)
    assert manifest["files"]["annotations"] == v1_labels.sha256 != v2_digest
    package = manifest["data_package"]
    assert (package["name"], package["version"]) == ("even-numbers", 1)
    annotations = next(f for f in package["files"] if f["use"] == "annotations")
    assert annotations == {
        "use": "annotations",
        "path": "labels/dev.json",
        "role": "labels",
        "sha256": v1_labels.sha256,
    }
    assert manifest["scored_against"] == {"recorded": True}
    assert check_manifest(manifest).problems == []
    with v1_labels.file.open("rb") as fh:
        (tmp_path / "dev.json").write_bytes(fh.read())
    assert check_manifest(manifest, files={"annotations": tmp_path / "dev.json"}).ok  # assay audit verify --file


def test_a_rerun_keeps_the_earlier_record_on_its_attempt_and_records_its_own(pinned, tmp_path, host_team) -> None:
    sub = evaluated(pinned)
    v2_digest = repin_to_v2(pinned, tmp_path, host_team)
    again = lifecycle.rerun(pinned.audit.host, sub)
    assert again.scored_annotation_sha256 is None and again.scored_package_version_id is None  # not scored yet
    kept = SubmissionAttempt.objects.get(submission=sub)
    assert kept.scored_package_version_id == pinned.v1.pk
    assert kept.scored_annotation_sha256 == pinned.v1.files.get(path="labels/dev.json").sha256
    held = queue.claim_next(pinned.token, "w2")
    assert held.pk == sub.pk
    queue.complete(pinned.token, sub.pk, Completion(attempt=held.attempt, output=GOOD))
    manifest = build_manifest(sub)
    assert manifest["files"]["annotations"] == v2_digest
    assert manifest["data_package"]["version"] == 2 and manifest["scored_against"] == {"recorded": True}


def test_a_submission_claimed_before_the_record_was_kept_names_the_phases_pin_and_says_so(
    pinned, tmp_path, host_team
) -> None:
    sub = evaluated(pinned)
    Submission.objects.filter(pk=sub.pk).update(scored_annotation_sha256=None, scored_package_version=None)
    v2_digest = repin_to_v2(pinned, tmp_path, host_team)
    manifest = build_manifest(sub)
    assert manifest["scored_against"] == {"recorded": False}
    assert manifest["files"]["annotations"] == v2_digest and manifest["data_package"]["version"] == 2
    body = api(pinned.audit.host).get(f"/api/v1/submissions/{sub.pk}").json()
    assert body["scored_against"] == {
        "recorded": False,
        "annotation_sha256": v2_digest,
        "data_package": {"name": "even-numbers", "version": 2},
    }


def api(user) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def test_the_submission_detail_tells_each_role_what_it_may_see(pinned, tmp_path, host_team) -> None:
    sub = evaluated(pinned)
    digest = sub.scored_annotation_sha256
    repin_to_v2(pinned, tmp_path, host_team)
    audit = pinned.audit
    v1 = {"name": "even-numbers", "version": 1}
    staff = make_user("staff")
    staff.is_staff = True
    staff.save()
    expected = {
        audit.host: {"recorded": True, "annotation_sha256": digest, "data_package": v1},
        staff: {"recorded": True, "annotation_sha256": digest, "data_package": v1},
        audit.alice: {"recorded": True, "annotation_sha256": None, "data_package": v1},  # on_request: its card
    }
    for user, told in expected.items():
        response = api(user).get(f"/api/v1/submissions/{sub.pk}")
        assert response.status_code == 200, user
        assert response.json()["scored_against"] == told, user
    assert digest not in api(audit.alice).get(f"/api/v1/submissions/{sub.pk}").content.decode()  # labels' digest
    for user, status in ((None, 401), (make_user("outsider"), 404), (audit.bob, 404), (audit.auditor, 404)):
        assert api(user).get(f"/api/v1/submissions/{sub.pk}").status_code == status
    pinned.package.access = "hosts_only"
    pinned.package.save()
    assert api(audit.alice).get(f"/api/v1/submissions/{sub.pk}").json()["scored_against"]["data_package"] is None
    assert api(audit.host).get(f"/api/v1/submissions/{sub.pk}").json()["scored_against"]["data_package"] == v1


def test_a_waiting_submission_was_scored_against_nothing_yet(pinned) -> None:
    sub = submit(pinned.audit.alice, pinned.dev, upload(PERFECT), "preds.json", SubmissionFields())
    assert api(pinned.audit.host).get(f"/api/v1/submissions/{sub.pk}").json()["scored_against"] is None
