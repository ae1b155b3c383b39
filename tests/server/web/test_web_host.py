"""Host pages: bundles (errors with file and line), settings, pause, submissions and their actions,
participants, exports, worker tokens, script errors — and nobody but the hosts reaches any of them."""

from __future__ import annotations

import csv
import io
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from assay.server.challenges.models import Challenge, Participation
from assay.server.submissions.models import Submission, WorkerToken
from assay.server.submissions.services.submit import SubmissionFields, submit
from tests.factories import DEMO_BUNDLE, upload

pytestmark = pytest.mark.django_db

HOST_PAGES = ["host/", "host/submissions", "host/participants", "host/workers", "host/errors",
              "host/export/submissions.csv", "host/export/participants.csv"]  # fmt: skip
HOST_POSTS = ["host/settings", "host/pause", "host/bundle", "host/invitations", "host/submissions/rerun"]


def client_for(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def bundle_zip(name: str = "bundle.zip", replace: tuple[bytes, bytes] | None = None) -> SimpleUploadedFile:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path in sorted(DEMO_BUNDLE.rglob("*")):
            if path.is_file():
                data = path.read_bytes()
                if replace and path.name == "challenge_config.yaml":
                    data = data.replace(*replace)
                zf.writestr(path.relative_to(DEMO_BUNDLE).as_posix(), data)
    return SimpleUploadedFile(name, buf.getvalue(), content_type="application/zip")


@pytest.fixture
def other_host(django_user_model):
    from assay.server.teams.services import create_host_team
    from tests.factories import verified

    user = verified(django_user_model.objects.create_user("oscar", "oscar@hosts.example", "pw"))
    create_host_team("Other hosts", user)
    return user


@pytest.fixture
def sub(team, participant, demo_challenge):
    return submit(participant, demo_challenge.phases.get(codename="dev"), upload(), "preds.json", SubmissionFields())


# --- who gets in -------------------------------------------------------------------------------------


@pytest.mark.parametrize("page", HOST_PAGES)
def test_host_pages_for_every_role(demo_challenge, team, participant, other_host, host, admin_user, page):
    url = f"/challenges/{demo_challenge.pk}/{page}"
    assert Client().get(url).status_code == 302  # to the login page
    for user in (participant, other_host):
        assert client_for(user).get(url).status_code == 404, (user, url)
    for user in (host, admin_user):
        assert client_for(user).get(url).status_code == 200, (user, url)


@pytest.mark.parametrize("page", HOST_POSTS)
def test_host_actions_refuse_others(demo_challenge, participant, other_host, page):
    url = f"/challenges/{demo_challenge.pk}/{page}"
    for user in (participant, other_host):
        assert client_for(user).post(url, {"paused": "1"}).status_code == 404
    demo_challenge.refresh_from_db()
    assert not demo_challenge.is_submission_paused


def test_other_hosts_cannot_act_on_submissions_or_participants(demo_challenge, sub, team, other_host):
    participation = Participation.objects.get(team=team)
    c = client_for(other_host)
    assert c.post(f"/challenges/{demo_challenge.pk}/host/submissions/{sub.pk}/flag").status_code == 404
    assert c.post(f"/challenges/{demo_challenge.pk}/host/participants/{participation.pk}/remove").status_code == 404
    assert not Submission.objects.get(pk=sub.pk).is_flagged


# --- bundles -----------------------------------------------------------------------------------------


def test_new_challenge_from_a_bundle(host, host_team, media):
    response = client_for(host).post("/host/challenges/new", {"host_team": host_team.pk, "bundle": bundle_zip()})
    assert response.status_code == 302
    challenge = Challenge.objects.get(host_team=host_team)
    assert response["Location"] == f"/challenges/{challenge.pk}/host/"


def test_a_broken_bundle_shows_file_line_and_key(host, host_team, media):
    response = client_for(host).post(
        "/host/challenges/new",
        {"host_team": host_team.pk, "bundle": bundle_zip(replace=(b"domain: TAB", b"domain: <b>BIO</b>"))},
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert 'id="bundle-problems"' in body and "challenge_config.yaml" in body and "<code>domain</code>" in body
    assert "wrong_domain" in body and "<b>BIO</b>" not in body
    problems = response.context["problems"]
    assert problems[0]["line"] and problems[0]["file"] == "challenge_config.yaml"
    assert not Challenge.objects.exists()


@pytest.mark.parametrize(
    "upload_file",
    [
        SimpleUploadedFile("x.exe", b"MZ"),
        SimpleUploadedFile("x.zip", b"not a zip at all"),
        SimpleUploadedFile("x.zip", b""),
        SimpleUploadedFile("challenge_config.yaml", b"title: [unclosed"),
        SimpleUploadedFile("../../etc/passwd.zip", b"PK\x05\x06" + b"\0" * 18),
    ],
)
def test_hostile_uploads_are_refused_with_a_reason(host, host_team, media, upload_file):
    response = client_for(host).post("/host/challenges/new", {"host_team": host_team.pk, "bundle": upload_file})
    assert response.status_code == 400
    body = response.content.decode()
    assert 'id="bundle-problems"' in body or 'class="errorlist"' in body  # an empty file fails the form itself
    assert not Challenge.objects.exists()


def test_a_lone_config_is_checked_but_not_imported(host, host_team, media):
    config = (DEMO_BUNDLE / "challenge_config.yaml").read_bytes()
    response = client_for(host).post(
        "/host/challenges/new",
        {"host_team": host_team.pk, "bundle": SimpleUploadedFile("challenge_config.yaml", config)},
    )
    assert response.status_code == 400 and "cannot be imported" in response.content.decode()


def test_only_members_create_in_a_host_team(host_team, other_host, media):
    response = client_for(other_host).post("/host/challenges/new", {"host_team": host_team.pk, "bundle": bundle_zip()})
    assert response.status_code == 400  # not one of the user's teams: the form refuses the choice
    assert not Challenge.objects.exists()


def test_update_from_a_bundle(demo_challenge, host, media):
    response = client_for(host).post(
        f"/challenges/{demo_challenge.pk}/host/bundle", {"bundle": bundle_zip(replace=(b"Assay Demo", b"Renamed"))}
    )
    assert response.status_code == 302
    demo_challenge.refresh_from_db()
    assert demo_challenge.title.startswith("Renamed")


def test_update_with_a_broken_bundle_changes_nothing(demo_challenge, host, media):
    response = client_for(host).post(
        f"/challenges/{demo_challenge.pk}/host/bundle",
        {"bundle": bundle_zip(replace=(b"codename: dev", b"codename: test"))},
    )
    assert response.status_code == 400 and 'id="bundle-problems"' in response.content.decode()
    assert demo_challenge.phases.filter(codename="dev").exists()


# --- settings and pause ------------------------------------------------------------------------------


def _settings(challenge, **changes):
    data = {
        "challenge-end_date": challenge.end_date.strftime("%Y-%m-%dT%H:%M"),
        "challenge-is_registration_open": "on",
        "challenge-published": "on",
    }
    data.update({f"challenge-{k}": v for k, v in changes.items()})
    return data


def test_save_challenge_settings(demo_challenge, host):
    data = _settings(
        demo_challenge,
        invite_only="on",
        manual_participant_approval="on",
        allowed_email_domains="uni.example, lab.example\ncs.example",
        banned_email_ids="Bad@Evil.example",
        max_team_members="3",
    )
    response = client_for(host).post(f"/challenges/{demo_challenge.pk}/host/settings", data)
    assert response.status_code == 302
    demo_challenge.refresh_from_db()
    assert demo_challenge.invite_only and demo_challenge.manual_participant_approval
    assert demo_challenge.allowed_email_domains == ["uni.example", "lab.example", "cs.example"]
    assert demo_challenge.banned_email_ids == ["bad@evil.example"] and demo_challenge.max_team_members == 3


@pytest.mark.parametrize(
    "changes",
    [
        {"end_date": "2000-01-01T00:00"},
        {"end_date": "tomorrow"},
        {"max_team_members": "-1"},
        {"forum_url": "javascript:alert(1)"},
        {"allowed_email_domains": "ok.example\x00"},
    ],
)
def test_bad_settings_are_refused(demo_challenge, host, changes):
    before = Challenge.objects.filter(pk=demo_challenge.pk).values().get()
    response = client_for(host).post(
        f"/challenges/{demo_challenge.pk}/host/settings", _settings(demo_challenge, **changes)
    )
    assert response.status_code == 400
    after = Challenge.objects.filter(pk=demo_challenge.pk).values().get()
    assert {k: v for k, v in after.items() if k != "updated_at"} == {
        k: v for k, v in before.items() if k != "updated_at"
    }


def test_phase_and_leaderboard_settings(demo_challenge, host):
    phase = demo_challenge.phases.get(codename="dev")
    prefix = f"phase-{phase.pk}-"
    data = {
        prefix + "start_date": "2024-01-01T00:00",
        prefix + "end_date": "2099-01-01T00:00",
        prefix + "is_public": "on",
        prefix + "max_submissions_per_day": "7",
        prefix + "max_submissions_per_month": "70",
        prefix + "max_submissions": "700",
        prefix + "max_concurrent_submissions_allowed": "2",
    }
    c = client_for(host)
    assert c.post(f"/challenges/{demo_challenge.pk}/host/phases/{phase.pk}", data).status_code == 302
    phase.refresh_from_db()
    assert phase.max_submissions_per_day == 7 and not phase.leaderboard_public
    data[prefix + "end_date"] = "2000-01-01T00:00"
    assert c.post(f"/challenges/{demo_challenge.pk}/host/phases/{phase.pk}", data).status_code == 400
    ps = phase.phase_splits.first()
    split = {f"split-{ps.pk}-visibility": "1", f"split-{ps.pk}-leaderboard_decimal_precision": "4"}
    assert c.post(f"/challenges/{demo_challenge.pk}/host/splits/{ps.pk}", split).status_code == 302
    ps.refresh_from_db()
    assert ps.visibility == 1 and ps.leaderboard_decimal_precision == 4
    split[f"split-{ps.pk}-visibility"] = "7"
    assert c.post(f"/challenges/{demo_challenge.pk}/host/splits/{ps.pk}", split).status_code == 400


def test_pause_and_resume(demo_challenge, host):
    c = client_for(host)
    c.post(f"/challenges/{demo_challenge.pk}/host/pause", {"paused": "1"})
    demo_challenge.refresh_from_db()
    assert demo_challenge.is_submission_paused
    phase = demo_challenge.phases.get(codename="dev")
    c.post(f"/challenges/{demo_challenge.pk}/host/pause", {"paused": "1", "phase": phase.pk})
    phase.refresh_from_db()
    assert phase.is_submission_paused
    c.post(f"/challenges/{demo_challenge.pk}/host/pause", {"paused": "0"})
    demo_challenge.refresh_from_db()
    assert not demo_challenge.is_submission_paused
    assert c.post(f"/challenges/{demo_challenge.pk}/host/pause", {"paused": "1", "phase": "x"}).status_code == 404


def test_paused_challenge_refuses_participants(demo_challenge, team, participant, host, media):
    client_for(host).post(f"/challenges/{demo_challenge.pk}/host/pause", {"paused": "1"})
    phase = demo_challenge.phases.get(codename="dev")
    response = client_for(participant).post(
        f"/challenges/{demo_challenge.pk}/submit", {"phase": phase.pk, "input_file": upload()}, follow=True
    )
    assert "paused" in response.content.decode() and not Submission.objects.exists()


# --- submissions -------------------------------------------------------------------------------------


def test_submission_filters(demo_challenge, sub, host):
    c = client_for(host)
    assert (
        f'id="host-submission-{sub.pk}"' in c.get(f"/challenges/{demo_challenge.pk}/host/submissions").content.decode()
    )
    for query in ("?status=finished", "?team=nobody", "?flag=flagged"):
        body = c.get(f"/challenges/{demo_challenge.pk}/host/submissions{query}").content.decode()
        assert f'id="host-submission-{sub.pk}"' not in body, query
    for query in ("?team=%27", "?page=-3", "?status=&phase=&flag="):
        assert c.get(f"/challenges/{demo_challenge.pk}/host/submissions{query}").status_code == 200


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("?status=done", "status must be one of submitting, submitted"),
        ("?status=%00", "status must be one of"),
        ("?status=" + "x" * 5000, "status must be one of"),
        ("?phase=x", "phase must be a phase id"),
        ("?phase=-3", "phase must be a phase id"),
        ("?phase=" + "9" * 30, "phase must be a phase id"),
        ("?flag=drop", "flag must be one of flagged, baseline"),
    ],
)
def test_a_bad_submission_filter_is_a_400_saying_which_as_on_my_submissions(demo_challenge, sub, host, query, named):
    response = client_for(host).get(f"/challenges/{demo_challenge.pk}/host/submissions{query}")
    body = response.content.decode()
    assert response.status_code == 400 and named in body and f'id="host-submission-{sub.pk}"' not in body
    if "flag" not in query:  # the same check, and the same words, as the participant's own list
        mine = client_for(host).get(f"/me/submissions{query}")
        assert mine.status_code == 400 and named in mine.content.decode()


