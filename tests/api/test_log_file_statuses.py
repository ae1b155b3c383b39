"""A submission's logs answer every reader alike on every face: the web page's current-evaluation file
(``/submissions/N/files/KIND``), the web page of an evaluation's file, /api/v1's ``stdout``/``stderr`` and its
evaluation file. The rule is ``ResultReader.may_view`` (who sees the submission; anyone else: 404, as a missing id)
and ``may_read_logs`` (hosts always; the team unless the phase hides logs: 403, since the team may see the
submission and is told why). The web's current file once answered the hidden-logs team 404 where the rest said 403.
"""

from __future__ import annotations

import pytest
from django.test import Client

from tests.factories import client_for, finish, make_user, upload

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "outsider", "participant", "other_participant", "host", "other_host", "admin")
#: (logs shown, logs hidden) per role; anonymous: the web asks to sign in (302), the API says 401
WEB = {"anonymous": (302, 302), "participant": (200, 403), "host": (200, 200), "admin": (200, 200)}
API = {"anonymous": (401, 401), "participant": (200, 403), "host": (200, 200), "admin": (200, 200)}
NOT_SEEN = (404, 404)  # outsider, the other team, another challenge's host


@pytest.fixture
def logged(world, users):
    """Alice's dev-phase submission, evaluated with "out" on stdout."""
    from assay.server.submissions.services.submit import SubmissionFields, submit

    phase = world["challenge"].phases.get(codename="dev")
    sub = submit(users["participant"], phase, upload(), "preds.json", SubmissionFields())
    done = finish(sub)
    assert done.status == "finished" and done.stdout_file
    return done


def _reader(users, role: str):
    if role == "anonymous":
        return None
    if role == "outsider":
        return make_user("carol")
    return users[role]


def _web(user) -> Client:
    web = Client()
    if user is not None:
        web.force_login(user)
    return web


def _statuses(user, sub, kind: str) -> dict[str, int]:
    web, api = _web(user), client_for(user)
    return {
        "web file": web.get(f"/submissions/{sub.pk}/files/{kind}").status_code,
        "web evaluation file": web.get(f"/submissions/{sub.pk}/evaluations/1/files/{kind}").status_code,
        "api": api.get(f"/api/v1/submissions/{sub.pk}/{kind}").status_code,
        "api evaluation file": api.get(f"/api/v1/submissions/{sub.pk}/evaluations/1/files/{kind}").status_code,
    }


@pytest.mark.parametrize("hidden", [False, True], ids=["logs shown", "logs hidden"])
@pytest.mark.parametrize("role", ROLES)
def test_every_face_answers_each_reader_the_same(logged, users, role, hidden):
    from assay.server.challenges.models import ChallengePhase

    if hidden:
        ChallengePhase.objects.filter(pk=logged.phase_id).update(disable_logs=True)
    user = _reader(users, role)
    web, api = WEB.get(role, NOT_SEEN)[hidden], API.get(role, NOT_SEEN)[hidden]
    expected = {"web file": web, "web evaluation file": web, "api": api, "api evaluation file": api}
    for kind in ("stdout", "stderr"):
        assert _statuses(user, logged, kind) == expected, kind


def test_the_hidden_logs_page_says_why(logged, users):
    from assay.server.challenges.models import ChallengePhase

    ChallengePhase.objects.filter(pk=logged.phase_id).update(disable_logs=True)
    page = _web(users["participant"]).get(f"/submissions/{logged.pk}/files/stdout")
    assert page.status_code == 403 and "the host has disabled logs for this phase" in page.content.decode()


def test_the_team_reads_its_log_on_the_web_page(logged, users):
    response = _web(users["participant"]).get(f"/submissions/{logged.pk}/files/stdout")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    assert b"".join(response.streaming_content) == b"out"
