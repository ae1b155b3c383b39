"""Access holes of issue 12, each closed in the one service every face calls, checked as every role
with the exact status: worker tokens read only the jobs they hold, unverified accounts get no token,
host team or challenge, and an unapproved challenge is not evaluated on the platform's workers."""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from tests.factories import client_for, finish, upload


def worker_client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


# --- 1. a worker token reads only the submissions it holds --------------------------------------------


@pytest.fixture
def remote(world, users):
    """The first challenge evaluated remotely: two worker tokens of its queue, one of another queue, and
    three submissions (one finished, two waiting)."""
    from assay.server.challenges.models import Challenge
    from assay.server.submissions.services.submit import SubmissionFields, submit
    from assay.server.submissions.services.tokens import create_worker_token

    challenge, other = world["challenge"], world["other_challenge"]
    Challenge.objects.filter(pk__in=[challenge.pk, other.pk]).update(remote_evaluation=True)
    challenge.refresh_from_db()
    other.refresh_from_db()
    dev = challenge.phases.get(codename="dev")
    done = finish(submit(users["participant"], dev, upload(), "done.json", SubmissionFields()))
    first = submit(users["participant"], dev, upload(), "first.json", SubmissionFields())
    second = submit(users["other_participant"], dev, upload(), "second.json", SubmissionFields())
    return {
        "challenge": challenge,
        "dev": dev,
        "done": done,
        "first": first,
        "second": second,
        "a": worker_client(create_worker_token(users["host"], "a", challenge)[1]),
        "b": worker_client(create_worker_token(users["host"], "b", challenge)[1]),
        "elsewhere": worker_client(create_worker_token(users["other_host"], "c", other)[1]),
    }


def _take(client, challenge, sub):
    return client.patch(
        f"/api/jobs/challenge/{challenge.pk}/update_submission/",
        {"submission": sub.pk, "submission_status": "running"},
        format="multipart",
    )


def test_worker_reads_the_offered_job_then_only_what_it_holds(remote):
    c, first, second, done = remote["challenge"], remote["first"], remote["second"], remote["done"]
    a, b, elsewhere = remote["a"], remote["b"], remote["elsewhere"]
    message = a.get(f"/api/jobs/challenge/queues/challenge-{c.pk}/").json()
    assert message["body"]["submission_pk"] == first.pk
    # the offered job: any worker of the queue reads it before taking it (EvalAI-Starters' loop)
    assert a.get(f"/api/jobs/submission/{first.pk}").status_code == 200
    assert b.get(f"/api/jobs/submission/{first.pk}").status_code == 200
    # not offered, not held: closed, whatever the id
    for sub in (second, done):
        assert a.get(f"/api/jobs/submission/{sub.pk}").status_code == 406, sub
    assert elsewhere.get(f"/api/jobs/submission/{first.pk}").status_code == 406
    assert _take(a, c, first).status_code == 200
    held = a.get(f"/api/jobs/submission/{first.pk}")
    assert held.status_code == 200 and held.json()["input_file"].startswith("http")
    assert b.get(f"/api/jobs/submission/{first.pk}").status_code == 406  # held by a, not b
    assert b.get(f"/api/jobs/submission/{second.pk}").status_code == 200  # now the offered one
    assert elsewhere.get(f"/api/jobs/submission/{first.pk}").status_code == 406
    assert a.get(f"/api/jobs/submission/{done.pk}").status_code == 406


def test_another_worker_cannot_take_or_report_a_held_job(remote):
    from assay.server.submissions.models import Submission

    c, dev, first = remote["challenge"], remote["dev"], remote["first"]
    assert _take(remote["a"], c, first).status_code == 200
    assert _take(remote["b"], c, first).status_code == 409
    result = [{"split": "public", "show_to_participant": True, "accuracies": {"Accuracy": 1, "F1": 1}}]
    body = {"challenge_phase": dev.pk, "submission": first.pk, "submission_status": "FINISHED",
            "result": json.dumps(result), "stdout": "", "stderr": "", "metadata": ""}  # fmt: skip
    url = f"/api/jobs/challenge/{c.pk}/update_submission/"
    assert remote["b"].put(url, body, format="multipart").status_code == 409
    assert remote["elsewhere"].put(url, body, format="multipart").status_code == 403
    assert Submission.objects.get(pk=first.pk).status == "running"
    assert remote["a"].put(url, body, format="multipart").status_code == 200
    assert Submission.objects.get(pk=first.pk).status == "finished"


def test_user_tokens_read_submissions_as_before(remote, users):
    first = remote["first"]
    assert client_for(users["participant"]).get(f"/api/jobs/submission/{first.pk}").status_code == 200
    assert client_for(users["host"]).get(f"/api/jobs/submission/{first.pk}").status_code == 200
    assert client_for(users["admin"]).get(f"/api/jobs/submission/{first.pk}").status_code == 200
    assert client_for(users["other_participant"]).get(f"/api/jobs/submission/{first.pk}").status_code == 406
    assert client_for(users["other_host"]).get(f"/api/jobs/submission/{first.pk}").status_code == 406
    assert APIClient().get(f"/api/jobs/submission/{first.pk}").status_code == 401