@pytest.mark.parametrize(
    "action, field, value",
    [("flag", "is_flagged", True), ("baseline", "is_baseline", True), ("verify", "is_verified_by_host", True),
     ("hide", "ignore_submission", True)],
)  # fmt: skip
def test_host_marks(demo_challenge, sub, host, action, field, value):
    response = client_for(host).post(f"/challenges/{demo_challenge.pk}/host/submissions/{sub.pk}/{action}")
    assert response.status_code == 302
    assert getattr(Submission.objects.get(pk=sub.pk), field) is value


def test_host_rerun_and_bulk_rerun(demo_challenge, sub, host):
    Submission.objects.filter(pk=sub.pk).update(status="finished")
    c = client_for(host)
    page = c.post(f"/challenges/{demo_challenge.pk}/host/submissions/{sub.pk}/rerun")
    assert page.status_code == 200 and "Yes, re-run it" in page.content.decode()  # asked first, nothing done
    assert Submission.objects.get(pk=sub.pk).status == "finished" and Submission.objects.count() == 1
    c.post(f"/challenges/{demo_challenge.pk}/host/submissions/{sub.pk}/rerun", {"confirmed": "yes"})
    assert Submission.objects.get(pk=sub.pk).status == "submitted" and Submission.objects.count() == 1  # in place
    Submission.objects.filter(pk=sub.pk).update(status="finished")
    page = c.post(f"/challenges/{demo_challenge.pk}/host/submissions/{sub.pk}/rerun_copy")
    assert "Yes, re-run it as a new submission" in page.content.decode()
    c.post(f"/challenges/{demo_challenge.pk}/host/submissions/{sub.pk}/rerun_copy", {"confirmed": "yes"})
    assert Submission.objects.get(pk=sub.pk).status == "cancelled"
    clone = Submission.objects.exclude(pk=sub.pk).get()
    Submission.objects.filter(pk=clone.pk).update(status="failed")
    page = c.post(f"/challenges/{demo_challenge.pk}/host/submissions/rerun", {"phase": clone.phase_id})
    assert page.status_code == 200 and f'name="phase" value="{clone.phase_id}"' in page.content.decode()
    assert Submission.objects.get(pk=clone.pk).status == "failed"
    c.post(f"/challenges/{demo_challenge.pk}/host/submissions/rerun", {"phase": clone.phase_id, "confirmed": "yes"})
    assert Submission.objects.get(pk=clone.pk).status == "submitted" and Submission.objects.count() == 2
    assert Submission.objects.get(pk=clone.pk).attempts.get().status == "failed"


