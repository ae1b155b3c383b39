"""Single sign-on through a real OpenID Connect provider (Authlib's, :mod:`tests.oidc_provider`) on loopback, in
Chromium: the first sign-in creates the account with the provider's verified e-mail, the next one finds the same
account, and an unverified e-mail or an ID token with a wrong signature, issuer, audience or nonce is refused with the
reason on the page and no account made."""

from __future__ import annotations

import pytest

from assay.server.accounts.config import oidc_providers
from assay.server.accounts.oidc import REASONS
from tests.oidc_provider import TAMPERS, Person, Provider

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CLIENT_ID, SECRET, NAME = "assay-web", "a-client-secret-for-the-test", "Test IdP"


@pytest.fixture
def idp(live_server, settings):
    """The provider, and Assay configured for it as an operator would (``ASSAY_OIDC_*``)."""
    provider = Provider(CLIENT_ID, SECRET, f"{live_server.url}/accounts/oidc/testidp/login/callback/")
    env = {
        "ASSAY_OIDC_PROVIDERS": "testidp",
        "ASSAY_OIDC_TESTIDP_ISSUER": provider.issuer,
        "ASSAY_OIDC_TESTIDP_CLIENT_ID": CLIENT_ID,
        "ASSAY_OIDC_TESTIDP_CLIENT_SECRET": SECRET,
        "ASSAY_OIDC_TESTIDP_NAME": NAME,
    }
    settings.SOCIALACCOUNT_PROVIDERS = {"openid_connect": {"APPS": oidc_providers(env)}}
    yield provider
    provider.stop()


def _sign_in(page) -> None:
    """From Assay's sign-in page through the provider's page and back."""
    page.goto("/accounts/login/")
    page.click(f"a:has-text('{NAME}')")
    page.click("form button[type=submit]")  # allauth asks before leaving the site
    page.wait_for_url("**/authorize?**")
    page.click("button:has-text('Continue')")
    page.wait_for_load_state()


def test_first_sign_in_creates_the_account_and_the_next_finds_it(new_page, idp):
    from allauth.account.models import EmailAddress
    from allauth.socialaccount.models import SocialAccount
    from django.contrib.auth import get_user_model

    idp.person = Person(sub="u-1001", email="carol@hospital.example", name="Carol Chen", preferred_username="carol")
    page = new_page()
    _sign_in(page)
    page.wait_for_selector("summary:has-text('carol')")
    user = get_user_model().objects.get(username="carol")
    assert user.email == "carol@hospital.example"
    assert EmailAddress.objects.get(user=user).verified  # the provider vouched for it: no e-mail to click
    assert SocialAccount.objects.get(user=user).uid == "u-1001"

    page.context.clear_cookies()  # signed out; the same person signs in again, under a new address even
    idp.person = Person(sub="u-1001", email="c.chen@hospital.example", preferred_username="cchen")
    _sign_in(page)
    page.wait_for_selector("summary:has-text('carol')")
    assert get_user_model().objects.count() == 1 and SocialAccount.objects.count() == 1


def test_unverified_e_mail_and_bad_tokens_are_refused_with_the_reason(new_page, idp):
    from django.contrib.auth import get_user_model

    page = new_page()
    idp.person = Person(sub="u-2002", email="mallory@example.org", email_verified=False, preferred_username="mal")
    _sign_in(page)
    message = page.inner_text("#sso-error")
    assert "has not verified the e-mail address mallory@example.org" in message
    assert "Sign-in with Test IdP failed" in page.inner_text("h1")

    idp.person = Person(sub="u-3003", email="dan@hospital.example", preferred_username="dan")
    for tamper in TAMPERS:
        idp.tamper = tamper
        _sign_in(page)
        assert page.inner_text("#sso-error") == f"Test IdP's answer was refused: {REASONS[tamper]}.", tamper
    assert not get_user_model().objects.exists()
    assert page.locator("a:has-text('Back to sign-in')").count() == 1
