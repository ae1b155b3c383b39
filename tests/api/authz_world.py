"""One world for the route × role authorization table (tests/api/test_route_authz.py): the objects every
route's path parameters name, and a client per role."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.core.files.base import ContentFile
from django.test import Client
from rest_framework.test import APIClient

from tests.factories import finish, make_user, token_for, upload

#: The roles of issue 12: who asks.
ROLES = (
    "anonymous",
    "outsider",  # signed in, in no team of the challenge
    "participant_a",  # member of team A, which owns the submission
    "participant_b",  # member of team B, registered in the same challenge
    "host",  # member of the challenge's host team
    "admin",  # staff
    "worker",  # worker token of the challenge's queue (remote evaluation: the hosts' own workers)
    "other_worker",  # worker token of another challenge's (remote) queue
    "auditor",  # named auditor of the challenge (in no team); sees what an outsider sees, plus its audits
    "other_auditor",  # auditor of the other challenge only: C's audits are hidden from them
)
WORKERS = ("worker", "other_worker")
#: The audited dev phase's questionnaire (audits.Questionnaire.schema) and complete answers to it.
AUDIT_QUESTION = {"id": "intended_use", "text": "What is it for?", "type": "text", "required": True}
AUDIT_QUESTIONNAIRE = {
    "id": "authz-v1",
    "version": "1.0",
    "title": "Authz",
    "sections": [
        {"id": "s", "title": "S", "questions": [{**AUDIT_QUESTION, "stage": "development", "requirement": "technical"}]}
    ],
}
AUDIT_ANSWERS = {"intended_use": "Screening."}
#: An upload of two 1 KiB parts to the dev phase (a valid POST /api/v1/phases/N/uploads body).
UPLOAD = {"file_name": "big.json", "size": 2048, "sha256": "a" * 64, "chunk_size": 1024}


@dataclass
class World:
    values: dict[str, Any]  # path parameter name → value, the same for every route
    by_prefix: dict[str, dict[str, Any]]  # route-pattern prefix → values that differ there (e.g. which team)
    api: dict[str, APIClient] = field(default_factory=dict)  # bearer-token clients (the APIs)
    web: dict[str, Client] = field(default_factory=dict)  # session clients (the pages)
    objects: dict[str, Any] = field(default_factory=dict)

    def values_for(self, pattern: str) -> dict[str, Any]:
        values = dict(self.values)
        for prefix, extra in self.by_prefix.items():
            if pattern.startswith(prefix):
                values.update(extra)
        return values


def code_bundle_zip(text: str = "echo 1") -> Any:
    """A code bundle (a .zip with run.sh at its root), as an upload."""
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("run.sh", text)
    return upload(buf.getvalue(), "model.zip")


def _model(alice, team):
    """Team A's model, private (issue 16): only its team (and staff) may read it."""
    from assay.server.models_zoo.services import registry

    file = code_bundle_zip()
    return registry.register(alice, team=team, name="authz", kind="code_bundle", file=file, file_name=file.name)


#: The host team's on-request data package (issue 16): alice approved, bob's request pending.
DATA_PACKAGE = "authz-data"
DATA_INPUTS, DATA_LABELS = "inputs/case-1.json", "labels/test.json"


def _data_package(host_team, host, alice, bob):
    """The challenge's host team's on-request package, version 1 with an inputs and a labels file; alice's
    request approved, bob's pending (the decision route decides it)."""
    import io
    import zipfile

    from assay.server.data_packages.services import access_requests, publishing

    package = publishing.create_package(host, host_team.pk, DATA_PACKAGE, "Authz data", "on_request", {})
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(DATA_INPUTS, b'{"case-1": [1, 2]}')
        zf.writestr(DATA_LABELS, b'{"case-1": "secret-label"}')
    publishing.publish_version(host, package, buf)
    approved = access_requests.request_access(alice, package, "benchmarking")
    access_requests.decide(host, package, approved.pk, True)
    return access_requests.request_access(bob, package, "benchmarking too")


