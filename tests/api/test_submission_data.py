"""``submission_data`` builds the submit's (and every single submission's) answer by hand, for speed; it must
answer exactly what the documented :class:`SubmissionOut` serializer answers, field for field, in order, for
every kind of submission and reader."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.utils import timezone
from rest_framework.renderers import JSONRenderer
from rest_framework.test import APIRequestFactory, force_authenticate
from rest_framework.views import APIView

from tests.factories import finish, upload

pytestmark = pytest.mark.django_db

OUTPUT = {"result": [{"public": {"Accuracy": 0.825, "F1": 0.6}}, {"private": {"Accuracy": 0.5, "F1": 0.7}}]}


def _request(user):
    """A DRF request as the views get it (absolute URLs need its host)."""
    raw = APIRequestFactory().get("/api/v1/x")
    force_authenticate(raw, user=user)
    return APIView().initialize_request(raw)


def _submissions(world, users) -> list:
    from assay.server.submissions.models import Submission
    from assay.server.submissions.services.submit import SubmissionFields, submit

    alice = users["participant"]
    test = world["challenge"].phases.get(codename="test")
    dev = world["challenge"].phases.get(codename="dev")
    scored = finish(submit(alice, test, upload(b'{"test-a0": 1}'), "preds.json", SubmissionFields()), OUTPUT)
    fresh = submit(alice, dev, upload(), "preds.json", SubmissionFields(method_name="m", is_public=True))
    described = submit(
        alice,
        dev,
        upload(name="ünï code.json"),
        "ünï code.json",
        SubmissionFields(
            method_description="d\n", project_url="https://x.example/p", meta={"uses_modulo": True}, is_public=False
        ),
    )
    failed = submit(alice, dev, upload(), "p.json", SubmissionFields())
    Submission.objects.filter(pk=failed.pk).update(
        status="failed",
        failure_reason="boom",
        started_at=timezone.now() - dt.timedelta(seconds=3, microseconds=5),
        completed_at=timezone.now(),
        files_removed_at=timezone.now(),
        files_removed_policy="retention",
        is_flagged=True,
    )
    reread = list(Submission.objects.select_related("phase__challenge", "participant_team", "created_by"))
    return [fresh, described, scored, *reread]


@pytest.mark.parametrize("reader", ["participant", "host", "admin", "other_participant"])
def test_submission_data_is_what_submission_out_answers(world, users, reader, monkeypatch):
    from django.core import signing

    from assay.server.api.v1.submissions import SubmissionOut, submission_data
    from assay.server.submissions.services.result_access import ResultReader

    monkeypatch.setattr(signing.TimestampSigner, "timestamp", lambda self: "1")  # signed URLs: one second

    subs = _submissions(world, users)
    request = _request(users[reader])
    for sub in subs:
        context = {"reader": ResultReader(users[reader]), "request": request}
        expected = SubmissionOut(sub, context=context).data
        built = submission_data(request, sub)
        assert list(built) == list(expected) == SubmissionOut.Meta.fields
        assert JSONRenderer().render(built) == JSONRenderer().render(expected), sub
        assert built == json.loads(JSONRenderer().render(expected))
    assert any(s.output for s in subs) and any(s.execution_time for s in subs)