def test_unknown_host_action(demo_challenge, sub, host):
    response = client_for(host).post(f"/challenges/{demo_challenge.pk}/host/submissions/{sub.pk}/explode", follow=True)
    assert "not an action" in response.content.decode()


def test_host_cancel_follows_the_challenge_rule(demo_challenge, sub, host):
    response = client_for(host).post(f"/challenges/{demo_challenge.pk}/host/submissions/{sub.pk}/cancel", follow=True)
    assert "does not let hosts cancel" in response.content.decode()
    Challenge.objects.filter(pk=demo_challenge.pk).update(allow_host_cancel_submissions=True)
    client_for(host).post(f"/challenges/{demo_challenge.pk}/host/submissions/{sub.pk}/cancel")
    assert Submission.objects.get(pk=sub.pk).status == "cancelled"


# --- participants ------------------------------------------------------------------------------------


def test_approve_disapprove_remove(demo_challenge, team, host):
    participation = Participation.objects.get(team=team)
    c = client_for(host)
    base = f"/challenges/{demo_challenge.pk}/host/participants/{participation.pk}"
    c.post(base + "/disapprove")
    assert Participation.objects.get(pk=participation.pk).status == "disapproved"
    c.post(base + "/approve")
    assert Participation.objects.get(pk=participation.pk).status == "approved"
    assert c.post(base + "/promote").status_code == 404
    assert c.post(base + "/remove").status_code == 200  # the confirmation page
    assert Participation.objects.filter(pk=participation.pk).exists()
    c.post(base + "/remove", {"confirmed": "yes"})
    assert not Participation.objects.filter(pk=participation.pk).exists()


