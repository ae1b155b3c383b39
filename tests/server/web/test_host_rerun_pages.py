"""A host's re-run on the web: the submission's host page lists its evaluations; the team's list says the hosts
re-ran it and when, and shows no copy."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from assay.server.submissions.models import Submission
from assay.server.submissions.services.submit import SubmissionFields, submit
from tests.factories import finish, upload

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


def test_rerun_history_for_the_host_and_the_note_for_the_team(team, participant, demo_challenge, host):
    sub = finish(submit(participant, demo_challenge.phases.get(codename="dev"), upload(), "p.json", SubmissionFields()))
    hosts = _client(host)
    base = f"/challenges/{demo_challenge.pk}/host/submissions/{sub.pk}"
    hosts.post(f"{base}/rerun", {"confirmed": "yes"})
    finish(Submission.objects.get(pk=sub.pk), {"result": [{"public": {"Accuracy": 0.25, "F1": 0.5}}]})
    page = hosts.get(base)
    assert page.status_code == 200
    html = page.content.decode()
    assert html.count("<tr") == 3  # the header, the first evaluation, the current one
    assert "by host1 on" in html and "Accuracy 0.9000" in html and "Accuracy 0.2500" in html
    assert "Re-run as a new submission" in html
    listing = hosts.get(f"/challenges/{demo_challenge.pk}/host/submissions").content.decode()
    assert f'href="{base}"' in listing

    mine = _client(participant)
    rows = mine.get(f"/challenges/{demo_challenge.pk}/submissions").content.decode()
    assert "Re-run by the hosts on" in rows and "(evaluation 2)" in rows
    assert len(re.findall(r'id="submission-\d+"', rows)) == 1  # no copy as the team's #2
    assert "Re-run by the hosts on" in mine.get("/me/submissions").content.decode()
    assert mine.get(base).status_code == 404  # the host page is the hosts'
