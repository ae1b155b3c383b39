"""Accounts and teams in the browser's terms: sign-up with e-mail verification, login, profile, API tokens,
team pages and invitations; and the settings read from the environment (e-mail, OpenID Connect)."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from assay.server.accounts.config import CONSOLE, FILE, LOCMEM, SMTP, email_settings, oidc_providers
from assay.server.accounts.models import ApiToken, Profile
from assay.server.teams.models import ParticipantTeam, TeamInvitation
from tests import factories

pytestmark = pytest.mark.django_db
PASSWORD = "a-Long-Test-Passw0rd"


def make_user(username: str, email: str):
    """A verified user whose password is ``PASSWORD`` (these tests sign in through the forms)."""
    return factories.make_user(username, email, password=PASSWORD)


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


# --- sign-up, verification, login --------------------------------------------------------------------


def test_sign_up_verify_and_sign_in(client, mailoutbox):
    response = client.post(
        "/accounts/signup/",
        {"email": "new@uni.example", "username": "newbie", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert response.status_code == 302
    assert len(mailoutbox) == 1 and mailoutbox[0].to == ["new@uni.example"]
    link = re.search(r"https?://\S+/accounts/confirm-email/\S+/", mailoutbox[0].body).group(0)
    path = re.sub(r"^https?://[^/]+", "", link)
    assert client.get(path).status_code == 200
    response = client.post(path)
    assert response.status_code == 302
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.get(username="newbie")
    assert user.emailaddress_set.get().verified
    assert Profile.objects.filter(user=user).exists()  # every user gets a profile
    assert client.get("/account/profile").status_code == 200  # signed in after confirming


def test_unverified_accounts_cannot_sign_in(client, mailoutbox, django_user_model):
    django_user_model.objects.create_user("lazy", "lazy@uni.example", PASSWORD)
    response = client.post("/accounts/login/", {"login": "lazy", "password": PASSWORD})
    assert response.status_code == 302 and "confirm-email" in response["Location"]
    assert client.get("/account/profile").status_code == 302  # still anonymous
    assert mailoutbox and mailoutbox[0].to == ["lazy@uni.example"]


def test_sign_in_with_username_or_email(client):
    make_user("ann", "ann@uni.example")
    for login in ("ann", "ann@uni.example"):
        c = Client()
        assert c.post("/accounts/login/", {"login": login, "password": PASSWORD}).status_code == 302
        assert c.get("/account/profile").status_code == 200


@pytest.mark.parametrize(
    "data",
    [
        {"email": "not-an-email", "username": "x1", "password1": PASSWORD, "password2": PASSWORD},
        {"email": "a@b.example", "username": "x 2<script>", "password1": PASSWORD, "password2": PASSWORD},
        {"email": "a@b.example", "username": "x3", "password1": "123", "password2": "123"},
        {"email": "a@b.example", "username": "admin", "password1": PASSWORD, "password2": PASSWORD},
    ],
)
def test_bad_sign_ups_are_refused(client, mailoutbox, data):
    response = client.post("/accounts/signup/", data)
    assert response.status_code == 200  # the form again, with its errors
    assert not mailoutbox


def test_signing_up_with_a_taken_address_reveals_nothing(client, mailoutbox, django_user_model):
    make_user("first", "taken@uni.example")
    data = {"email": "taken@uni.example", "username": "second", "password1": PASSWORD, "password2": PASSWORD}
    response = client.post("/accounts/signup/", data)
    assert response.status_code == 302  # looks like any sign-up: nobody learns the address has an account
    assert not django_user_model.objects.filter(username="second").exists()
    assert mailoutbox[0].to == ["taken@uni.example"]  # the owner is told instead


def test_password_reset_sends_a_link(client, mailoutbox):
    make_user("ann", "ann@uni.example")
    client.post("/accounts/password/reset/", {"email": "ann@uni.example"})
    assert mailoutbox and "/accounts/password/reset/key/" in mailoutbox[0].body


def test_sign_up_closed(client, settings):
    settings.SIGNUP_OPEN = False
    response = client.get("/accounts/signup/")
    assert "closed" in response.content.decode().lower()


def test_account_pages_use_the_site_layout(client):
    body = client.get("/accounts/login/").content.decode()
    assert 'class="skip"' in body and "assay.css" in body and 'name="login"' in body


def test_console_backend_prints_the_verification_link(client, settings, capsys):
    settings.EMAIL_BACKEND = CONSOLE
    client.post(
        "/accounts/signup/",
        {"email": "demo@uni.example", "username": "demo1", "password1": PASSWORD, "password2": PASSWORD},
    )
    out = capsys.readouterr().out
    assert re.search(r"E-mail verification link for demo@uni.example: http://testserver/accounts/confirm-email/", out)


# --- profile -----------------------------------------------------------------------------------------


def test_profile_saves_and_reports_what_is_missing():
    ann = make_user("ann", "ann@uni.example")
    c = client_for(ann)
    assert "city" in c.get("/account/profile").content.decode()
    response = c.post(
        "/account/profile",
        {"first_name": "Ann", "last_name": "Lee", "affiliation": "Uni", "address_street": "1 Road",
         "address_city": "Town", "address_state": "State", "address_country": "Land",
         "github_url": "https://github.com/ann"},
    )  # fmt: skip
    assert response.status_code == 302
    ann.refresh_from_db()
    assert ann.first_name == "Ann" and ann.profile.is_complete


@pytest.mark.parametrize(
    "data", [{"github_url": "javascript:alert(1)"}, {"affiliation": "x" * 201}, {"address_city": "a\x00b"}]
)
def test_profile_refuses_bad_values(data):
    ann = make_user("ann", "ann@uni.example")
    response = client_for(ann).post("/account/profile", data)
    assert response.status_code == 400
    assert Profile.objects.get(user=ann).affiliation == ""


def test_profile_needs_login(client):
    assert client.get("/account/profile").status_code == 302


# --- API tokens --------------------------------------------------------------------------------------


def test_tokens_are_shown_once_and_revocable():
    ann = make_user("ann", "ann@uni.example")
    c = client_for(ann)
    response = c.post("/account/tokens", {"name": "laptop", "days": "30"})
    token = response.context["new_token"]
    assert token in response.content.decode()
    assert token not in c.get("/account/tokens").content.decode()
    row = ApiToken.objects.get(user=ann)
    assert row.token_hash != token and row.expires_at is not None
    c.post(f"/account/tokens/{row.pk}/revoke")
    row.refresh_from_db()
    assert row.revoked_at is not None


def test_nobody_revokes_anothers_token():
    ann, ben = make_user("ann", "ann@uni.example"), make_user("ben", "ben@uni.example")
    client_for(ann).post("/account/tokens", {"name": "laptop", "days": "0"})
    row = ApiToken.objects.get(user=ann)
    assert row.expires_at is None
    assert client_for(ben).post(f"/account/tokens/{row.pk}/revoke").status_code == 404
    row.refresh_from_db()
    assert row.revoked_at is None


@pytest.mark.parametrize("data", [{"name": "", "days": "30"}, {"name": "x", "days": "9999"}, {"name": "x" * 101}])
def test_bad_token_requests(data):
    ann = make_user("ann", "ann@uni.example")
    assert client_for(ann).post("/account/tokens", data).status_code == 400
    assert not ApiToken.objects.exists()


# --- team pages --------------------------------------------------------------------------------------


def test_create_team_invite_and_accept_through_the_pages(mailoutbox):
    ann, ben = make_user("ann", "ann@uni.example"), make_user("ben", "ben@uni.example")
    c = client_for(ann)
    response = c.post("/teams/", {"name": "Team Ann"})
    team = ParticipantTeam.objects.get(name="Team Ann")
    assert response["Location"] == f"/teams/{team.pk}/"
    c.post(f"/teams/{team.pk}/", {"email": "ben@uni.example"})
    link = re.search(r"https?://\S+/invitations/\S+", mailoutbox[0].body).group(0)
    path = re.sub(r"^https?://[^/]+", "", link)
    assert "Sign in" in Client().get(path).content.decode()  # anonymous: asked to sign in
    carl = make_user("carl", "carl@uni.example")
    body = client_for(carl).get(path).content.decode()
    assert "without ben@uni.example" in body
    assert client_for(carl).post(path, {"answer": "accept"}).status_code == 200  # refused, shown on the page
    b = client_for(ben)
    assert "Accept and join" in b.get(path).content.decode()
    assert b.post(path, {"answer": "accept"}).status_code == 302
    assert team.members.filter(pk=ben.pk).exists() and not team.members.filter(pk=carl.pk).exists()
    assert "accepted" in b.get(path).content.decode()


def test_team_pages_are_managed_by_members(client):
    """Anyone reads a team's public page; only its members see its management and invite (issue 17)."""
    ann, ben = make_user("ann", "ann@uni.example"), make_user("ben", "ben@uni.example")
    client_for(ann).post("/teams/", {"name": "Team Ann"})
    team = ParticipantTeam.objects.get()
    public = client_for(ben).get(f"/teams/{team.pk}/")
    assert public.status_code == 200 and b"Invite someone" not in public.content and b"ann@uni" not in public.content
    assert client_for(ben).post(f"/teams/{team.pk}/", {"email": "x@y.example"}).status_code == 404
    assert client.get(f"/teams/{team.pk}/").status_code == 200
    assert client.post(f"/teams/{team.pk}/", {"email": "x@y.example"}).status_code == 302  # to sign in
    assert not TeamInvitation.objects.exists()