def build_world(world: dict, users: dict) -> World:
    """tests.api.conftest's world (challenge C with dev and test phases, teams A and B, the host team; a second
    challenge of another host team), both challenges evaluated remotely, plus what every route names: team
    A's finished submission with result, logs and metadata, a job the queue's worker holds, alice's open
    upload, her API token, an invitation, a worker token of each queue, signed URLs as alice gets them."""
    from assay.server.api.evalai.shapes import phase_slug
    from assay.server.challenges.models import Challenge, ChallengePhaseSplit, Participation
    from assay.server.notifications.models import Webhook
    from assay.server.submissions.services import queue
    from assay.server.submissions.services.cases import store_cases
    from assay.server.submissions.services.submit import SubmissionFields, submit
    from assay.server.submissions.services.tokens import create_worker_token, remote_queue_name
    from assay.server.teams.services import invite
    from assay.server.uploads.models import Upload

    challenge, other = world["challenge"], world["other_challenge"]
    Challenge.objects.filter(pk__in=[challenge.pk, other.pk]).update(remote_evaluation=True)
    challenge.refresh_from_db()
    other.refresh_from_db()
    dev, test = challenge.phases.get(codename="dev"), challenge.phases.get(codename="test")
    alice, bob = users["participant"], users["other_participant"]
    outsider = make_user("carol")
    sub = submit(alice, dev, upload(b'{"dev-a0": 1}'), "alice.json", SubmissionFields(is_public=False))
    output = {
        "result": [{"public": {"Accuracy": 0.9, "F1": 0.8}}],
        "submission_metadata": {"note": "for the hosts"},
    }
    sub = finish(sub, output)
    store_cases(sub, [{"case_id": "c1", "reference": 1, "prediction": 1}])  # per-case rows: hosts, auditors
    queue_row, queue_token = create_worker_token(users["host"], "ours", challenge)
    held = submit(alice, dev, upload(b'{"dev-a0": 0}'), "held.json", SubmissionFields())
    assert queue.claim_next(queue_row, "worker-1").pk == held.pk  # a job the queue's worker holds
    other_token = create_worker_token(None, "other", other)[1]
    sub.refresh_from_db()
    if not sub.stderr_file:
        sub.stderr_file.save("stderr.txt", ContentFile(b"err"), save=True)
    assert sub.submission_result_file and sub.stdout_file and sub.submission_metadata_file
    hidden = ChallengePhaseSplit.objects.get(phase=test, visibility=1)
    invitation, invitation_token = invite(alice, world["teams"]["participant"], "dave@uni.example")
    api_token = _api_token(alice)
    hook = Webhook.objects.create(
        challenge=challenge,
        url="https://93.184.215.14/hook",
        secret="whsec_x",
        events=["submission.failed"],
        created_by=users["host"],
    )

    as_alice = APIClient()
    as_alice.force_authenticate(alice)
    listed = as_alice.get(f"/api/v1/phases/{dev.pk}/submissions").json()["results"]
    result_url = next(row["result_url"] for row in listed if row["id"] == sub.pk)  # a signed URL
    signed_file, filename = result_url.split("/signed/files/")[1].split("/")
    begun = as_alice.post(f"/api/v1/phases/{dev.pk}/uploads", UPLOAD, format="json").json()  # two parts, none sent
    up = Upload.objects.get(pk=begun["id"])
    signed_part = begun["part_urls"][0].rsplit("/", 1)[1]
    participation = Participation.objects.get(challenge=challenge, team=world["teams"]["participant"])
    auditor, other_auditor = make_user("audrey"), make_user("otto")
    _audit(challenge, other, dev, sub, held, users["host"], auditor, other_auditor)
    model = _model(alice, world["teams"]["participant"])
    pending = _data_package(world["host_team"], users["host"], alice, bob)
    values = {
        "challenge_id": challenge.pk,
        "pk": challenge.pk,
        "phase_id": dev.pk,
        "slug": phase_slug(dev),
        "phase_split_id": hidden.pk,
        "submission_id": sub.pk,
        "team_id": world["teams"]["participant"].pk,
        "token_id": api_token.pk,
        "upload_id": up.pk,
        "part": 1,
        "number": 1,
        "sha256": held.input_file_sha256,
        "queue_name": remote_queue_name(challenge),
        "invitation_id": invitation.pk,
        "user_id": alice.pk,
        "participation_id": participation.pk,
        "split_id": hidden.pk,  # a phase-split (the host page edits its leaderboard settings)
        "filename": filename,
        "host_team_id": world["host_team"].pk,
        "held_id": held.pk,
        "stdout_key": sub.stdout_file.name,
        "review_round": 1,  # the auditor's open round on team A's submission
        "webhook_id": hook.pk,
        "model_id": model.pk,  # team A's private code-bundle model (its version 1: "number")
    }
    by_prefix = {
        "api/v1/host-teams/": {"team_id": world["host_team"].pk},
        "api/^challenges/challenge/challenge_host_team/": {"team_id": world["host_team"].pk},
        "api/^challenges/challenge_host_team/": {"team_id": world["host_team"].pk},
        "api/v1/worker-tokens/": {"token_id": queue_row.pk},
        "api/v1/worker/jobs/": {"submission_id": held.pk},
        "api/v1/challenges/<int:challenge_id>/auditors/": {"user_id": auditor.pk},
        "api/v1/submissions/<int:submission_id>/audit/answers": {"submission_id": held.pk},  # a draft
        "api/v1/submissions/<int:submission_id>/evaluations/": {"kind": "stdout"},  # evaluation 1: the current
        "api/^jobs/phases/": {"submission_id": up.submission_id},  # EvalAI's presigned upload, finished
        "api/v1/signed/files/": {"token": signed_file},
        "api/v1/signed/upload-parts/": {"token": signed_part},
        "invitations/": {"token": invitation_token},
        "teams/": {"pk": world["teams"]["participant"].pk, "kind": "participant"},
        "host-teams/": {"pk": world["host_team"].pk},
        "submissions/": {"kind": "stdout", "action": "private"},
        "submissions/<int:submission_id>/audit/review/": {"action": "save"},  # the auditor's open round 1
        "submissions/<int:submission_id>/audit/release/": {"action": "release"},
        "challenges/<int:pk>/host/auditors/": {"user_id": auditor.pk},
        "challenges/<int:pk>/host/submissions/": {"action": "hide"},
        "challenges/<int:pk>/host/participants/": {"action": "approve"},
        "challenges/<int:pk>/host/export/": {"kind": "submissions"},
        "challenges/<int:pk>/host/webhooks/": {"action": "pause"},
        "api/v1/data-packages/": {"slug": DATA_PACKAGE, "path": DATA_INPUTS, "request_id": pending.pk},
        "data/": {"slug": DATA_PACKAGE, "path": DATA_INPUTS, "request_id": pending.pk, "action": "approve"},
    }
    people = {
        "outsider": outsider,
        "participant_a": alice,
        "participant_b": bob,
        "host": users["host"],
        "admin": users["admin"],
        "auditor": auditor,
        "other_auditor": other_auditor,
    }
    result = World(values, by_prefix, objects={"submission": sub, "challenge": challenge, "upload": up})
    for role in ROLES:
        api, web = APIClient(), Client()
        if role in people:
            api.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(people[role])}")
            web.force_login(people[role])
        elif role in WORKERS:
            token = queue_token if role == "worker" else other_token
            api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
            web = Client(HTTP_AUTHORIZATION=f"Bearer {token}")  # a worker token is no session: the web ignores it
        result.api[role], result.web[role] = api, web
    return result


