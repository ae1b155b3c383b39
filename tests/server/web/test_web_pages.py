"""The participant web pages, for every role: anonymous, another team, participant, host of another
challenge, host, admin; with malformed and hostile input where a page takes any."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from assay.server.challenges.models import Challenge, ChallengePhaseSplit, Participation
from assay.server.submissions.models import Submission
from assay.server.submissions.services.submit import SubmissionFields, submit
from assay.server.teams.models import ParticipantTeam, ParticipantTeamMember
from tests.factories import make_user, register_team, upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def outsider():
    """Someone in another team of the same challenge."""
    return make_user("olga", "olga@else.example")


@pytest.fixture
def other_team(outsider, demo_challenge):
    team = register_team(demo_challenge, outsider, "Team Olga")
    return team


@pytest.fixture
def other_host(demo_challenge):
    """A host of another challenge."""
    from assay.server.teams.services import create_host_team

    user = make_user("oscar", "oscar@hosts.example")
    create_host_team("Other hosts", user)
    return user


@pytest.fixture
def sub(team, participant, demo_challenge):
    phase = demo_challenge.phases.get(codename="dev")
    return submit(participant, phase, upload(), "preds.json", SubmissionFields())


def client_for(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


# --- challenge list and public pages -----------------------------------------------------------------


def test_list_filters(client, demo_challenge):
    assert demo_challenge.title in client.get("/").content.decode()
    assert demo_challenge.title in client.get("/?when=all&q=even&tag=demo&domain=TAB").content.decode()
    for query in ("?when=past", "?when=upcoming", "?q=nothing-like-it", "?tag=nope", "?domain=CV"):
        assert demo_challenge.title not in client.get("/" + query).content.decode(), query


@pytest.mark.parametrize(
    "query",
    ["?when=%00", "?q=%27%22%3Cscript%3E", "?tag=%22%5D%7D", "?domain=" + "X" * 500, "?q=" + "a" * 5000, "?page=-1"],
)
def test_list_survives_hostile_queries(client, demo_challenge, query):
    response = client.get("/" + query)
    assert response.status_code == 200
    assert "<script>" not in response.content.decode().split("<main", 1)[1]


def test_list_htmx_returns_only_the_cards(client, demo_challenge):
    response = client.get("/?q=even", HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert demo_challenge.title in body and "<html" not in body


@pytest.mark.parametrize("tab", ["", "evaluation", "terms", "phases", "leaderboard", "logo"])
def test_public_tabs(client, demo_challenge, tab):
    assert client.get(f"/challenges/{demo_challenge.pk}/{tab}").status_code == 200


@pytest.mark.parametrize("tab", ["", "evaluation", "terms", "phases", "leaderboard", "logo", "participate", "submit"])
def test_unpublished_challenges_do_not_exist_for_others(demo_challenge, participant, other_host, host, admin_user, tab):
    Challenge.objects.filter(pk=demo_challenge.pk).update(published=False)
    url = f"/challenges/{demo_challenge.pk}/{tab}"
    for user in (participant, other_host):
        assert client_for(user).get(url).status_code == 404, (user, url)
    for user in (host, admin_user):
        assert client_for(user).get(url).status_code == 200, (user, url)


def test_missing_challenge_is_404(client):
    assert client.get("/challenges/999999/").status_code == 404


def test_host_html_is_sanitised(client, demo_challenge):
    Challenge.objects.filter(pk=demo_challenge.pk).update(
        description='<p>ok</p><script>alert(1)</script><img src=x onerror="alert(2)">'
        '<a href="javascript:alert(3)">x</a>',
        terms_and_conditions='<iframe src="https://evil.example"></iframe><style>body{display:none}</style>terms',
    )
    body = client.get(f"/challenges/{demo_challenge.pk}/").content.decode()
    assert "<p>ok</p>" in body
    assert "alert(1)" not in body and "onerror" not in body and "javascript:" not in body
    terms = client.get(f"/challenges/{demo_challenge.pk}/terms").content.decode()
    assert "<iframe" not in terms and "display:none" not in terms and "terms" in terms


def test_team_names_are_escaped(client, demo_challenge, participant):
    register_team(demo_challenge, participant, "<script>alert(1)</script>")
    host = demo_challenge.host_team.created_by
    body = client_for(host).get(f"/challenges/{demo_challenge.pk}/host/participants").content.decode()
    assert "<script>alert(1)</script>" not in body and "&lt;script&gt;" in body


# --- participate -------------------------------------------------------------------------------------


def test_participate_requires_login(client, demo_challenge):
    response = client.get(f"/challenges/{demo_challenge.pk}/participate")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_participate_with_a_new_team_and_the_terms(demo_challenge):
    carol = make_user("carol", "carol@uni.example")
    c = client_for(carol)
    url = f"/challenges/{demo_challenge.pk}/participate"
    response = c.post(url, {"new_team_name": "Team Carol"})  # no terms ticked
    assert response.status_code == 302
    assert not Participation.objects.filter(team__name="Team Carol").exists()
    response = c.post(url, {"team": ParticipantTeam.objects.get(name="Team Carol").pk, "accept_terms": "on"})
    assert response.status_code == 302 and response["Location"].endswith("/submit")
    participation = Participation.objects.get(team__name="Team Carol")
    assert participation.terms_accepted_by == carol


@pytest.mark.parametrize("team_value", ["", "abc", "-1", "99999999999999999999", "1 OR 1=1"])
def test_participate_with_a_hostile_team_value(demo_challenge, team_value):
    carol = make_user("carol", "carol@uni.example")
    response = client_for(carol).post(
        f"/challenges/{demo_challenge.pk}/participate", {"team": team_value, "accept_terms": "on"}, follow=True
    )
    assert response.status_code == 200
    assert not Participation.objects.exclude(team__name__startswith="Hosts").filter(team__created_by=carol).exists()


def test_cannot_register_someone_elses_team(demo_challenge, outsider):
    carol = make_user("carol", "carol@uni.example")
    team = ParticipantTeam.objects.create(name="Not Carol's", created_by=outsider)
    ParticipantTeamMember.objects.create(team=team, user=outsider)
    response = client_for(carol).post(
        f"/challenges/{demo_challenge.pk}/participate", {"team": team.pk, "accept_terms": "on"}, follow=True
    )
    assert "not a member" in response.content.decode()
    assert not Participation.objects.filter(team=team).exists()


def test_withdraw_needs_post_and_membership(demo_challenge, team, participant):
    c = client_for(participant)
    assert c.get(f"/challenges/{demo_challenge.pk}/withdraw").status_code == 405
    page = c.post(f"/challenges/{demo_challenge.pk}/withdraw")
    assert page.status_code == 200 and "Yes, leave the challenge" in page.content.decode()
    assert Participation.objects.filter(team=team).exists()
    assert c.post(f"/challenges/{demo_challenge.pk}/withdraw", {"confirmed": "yes"}).status_code == 302
    assert not Participation.objects.filter(team=team).exists()
    assert c.post(f"/challenges/{demo_challenge.pk}/withdraw", {"confirmed": "yes"}).status_code == 404


def test_forms_need_the_csrf_token(demo_challenge, team, participant):
    c = Client(enforce_csrf_checks=True)
    c.force_login(participant)
    assert c.post(f"/challenges/{demo_challenge.pk}/withdraw").status_code == 403


# --- submit ------------------------------------------------------------------------------------------


def test_submit_page_asks_for_the_terms_first(demo_challenge, team, participant):
    Participation.objects.filter(team=team).update(terms_accepted_at=None)
    body = client_for(participant).get(f"/challenges/{demo_challenge.pk}/submit").content.decode()
    assert "accept the" in body and 'id="submit-form"' not in body
    c = client_for(participant)
    c.post(f"/challenges/{demo_challenge.pk}/accept-terms", {"accept_terms": "on"})
    body = c.get(f"/challenges/{demo_challenge.pk}/submit").content.decode()
    assert 'id="submit-form"' in body and "uses_modulo" in body and "Remaining for your team" in body


def test_submit_with_a_plain_form(demo_challenge, team, participant, media):
    phase = demo_challenge.phases.get(codename="dev")
    response = client_for(participant).post(
        f"/challenges/{demo_challenge.pk}/submit",
        {"phase": phase.pk, "input_file": upload(), "method_name": "m", "meta__uses_modulo": "true",
         "visibility_choice": "1", "is_public": "on"},
    )  # fmt: skip
    assert response.status_code == 302 and "/submissions?phase=" in response["Location"]
    sub = Submission.objects.get()
    assert sub.method_name == "m" and sub.is_public and sub.submission_metadata[0]["value"] is True


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"input_file": upload(name="evil.exe")}, "not an allowed file type"),
        ({}, "a submission file is required"),
        ({"input_file": upload(), "meta__uses_modulo": "perhaps"}, "must be true or false"),
        ({"input_file": upload(), "project_url": "javascript:alert(1)"}, "is not an http(s) address"),
    ],
)
def test_submit_refusals_are_shown(demo_challenge, team, participant, media, extra, message):
    phase = demo_challenge.phases.get(codename="dev")
    response = client_for(participant).post(
        f"/challenges/{demo_challenge.pk}/submit", {"phase": phase.pk, **extra}, follow=True
    )
    assert message in response.content.decode()
    assert not Submission.objects.exists()


@pytest.mark.parametrize("phase_value", ["", "x", "0", "99999", "1; DROP TABLE"])
def test_submit_to_a_bad_phase_is_404(demo_challenge, team, participant, phase_value):
    response = client_for(participant).post(
        f"/challenges/{demo_challenge.pk}/submit", {"phase": phase_value, "input_file": upload()}
    )
    assert response.status_code == 404


def test_submit_to_another_challenges_phase_is_404(demo_challenge, team, participant, host_team, media):
    from assay.bundle import read_bundle
    from assay.server.challenges.services.bundle_import import import_bundle
    from tests.factories import DEMO_BUNDLE

    with read_bundle(DEMO_BUNDLE) as bundle:
        other = import_bundle(bundle, host_team=host_team).challenge
    response = client_for(participant).post(
        f"/challenges/{demo_challenge.pk}/submit", {"phase": other.phases.first().pk, "input_file": upload()}
    )
    assert response.status_code == 404


def test_someone_without_a_team_cannot_submit(demo_challenge, outsider, media):
    phase = demo_challenge.phases.get(codename="dev")
    response = client_for(outsider).post(
        f"/challenges/{demo_challenge.pk}/submit", {"phase": phase.pk, "input_file": upload()}, follow=True
    )
    assert "not registered" in response.content.decode()
    assert not Submission.objects.exists()


# --- resumable uploads -------------------------------------------------------------------------------


def test_chunked_upload_resumes_and_finishes(demo_challenge, team, participant, media):
    c = client_for(participant)
    phase = demo_challenge.phases.get(codename="dev")
    data = json.dumps({f"dev-a{i}": i % 2 for i in range(200)}).encode()
    begin = c.post(
        f"/challenges/{demo_challenge.pk}/uploads", {"phase": phase.pk, "file_name": "p.json", "size": len(data)}
    )
    assert begin.status_code == 201, begin.content
    state = begin.json()
    assert state["missing"] == [1] and state["part_count"] == 1
    status = c.get(f"/uploads/{state['upload']}").json()
    assert status["missing"] == [1]
    put = c.generic("PUT", f"/uploads/{state['upload']}/parts/1", data, content_type="application/octet-stream")
    assert put.status_code == 200, put.content
    assert c.get(f"/uploads/{state['upload']}").json()["missing"] == []
    done = c.post(f"/uploads/{state['upload']}/finish")
    assert done.status_code == 200 and "/submissions?phase=" in done.json()["redirect"]
    sub = Submission.objects.get(pk=done.json()["submission"])
    assert sub.status == "submitted" and sub.input_file_size == len(data)


def test_uploads_belong_to_their_owner(demo_challenge, team, participant, outsider, media):
    c = client_for(participant)
    phase = demo_challenge.phases.get(codename="dev")
    state = c.post(
        f"/challenges/{demo_challenge.pk}/uploads", {"phase": phase.pk, "file_name": "p.json", "size": 5}
    ).json()
    other = client_for(outsider)
    assert other.get(f"/uploads/{state['upload']}").status_code == 404
    assert other.generic("PUT", f"/uploads/{state['upload']}/parts/1", b"12345").status_code == 404
    assert other.post(f"/uploads/{state['upload']}/finish").status_code == 404
    assert Client().get(f"/uploads/{state['upload']}").status_code == 302  # anonymous: to the login page


@pytest.mark.parametrize(
    "fields, status",
    [
        ({"size": "-5"}, 400),
        ({"size": "lots"}, 400),
        ({"size": str(10**15)}, 413),
        ({"size": "5", "file_name": "x.exe"}, 400),
        ({"size": "5", "sha256": "nothex"}, 400),
    ],
)
def test_chunked_upload_refuses_bad_starts(demo_challenge, team, participant, fields, status):
    phase = demo_challenge.phases.get(codename="dev")
    response = client_for(participant).post(
        f"/challenges/{demo_challenge.pk}/uploads", {"phase": phase.pk, "file_name": "p.json", **fields}
    )
    assert response.status_code == status, response.content
    assert "message" in response.json()


def test_a_part_larger_than_declared_is_refused(demo_challenge, team, participant, media):
    c = client_for(participant)
    phase = demo_challenge.phases.get(codename="dev")
    state = c.post(
        f"/challenges/{demo_challenge.pk}/uploads", {"phase": phase.pk, "file_name": "p.json", "size": 5}
    ).json()
    response = c.generic("PUT", f"/uploads/{state['upload']}/parts/1", b"x" * 50)
    assert response.status_code == 413
    assert c.generic("PUT", f"/uploads/{state['upload']}/parts/9", b"x").status_code == 400


# --- my submissions, actions, files ------------------------------------------------------------------


def test_my_submissions_polls_while_in_progress(demo_challenge, sub, participant):
    body = client_for(participant).get(f"/challenges/{demo_challenge.pk}/submissions").content.decode()
    assert f'id="submission-{sub.pk}"' in body and 'hx-trigger="every 2s"' in body and "in the queue" in body
    Submission.objects.filter(pk=sub.pk).update(status="finished")
    rows = client_for(participant).get(f"/challenges/{demo_challenge.pk}/submissions/rows").content.decode()
    assert "every 2s" not in rows and 'data-status="finished"' in rows


def test_other_teams_do_not_see_my_submissions(demo_challenge, sub, outsider, other_team):
    body = client_for(outsider).get(f"/challenges/{demo_challenge.pk}/submissions").content.decode()
    assert f'id="submission-{sub.pk}"' not in body


@pytest.mark.parametrize("action", ["cancel", "hide", "public", "private", "rerun", "resume"])
def test_others_cannot_act_on_my_submission(sub, outsider, other_host, action):
    for user in (outsider, other_host):
        assert client_for(user).post(f"/submissions/{sub.pk}/{action}").status_code == 404
    assert Submission.objects.get(pk=sub.pk).status == "submitted"


def test_unknown_actions_are_404(sub, participant):
    assert client_for(participant).post(f"/submissions/{sub.pk}/delete-everything").status_code == 404
    assert client_for(participant).get(f"/submissions/{sub.pk}/cancel").status_code == 405


def test_cancel_my_submission(demo_challenge, sub, participant):
    response = client_for(participant).post(f"/submissions/{sub.pk}/cancel")
    assert response.status_code == 302
    assert Submission.objects.get(pk=sub.pk).status == "cancelled"


def test_refused_actions_say_why(demo_challenge, sub, participant):
    response = client_for(participant).post(f"/submissions/{sub.pk}/rerun", {"confirmed": "yes"}, follow=True)
    assert "only the hosts may re-run" in response.content.decode()


def test_files_for_the_team_and_hosts_only(sub, participant, outsider, other_host, host, admin_user):
    for user in (participant, host, admin_user):
        response = client_for(user).get(f"/submissions/{sub.pk}/files/input")
        assert response.status_code == 200, user
        assert response["Content-Disposition"].startswith("attachment")
        assert "sandbox" in response["Content-Security-Policy"]
    for user in (outsider, other_host):
        assert client_for(user).get(f"/submissions/{sub.pk}/files/input").status_code == 404
    assert Client().get(f"/submissions/{sub.pk}/files/input").status_code == 302
    for kind in ("stdout", "nonsense", "../../etc/passwd"):
        assert client_for(participant).get(f"/submissions/{sub.pk}/files/{kind}").status_code == 404


def test_logs_are_plain_text_and_hidden_when_the_phase_says_so(sub, participant, host, media):
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    name = default_storage.save("submission_files/x/stdout.txt", ContentFile(b"<script>alert(1)</script>"))
    Submission.objects.filter(pk=sub.pk).update(stdout_file=name)
    response = client_for(participant).get(f"/submissions/{sub.pk}/files/stdout")
    assert response["Content-Type"].startswith("text/plain") and response["X-Content-Type-Options"] == "nosniff"
    sub.phase.disable_logs = True
    sub.phase.save()
    assert client_for(participant).get(f"/submissions/{sub.pk}/files/stdout").status_code == 403
    assert client_for(host).get(f"/submissions/{sub.pk}/files/stdout").status_code == 200


# --- leaderboards ------------------------------------------------------------------------------------


def test_private_split_hidden_from_participants(demo_challenge, team, participant, host):
    private = ChallengePhaseSplit.objects.get(phase__challenge=demo_challenge, visibility=1)
    for c in (Client(), client_for(participant)):
        body = c.get(f"/challenges/{demo_challenge.pk}/leaderboard?split={private.pk}").content.decode()
        assert "Private split" not in body
    body = client_for(host).get(f"/challenges/{demo_challenge.pk}/leaderboard?split={private.pk}").content.decode()
    assert "Private split" in body and "hosts only" in body


@pytest.mark.parametrize(
    "query", ["?split=abc", "?split=-1", "?order_by=%3Cscript%3E", "?page=0", "?page=999999999", "?entries=all"]
)
def test_leaderboard_survives_hostile_queries(demo_challenge, participant, query):
    response = client_for(participant).get(f"/challenges/{demo_challenge.pk}/leaderboard{query}")
    assert response.status_code in (200, 400, 403)
    assert "<script>" not in response.content.decode()


# --- container images --------------------------------------------------------------------------------


def test_docker_challenges_refuse_what_docker_save_did_not_make(demo_challenge, team, participant, media):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tests.server.images import fake_image_tarball

    Challenge.objects.filter(pk=demo_challenge.pk).update(is_docker_based=True, is_static_dataset_code_upload=True)
    phase = demo_challenge.phases.get(codename="dev")
    c = client_for(participant)
    c.post(f"/challenges/{demo_challenge.pk}/accept-terms", {"accept_terms": "on"})
    body = c.get(f"/challenges/{demo_challenge.pk}/submit?phase={phase.pk}").content.decode()
    assert "docker save" in body
    bad = SimpleUploadedFile("image.tar", b"just bytes")
    response = c.post(f"/challenges/{demo_challenge.pk}/submit", {"phase": phase.pk, "input_file": bad}, follow=True)
    assert "not a readable docker save tarball" in response.content.decode() and not Submission.objects.exists()
    root = SimpleUploadedFile("image.tar", fake_image_tarball(user=""))
    response = c.post(f"/challenges/{demo_challenge.pk}/submit", {"phase": phase.pk, "input_file": root}, follow=True)
    assert "runs as root" in response.content.decode() and not Submission.objects.exists()
    good = SimpleUploadedFile("image.tar", fake_image_tarball())
    c.post(f"/challenges/{demo_challenge.pk}/submit", {"phase": phase.pk, "input_file": good})
    sub = Submission.objects.get()
    assert sub.input_file_name == "image.tar" and sub.image_digest.startswith("sha256:")


def test_leaderboard_links_its_csv_export(demo_challenge, client):
    ps = ChallengePhaseSplit.objects.filter(phase__challenge=demo_challenge, visibility=3).first()
    body = client.get(f"/challenges/{demo_challenge.pk}/leaderboard?split={ps.pk}").content.decode()
    assert f"/api/v1/phase-splits/{ps.pk}/leaderboard/export.csv" in body