@pytest.mark.parametrize("email", ["", "nope", "a@b", "<script>@x.example"])
def test_bad_invitation_addresses(email, mailoutbox):
    ann = make_user("ann", "ann@uni.example")
    client_for(ann).post("/teams/", {"name": "Team Ann"})
    team = ParticipantTeam.objects.get()
    assert client_for(ann).post(f"/teams/{team.pk}/", {"email": email}).status_code == 400
    assert not mailoutbox and not TeamInvitation.objects.exists()


def test_revoke_and_leave_through_the_pages():
    ann, ben = make_user("ann", "ann@uni.example"), make_user("ben", "ben@uni.example")
    c = client_for(ann)
    c.post("/teams/", {"name": "Team Ann"})
    team = ParticipantTeam.objects.get()
    c.post(f"/teams/{team.pk}/", {"email": "ben@uni.example"})
    invitation = TeamInvitation.objects.get()
    assert client_for(ben).post(f"/invitations/{invitation.pk}/revoke").status_code == 404
    c.post(f"/invitations/{invitation.pk}/revoke")
    assert TeamInvitation.objects.get().status == "revoked"
    assert c.post(f"/teams/{team.pk}/members/{ann.pk}/remove/participant").status_code == 200  # asks first
    assert team.members.exists()
    assert c.post(f"/teams/{team.pk}/members/{ann.pk}/remove/participant", {"confirmed": "yes"}).status_code == 302
    assert not team.members.exists()