def _audit(challenge, other, dev, sub, held, host, auditor, other_auditor) -> None:
    """The dev phase audited: team A's finished submission under review (round 1 is the auditor's, open), its
    held one with complete draft answers; the other auditor audits the other challenge only."""
    from assay.server.audits.models import AnswerSet, Questionnaire, Review
    from assay.server.challenges.models import ChallengeAuditor, ChallengePhase

    ChallengePhase.objects.filter(pk=dev.pk).update(audit={"task": "binary"})
    ChallengeAuditor.objects.create(challenge=challenge, user=auditor, added_by=host)
    ChallengeAuditor.objects.create(challenge=other, user=other_auditor)
    questionnaire = Questionnaire.objects.create(
        challenge=challenge, version="1.0", schema=AUDIT_QUESTIONNAIRE, sha256="0" * 64
    )
    for owned, state in ((sub, "under_review"), (held, "draft")):
        AnswerSet.objects.create(
            submission=owned,
            questionnaire=questionnaire,
            team=owned.participant_team,
            answers=AUDIT_ANSWERS,
            state=state,
        )
    Review.objects.create(answer_set=AnswerSet.objects.get(submission=sub), reviewer=auditor, round=1)


def _api_token(user):
    from assay.server.accounts.models import ApiToken

    token_for(user)
    return ApiToken.objects.filter(user=user).order_by("pk").first()
