"""A result's e-mail, as bytes: what the task runner hands the mail backend must not change when the way it is
built gets cheaper (cached links, fewer joins). The message's two varying headers (Date, Message-ID) are fixed;
everything else is the MIME message Django builds, compared byte for byte with the message as it was."""

from __future__ import annotations

import pytest
from django.core import mail

from assay.server import tasks
from tests.server.notifications.test_emails import evaluate, submit_to

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def outbox(settings, monkeypatch):
    return fixed_outbox(settings, monkeypatch)


def fixed_outbox(settings, monkeypatch) -> list:
    """Mail kept in memory, with the site's addresses and the two varying headers (Date, Message-ID) fixed."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.SITE_URL = "https://assay.example"
    settings.DEFAULT_FROM_EMAIL = "Assay <noreply@localhost>"
    monkeypatch.setattr("django.core.mail.message.formatdate", lambda *a, **k: "Thu, 03 Dec 2026 14:00:00 -0000")
    monkeypatch.setattr("django.core.mail.message.make_msgid", lambda *a, **k: "<fixed@assay.example>")
    mail.outbox = []
    return mail.outbox


BODY = (
    "Hello {user},\n"
    "\n"
    "Submission {sub} of team {team} to {title} (phase {phase}) was evaluated.\n"
    "\n"
    "Scores:\n"
    "  public: Accuracy = 0.4321, F1 = 0.5\n"
    "The scores of splits the host keeps hidden are not shown.\n"
    "\n"
    "See it: https://assay.example/challenges/{challenge}/submissions\n"
    "\n"
    "--\n"
    "You get this e-mail because you are in team {team}.\n"
    "Turn these e-mails off on your account's notifications page: https://assay.example/account/notifications\n"
)


def test_a_results_email_is_the_same_bytes_for_the_same_result(team, participant, demo_challenge, outbox):
    """The demo challenge's title has an em dash: the subject is encoded and folded, the body 8-bit."""
    sub = submit_to(participant, demo_challenge)
    evaluate(sub)
    tasks.run_due()
    assert len(outbox) == 1
    names = dict(title=demo_challenge.title, sub=sub.pk, team=team.name, phase=sub.phase.name)
    body = BODY.format(user=participant.get_username(), challenge=demo_challenge.pk, **names)
    subject = "[Assay] {title}: submission {sub} was evaluated".format(**names)
    expected = mail.EmailMultiAlternatives(subject, body, None, [participant.email]).message()
    sent = outbox[0].message()
    for linesep in ("\n", "\r\n"):  # the console and file backends' bytes; SMTP's
        assert sent.as_bytes(linesep=linesep) == expected.as_bytes(linesep=linesep)
    assert b"Content-Transfer-Encoding: 8bit\nSubject: \n =?utf-8?q?=5BAssay=5D_Assay_Demo_=E2=80=94" in sent.as_bytes()