def test_unknown_invitation_tokens_are_404(client):
    assert client.get("/invitations/not-a-token").status_code == 404
    assert client.get("/invitations/" + "a" * 500).status_code == 404


def test_duplicate_team_name_is_shown(client):
    ann = make_user("ann", "ann@uni.example")
    client_for(ann).post("/teams/", {"name": "Team Ann"})
    response = client_for(ann).post("/teams/", {"name": "team ann"})
    assert response.status_code == 400 and "already a team" in response.content.decode()


def test_navigation_counts_open_invitations():
    ann, ben = make_user("ann", "ann@uni.example"), make_user("ben", "ben@uni.example")
    client_for(ann).post("/teams/", {"name": "Team Ann"})
    client_for(ann).post(f"/teams/{ParticipantTeam.objects.get().pk}/", {"email": "ben@uni.example"})
    assert "1 open invitation" in client_for(ben).get("/").content.decode()


# --- settings from the environment -------------------------------------------------------------------


def test_email_defaults_to_the_console():
    assert email_settings({})["EMAIL_BACKEND"] == CONSOLE


def test_email_url_forms():
    smtp = email_settings({"ASSAY_EMAIL_URL": "smtp://user%40x:p%3Ass@mail.example:2525?tls=0"})
    assert smtp["EMAIL_BACKEND"] == SMTP and smtp["EMAIL_HOST"] == "mail.example" and smtp["EMAIL_PORT"] == 2525
    assert smtp["EMAIL_HOST_USER"] == "user@x" and smtp["EMAIL_HOST_PASSWORD"] == "p:ss" and not smtp["EMAIL_USE_TLS"]
    smtps = email_settings({"ASSAY_EMAIL_URL": "smtps://mail.example"})
    assert smtps["EMAIL_USE_SSL"] and smtps["EMAIL_PORT"] == 465 and not smtps["EMAIL_USE_TLS"]
    assert email_settings({"ASSAY_EMAIL_URL": "file:///tmp/mail"})["EMAIL_BACKEND"] == FILE
    assert email_settings({"ASSAY_EMAIL_URL": "locmem://"})["EMAIL_BACKEND"] == LOCMEM
    env = {"ASSAY_SMTP_HOST": "mx.example", "ASSAY_SMTP_PORT": "25", "ASSAY_EMAIL_FROM": "Assay <a@x.example>"}
    plain = email_settings(env)
    assert plain["EMAIL_PORT"] == 25 and plain["EMAIL_USE_TLS"] and plain["DEFAULT_FROM_EMAIL"] == "Assay <a@x.example>"


