"""Server-side halves of issue 17's web points: the admin's approval action, logs for hosts and
participants, a cancel that came too late, settings dates with seconds, and the login page's own link."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.test import Client

from assay.server.challenges.models import Challenge
from assay.server.submissions.models import Submission
from assay.server.submissions.services.submit import SubmissionFields, submit
from tests.factories import upload

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def sub(team, participant, demo_challenge):
    return submit(participant, demo_challenge.phases.get(codename="dev"), upload(), "preds.json", SubmissionFields())


def test_admins_approve_challenges_from_the_list(demo_challenge, admin_user):
    Challenge.objects.filter(pk=demo_challenge.pk).update(approved_by_admin=False)
    response = client_for(admin_user).post(
        "/admin/challenges/challenge/",
        {"action": "approve", "_selected_action": [demo_challenge.pk], "index": 0},
        follow=True,
    )
    assert response.status_code == 200 and "Approved: " in response.content.decode()
    assert Challenge.objects.get(pk=demo_challenge.pk).approved_by_admin


def test_the_admin_names_each_section_once(admin_user):
    page = client_for(admin_user).get("/admin/").content.decode()
    assert "Leaderboard entries" in page and "entrys" not in page
    assert "Profiles and API tokens" in page


def test_participants_read_logs_without_server_folders_hosts_with_them(sub, participant, host):
    line = b'File "/srv/assay/worker/job-1/main.py", line 3\n'
    sub.stdout_file.save("stdout.txt", ContentFile(line))
    sub.stderr_file.save("stderr.txt", ContentFile(b""))
    url = f"/submissions/{sub.pk}/files/"
    mine = b"".join(client_for(participant).get(url + "stdout").streaming_content)
    assert mine == b'File "\xe2\x80\xa6/main.py", line 3\n'
    hosts = b"".join(client_for(host).get(url + "stdout").streaming_content)
    assert hosts == line
    empty = client_for(participant).get(url + "stderr")
    assert (
        empty.status_code == 200 and b"".join(empty.streaming_content) == b"The evaluation wrote nothing to stderr.\n"
    )


def test_every_face_serves_participants_the_log_without_server_folders(sub, participant, host):
    """/api/v1 and the EvalAI API (its signed URL) read the log through the same reader as the web page."""
    from rest_framework.test import APIClient

    line = b'File "/srv/assay/worker/job-1/main.py", line 3\n'
    sub.stdout_file.save("stdout.txt", ContentFile(line))
    for user, expected in ((participant, b'File "\xe2\x80\xa6/main.py", line 3\n'), (host, line)):
        api = APIClient()
        api.force_authenticate(user)
        assert api.get(f"/api/v1/submissions/{sub.pk}/stdout").content == expected
        signed = api.get(f"/api/jobs/submission/{sub.pk}").json()["stdout_file"]
        download = Client().get(signed)
        body = b"".join(download.streaming_content) if download.streaming else download.content
        assert download.status_code == 200 and body == expected, user


def test_a_cancel_after_the_claim_is_a_warning_that_it_had_started(sub, participant):
    Submission.objects.filter(pk=sub.pk).update(status="running")
    response = client_for(participant).post(f"/submissions/{sub.pk}/cancel", follow=True)
    text = response.content.decode()
    assert "was not cancelled: it had already started (it is now running)" in text
    assert Submission.objects.get(pk=sub.pk).status == "running"


def test_a_refused_cancel_of_a_cancelled_submission_still_says_why(sub, participant):
    Submission.objects.filter(pk=sub.pk).update(status="cancelled")
    response = client_for(participant).post(f"/submissions/{sub.pk}/cancel", follow=True)
    assert "cannot be cancelled" in response.content.decode()


def test_settings_keep_the_end_date_seconds(demo_challenge, host):
    page = client_for(host).get(f"/challenges/{demo_challenge.pk}/host/").content.decode()
    shown = demo_challenge.end_date.strftime("%Y-%m-%d %H:%M:%S")
    assert f'value="{shown}"' in page and "End date (UTC)" in page


def test_the_login_page_links_to_itself_without_nesting_next(client):
    page = client.get("/accounts/login/?next=/challenges/").content.decode()
    assert 'href="/accounts/login/?next=/challenges/"' in page
    assert "next=/accounts/login" not in page and "next%3D" not in page


def test_every_page_names_its_icon(client):
    assert 'rel="icon" href="/static/web/favicon.svg"' in client.get("/").content.decode()


def test_a_broken_upload_is_named_as_the_host_named_it(host, host_team):
    from django.core.files.uploadedfile import SimpleUploadedFile

    bundle = SimpleUploadedFile("my-challenge-v2.zip", b"not a zip at all", content_type="application/zip")
    response = client_for(host).post("/host/challenges/new", {"bundle": bundle, "host_team": host_team.pk})
    page = response.content.decode()
    assert response.status_code == 400 and "my-challenge-v2.zip" in page
    assert "upload.zip" not in page


def test_a_settings_save_names_what_changed_in_the_form_labels(demo_challenge, host):
    from assay.server.web.forms import ChallengeSettingsForm

    data = {f"challenge-{k}": v for k, v in ChallengeSettingsForm.for_challenge(demo_challenge).initial.items()}
    data = {k: ("\n".join(v) if isinstance(v, list) else v) for k, v in data.items() if v not in (None, False)}
    data["challenge-end_date"] = demo_challenge.end_date.strftime("%Y-%m-%d %H:%M:%S")
    data["challenge-short_description"] = "A new summary"
    page = client_for(host).post(f"/challenges/{demo_challenge.pk}/host/settings", data, follow=True).content.decode()
    assert f"The settings of {demo_challenge.title} saved; changed: Short description." in page