def test_invitations_of_an_invite_only_challenge(demo_challenge, host):
    Challenge.objects.filter(pk=demo_challenge.pk).update(invite_only=True)
    c = client_for(host)
    c.post(f"/challenges/{demo_challenge.pk}/host/invitations", {"emails": "a@x.example, B@y.example\nc@z.example"})
    assert sorted(demo_challenge.invitations.values_list("email", flat=True)) == [
        "a@x.example", "b@y.example", "c@z.example"]  # fmt: skip
    response = c.post(f"/challenges/{demo_challenge.pk}/host/invitations", {"emails": "nope"}, follow=True)
    assert "not a valid e-mail address" in response.content.decode()
    c.post(f"/challenges/{demo_challenge.pk}/host/invitations", {"remove": "a@x.example"})
    assert demo_challenge.invitations.count() == 2
    body = c.get(f"/challenges/{demo_challenge.pk}/host/participants").content.decode()
    assert "b@y.example" in body


# --- exports, workers, errors ------------------------------------------------------------------------


def test_exports_neutralise_formulas(demo_challenge, team, participant, host, media):
    phase = demo_challenge.phases.get(codename="dev")
    submit(participant, phase, upload(), "preds.json", SubmissionFields(method_name='=HYPERLINK("http://x")'))
    c = client_for(host)
    response = c.get(f"/challenges/{demo_challenge.pk}/host/export/submissions.csv")
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][0] == "id" and rows[1][rows[0].index("method_name")].startswith("'=")
    response = c.get(f"/challenges/{demo_challenge.pk}/host/export/participants.csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[1][0] == "Team Alice" and rows[1][5] == "alice@uni.example"
    assert c.get(f"/challenges/{demo_challenge.pk}/host/export/passwords.csv").status_code == 404
    assert c.get(f"/challenges/{demo_challenge.pk}/host/export/submissions.csv?phase=x").status_code == 404


def test_worker_tokens_only_for_remote_challenges(demo_challenge, host):
    c = client_for(host)
    body = c.get(f"/challenges/{demo_challenge.pk}/host/workers").content.decode()
    assert "remote_evaluation: True" in body
    Challenge.objects.filter(pk=demo_challenge.pk).update(remote_evaluation=True)
    response = c.post(f"/challenges/{demo_challenge.pk}/host/workers", {"name": "gpu box"})
    body = response.content.decode()
    token = response.context["new_token"]
    assert token.startswith("aw_") and token in body and "assay worker --server" in body
    row = WorkerToken.objects.get()
    assert row.queue_name == f"challenge-{demo_challenge.pk}"
    assert token not in c.get(f"/challenges/{demo_challenge.pk}/host/workers").content.decode()  # shown once
    c.post(f"/challenges/{demo_challenge.pk}/host/workers", {"revoke": row.pk})
    row.refresh_from_db()
    assert row.revoked_at is not None


def test_script_errors_page(demo_challenge, sub, host):
    Submission.objects.filter(pk=sub.pk).update(status="failed", failure_reason="ImportError: <no module named x>")
    body = client_for(host).get(f"/challenges/{demo_challenge.pk}/host/errors").content.decode()
    assert "ImportError: &lt;no module named x&gt;" in body


def test_dashboard_creates_host_teams(django_user_model):
    from tests.factories import verified

    user = verified(django_user_model.objects.create_user("newhost", "n@h.example", "pw"))
    c = client_for(user)
    c.post("/host/", {"name": "Fresh hosts"})
    assert user.host_teams.get().name == "Fresh hosts"
    response = c.post("/host/", {"name": "fresh HOSTS"}, follow=True)
    assert "already a host team" in response.content.decode()
    response = c.post("/host/", {"name": ""}, follow=True)
    assert user.host_teams.count() == 1