@pytest.mark.parametrize(
    "env",
    [
        {"ASSAY_EMAIL_URL": "gopher://x"},
        {"ASSAY_EMAIL_URL": "smtp://"},
        {"ASSAY_EMAIL_URL": "smtp://h:notaport"},
        {"ASSAY_EMAIL_URL": "file://"},
        {"ASSAY_SMTP_HOST": "h", "ASSAY_SMTP_PORT": "twenty-five"},
    ],
)
def test_bad_email_settings_stop_the_server(env):
    with pytest.raises(ValueError):
        email_settings(env)


def test_oidc_providers_from_the_environment():
    env = {
        "ASSAY_OIDC_PROVIDERS": "keycloak, cognito",
        "ASSAY_OIDC_KEYCLOAK_ISSUER": "https://sso.example/realms/assay/",
        "ASSAY_OIDC_KEYCLOAK_CLIENT_ID": "assay",
        "ASSAY_OIDC_KEYCLOAK_CLIENT_SECRET": "s3cret",
        "ASSAY_OIDC_KEYCLOAK_NAME": "University SSO",
        "ASSAY_OIDC_COGNITO_ISSUER": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc",
        "ASSAY_OIDC_COGNITO_CLIENT_ID": "cid",
        "ASSAY_OIDC_COGNITO_SCOPES": "openid email",
    }
    keycloak, cognito = oidc_providers(env)
    assert keycloak["provider_id"] == "keycloak" and keycloak["name"] == "University SSO"
    assert keycloak["settings"]["server_url"] == "https://sso.example/realms/assay"
    assert cognito["settings"]["scope"] == ["openid", "email"] and cognito["secret"] == ""
    assert oidc_providers({}) == []


@pytest.mark.parametrize(
    "env",
    [
        {"ASSAY_OIDC_PROVIDERS": "Bad Id!"},
        {"ASSAY_OIDC_PROVIDERS": "kc"},
        {"ASSAY_OIDC_PROVIDERS": "kc", "ASSAY_OIDC_KC_ISSUER": "ftp://x", "ASSAY_OIDC_KC_CLIENT_ID": "c"},
    ],
)
def test_bad_oidc_settings_stop_the_server(env):
    with pytest.raises(ValueError):
        oidc_providers(env)


def test_configured_oidc_provider_appears_on_the_login_page(client, settings):
    settings.SOCIALACCOUNT_PROVIDERS = {
        "openid_connect": {
            "APPS": oidc_providers(
                {
                    "ASSAY_OIDC_PROVIDERS": "keycloak",
                    "ASSAY_OIDC_KEYCLOAK_ISSUER": "https://sso.example/realms/assay",
                    "ASSAY_OIDC_KEYCLOAK_CLIENT_ID": "assay",
                    "ASSAY_OIDC_KEYCLOAK_NAME": "University SSO",
                }
            )
        }
    }
    body = client.get("/accounts/login/").content.decode()
    assert "University SSO" in body and "/accounts/oidc/keycloak/login/" in body
