"""The server's evidence: a submission and a failed evaluation of an audited phase land on the trail (nothing
for ordinary phases), and the manifest names what the result came from, signed with the operator's key."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from assay.evidence import chain, signing
from assay.evidence.manifest import check_manifest, file_sha256, sha256_of
from assay.server.audits.models import AuditSummary, TrailRecord
from assay.server.audits.services import manifest as manifests
from assay.server.audits.services import trail
from assay.server.challenges.models import ChallengePhase
from assay.server.submissions.services import queue
from assay.server.submissions.services.submit import SubmissionFields, submit
from assay.server.submissions.services.tokens import create_worker_token
from tests.factories import upload

pytestmark = pytest.mark.django_db
SETTINGS = {"task": "binary", "threshold": 0.5, "bootstrap": {"resamples": 200, "seed": 7, "level": 0.95}}


@pytest.fixture
def audited(demo_challenge) -> ChallengePhase:
    phase = demo_challenge.phases.get(codename="dev")
    phase.audit = SETTINGS
    phase.save(update_fields=["audit"])
    return phase


def a_submission(participant, phase, content=b'{"dev-a0": 1}'):
    return submit(participant, phase, upload(content), "p.json", SubmissionFields())


def fail(sub, reason="the script raised ValueError"):
    token = create_worker_token(None, "test")[0]
    token.queue_name = sub.queue_name
    claimed = queue.claim_next(token, "test-worker")
    assert claimed is not None and claimed.pk == sub.pk
    return queue.complete(token, sub.pk, queue.Completion(attempt=claimed.attempt, error=reason))


def test_a_submission_to_an_audited_phase_is_recorded_with_its_file_hash(team, participant, audited):
    sub = a_submission(participant, audited)
    [record] = trail.export(sub)
    assert (record["seq"], record["kind"], record["actor"]) == (1, "submitted", "alice")
    assert record["payload"] == {
        "number": 1,
        "team_id": team.pk,
        "file_sha256": sub.input_file_sha256,
        "file_size": sub.input_file_size,
        "image_digest": None,
    }


def test_an_ordinary_phase_records_nothing_and_pays_no_query(team, participant, demo_challenge):
    phase = demo_challenge.phases.get(codename="dev")
    a_submission(participant, phase)  # warm whatever a first submit caches
    with CaptureQueriesContext(connection) as plain:
        sub = a_submission(participant, phase)
    assert not TrailRecord.objects.filter(submission=sub).exists()
    assert not any("audits_trailrecord" in q["sql"] or '"audit"' in q["sql"] for q in plain.captured_queries)


def test_a_failed_evaluation_is_recorded_once(team, participant, audited):
    sub = a_submission(participant, audited)
    sub = fail(sub)
    records = trail.export(sub)
    assert [r["kind"] for r in records] == ["submitted", "evaluated"]
    assert records[1]["payload"]["status"] == "failed"
    assert records[1]["payload"]["reason"].startswith("the script raised ValueError")
    from assay.server.submissions import signals
    from assay.server.submissions.models import Submission

    sub.refresh_from_db()
    signals.changed.send(sender=Submission, submission=sub)  # e.g. its visibility changed later
    assert [r["kind"] for r in trail.export(sub)] == ["submitted", "evaluated"]
    assert chain.broken_links(trail.export(sub)) == []


def test_the_manifest_names_the_inputs_and_verifies_unsigned(team, participant, audited, settings, media):
    settings.AUDIT_SIGNING_KEY = ""
    sub = a_submission(participant, audited)
    document = {"task": "binary", "n": 3, "headline": {"auroc": {"value": 0.75, "low": 0.5, "high": 1.0}}}
    AuditSummary.objects.create(submission=sub, document=document, settings_sha256="0" * 64, cases_sha256="1" * 64)
    built = manifests.build_manifest(sub)
    assert built["signature"] is None
    assert built["files"]["submission"] == sub.input_file_sha256
    assert built["files"]["submission"] == file_sha256(media / sub.input_file.name)
    assert built["files"]["evaluation_script"] == audited.challenge.evaluation_script_sha256
    assert built["files"]["annotations"] == (audited.test_annotation_sha256 or None)
    assert built["files"]["cases"] is None
    assert built["audit"] == {"settings": SETTINGS, "bootstrap_seed": 7}
    assert built["summary"] == {"sha256": sha256_of(document)}
    assert built["environment"]["kind"] == "python" and "numpy==1.26.4" in built["environment"]["packages"]
    assert built["submission"]["id"] == sub.pk and built["submission"]["team"] == "Team Alice"
    assert built["trail"] == {"head": trail.export(sub)[-1]["hash"], "length": 1}
    exported = json.loads(json.dumps(trail.export(sub)))
    stored = AuditSummary.objects.get(submission=sub).document  # as the database gives it back (jsonb: any order)
    report = check_manifest(
        json.loads(json.dumps(built)),
        trail=exported,
        files={"submission": media / sub.input_file.name},
        summary=stored,
    )
    assert report.problems == []


def test_with_a_key_configured_the_manifest_is_signed_by_it(team, participant, audited, settings, tmp_path):
    key = signing.generate_key()
    (tmp_path / "key.pem").write_bytes(signing.private_pem(key))
    settings.AUDIT_SIGNING_KEY = str(tmp_path / "key.pem")
    sub = a_submission(participant, audited)
    built = json.loads(json.dumps(manifests.build_manifest(sub)))
    assert built["signature"]["public_key"] == signing.public_key_b64(key)
    assert check_manifest(built, trail=trail.export(sub), public_key=key.public_key()).problems == []
    trail.append(sub, "answered", "alice", {"answers_sha256": "2" * 64})  # recorded after the manifest
    assert check_manifest(built, trail=trail.export(sub), public_key=key.public_key()).problems == []
    assert manifests.public_key_pem() == signing.public_pem(key).decode()


def test_a_bad_key_path_is_a_configuration_error(team, participant, audited, settings, tmp_path):
    from django.core.exceptions import ImproperlyConfigured

    (tmp_path / "bad.pem").write_text("not a key")
    sub = a_submission(participant, audited)
    for path, message in ((tmp_path / "none.pem", "cannot read"), (tmp_path / "bad.pem", "not an unencrypted PEM")):
        settings.AUDIT_SIGNING_KEY = str(path)
        with pytest.raises(ImproperlyConfigured, match=message):
            manifests.build_manifest(sub)


def test_a_resumable_upload_is_recorded_when_its_file_arrives_not_when_reserved(team, participant, audited, media):
    from assay.server.uploads import services as uploads

    content = b'{"dev-a0": 1, "dev-a1": 0}'
    started = uploads.begin(participant, audited, "p.json", SubmissionFields(), size=len(content))
    assert not TrailRecord.objects.filter(submission_id=started.submission_id).exists()
    uploads.put_part(started, 1, [content])
    sub = uploads.finish(started)
    [record] = trail.export(sub)
    assert record["kind"] == "submitted"
    assert record["payload"]["file_sha256"] == sub.input_file_sha256 == file_sha256(media / sub.input_file.name)


def test_the_trail_download_verifies_against_the_manifest(team, participant, audited, settings):
    settings.AUDIT_SIGNING_KEY = ""
    sub = a_submission(participant, audited)
    built = manifests.build_manifest(sub)
    download = json.loads(json.dumps(trail.document(sub)))
    assert download["schema"] == "assay-audit-trail/1" and download["submission"] == sub.pk
    assert check_manifest(built, trail=download).problems == []


def test_the_system_check_refuses_an_unusable_key_at_start_up(settings, tmp_path):
    from django.core import checks

    settings.AUDIT_SIGNING_KEY = str(tmp_path / "missing.pem")
    [error] = [m for m in checks.run_checks() if m.id == "audits.E001"]
    assert error.level == checks.ERROR and "cannot read" in error.msg
    (tmp_path / "key.pem").write_bytes(signing.private_pem(signing.generate_key()))
    settings.AUDIT_SIGNING_KEY = str(tmp_path / "key.pem")
    assert manifests.check_signing_key() == []