def test_native_files_follow_the_same_rule(remote):
    """``/api/v1/worker/files/<sha>``: the holder's files only, by the same ``held_by``."""
    a, b, elsewhere = remote["a"], remote["b"], remote["elsewhere"]
    response = a.post("/api/v1/worker/claim", {"worker_id": "wa"}, format="json")
    assert response.status_code == 200, response.content
    job = response.json()["job"]
    assert job["submission_id"] == remote["first"].pk
    sha = job["submission_file"]["sha256"]
    assert a.get(f"/api/v1/worker/files/{sha}").status_code == 200
    assert b.get(f"/api/v1/worker/files/{sha}").status_code == 404
    assert elsewhere.get(f"/api/v1/worker/files/{sha}").status_code == 404
    assert b.get(f"/api/jobs/submission/{job['submission_id']}").status_code == 406
    assert a.get(f"/api/jobs/submission/{job['submission_id']}").status_code == 200


# --- 2. no API token, host team or challenge before the e-mail address is verified ---------------------


def _unverify(user) -> None:
    from allauth.account.models import EmailAddress

    EmailAddress.objects.filter(user=user).update(verified=False)


def _bundle_zip():
    import io
    import zipfile

    from tests.factories import DEMO_BUNDLE

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for p in sorted(DEMO_BUNDLE.rglob("*")):
            if p.is_file():
                zf.write(p, p.relative_to(DEMO_BUNDLE).as_posix())
    buf.seek(0)
    buf.name = "challenge_config.zip"
    return buf


def _says_verify(message: str) -> None:
    assert "verify your e-mail address" in message and "/accounts/login/" in message, message


def test_logins_give_no_token_to_an_unverified_account(users):
    from assay.server.accounts.models import ApiToken
    from tests.factories import make_user

    carol = make_user("carol")
    _unverify(carol)
    anon = APIClient()
    r = anon.post("/api/v1/auth/login", {"username": "carol", "password": "pw"}, format="json")
    assert r.status_code == 403 and r.json()["error"]["code"] == "email_unverified"
    _says_verify(r.json()["error"]["message"])
    assert "carol@uni.example" in r.json()["error"]["message"]
    r = anon.post("/api/auth/login", {"username": "carol", "password": "pw"}, format="json")
    assert r.status_code == 403 and r.json()["code"] == "email_unverified"
    _says_verify(r.json()["error"])
    # a wrong password says nothing about the address
    r = anon.post("/api/v1/auth/login", {"username": "carol", "password": "no"}, format="json")
    assert r.status_code == 401 and r.json()["error"]["code"] == "bad_credentials"
    assert anon.post("/api/auth/login", {"username": "carol", "password": "no"}).status_code == 400
    assert not ApiToken.objects.filter(user=carol).exists()
    # verified accounts log in as before, on both paths
    assert anon.post("/api/v1/auth/login", {"username": "alice", "password": "pw"}, format="json").status_code == 201
    assert anon.post("/api/auth/login", {"username": "alice", "password": "pw"}).status_code == 200


def test_a_token_issued_before_cannot_mint_more_or_host(users, world):
    """An address un-verified after a token was issued (or a token from before this rule): no new
    tokens, no host team, no challenge, on every face."""
    from assay.server.teams.models import HostTeam

    host = users["host"]
    client = client_for(host)
    _unverify(host)
    r = client.post("/api/v1/tokens", {"name": "more"}, format="json")
    assert r.status_code == 403 and r.json()["error"]["code"] == "email_unverified"
    r = client.get("/api/accounts/user/get_auth_token")
    assert r.status_code == 403 and r.json()["code"] == "email_unverified"
    r = client.post("/api/v1/host-teams", {"name": "Sneaky hosts"}, format="json")
    assert r.status_code == 403 and r.json()["error"]["code"] == "email_unverified"
    _says_verify(r.json()["error"]["message"])
    r = client.post("/api/hosts/create_challenge_host_team", {"team_name": "Sneaky hosts"}, format="json")
    assert r.status_code == 403 and r.json()["code"] == "email_unverified"
    assert not HostTeam.objects.filter(name="Sneaky hosts").exists()
    team = world["host_team"].pk
    r = client.post("/api/v1/challenges", {"host_team": team, "bundle": _bundle_zip()}, format="multipart")
    assert r.status_code == 403 and r.json()["error"]["code"] == "email_unverified", r.content
    base = f"/api/challenges/challenge/challenge_host_team/{team}"
    r = client.post(f"{base}/zip_upload/", {"zip_configuration": _bundle_zip()}, format="multipart")
    assert r.status_code == 403, r.content
    _says_verify(r.json()["error"])
    r = client.post(
        f"{base}/create_or_update_github_challenge/", {"zip_configuration": _bundle_zip()}, format="multipart"
    )
    assert r.status_code == 403, r.content
    # updating the challenge it already hosts is not creating one: allowed
    c = world["challenge"].pk
    r = client.put(f"/api/v1/challenges/{c}/bundle", {"bundle": _bundle_zip()}, format="multipart")
    assert r.status_code == 200, r.content


def test_web_host_dashboard_refuses_an_unverified_account(users):
    from django.test import Client

    from assay.server.teams.models import HostTeam

    host = users["other_host"]
    _unverify(host)
    web = Client()
    web.force_login(host)
    body = web.post("/host/", {"name": "Web sneaks"}, follow=True).content.decode()
    assert "verify your e-mail address" in body
    assert not HostTeam.objects.filter(name="Web sneaks").exists()


def test_without_mandatory_verification_the_rule_is_off(users, settings):
    from tests.factories import make_user

    settings.ACCOUNT_EMAIL_VERIFICATION = "optional"
    _unverify(make_user("carol"))
    r = APIClient().post("/api/v1/auth/login", {"username": "carol", "password": "pw"}, format="json")
    assert r.status_code == 201
