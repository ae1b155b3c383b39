"""Who is an active member of a team, and who may see a submission, are each written once
(``teams.models.active_membership``, ``ResultReader.may_view``); every face asks them.

Two checks. A member whose membership is no longer active (removed, or a row that is not ``active``) loses
the submission and the team on every face at once. And the rule is pinned: with ``active_membership`` changed
to admit nobody (the one home patched wherever it was imported), an active member loses every face too, so a
face that writes its own membership filter, or its own "may see" rule, fails this test."""

from __future__ import annotations

import sys

import pytest
from django.db.models import Q
from django.test import Client

from tests.factories import client_for, finish, upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def seen(world, users):
    """Alice's finished submission in the first challenge, and her private model."""
    from assay.server.models_zoo.services import registry
    from assay.server.submissions.services.submit import SubmissionFields, submit
    from tests.api.authz_world import code_bundle_zip

    alice = users["participant"]
    phase = world["challenge"].phases.get(codename="dev")
    sub = finish(submit(alice, phase, upload(b'{"dev-a0": 1}'), "preds.json", SubmissionFields()))
    file = code_bundle_zip()
    model = registry.register(alice, team=world["teams"]["participant"], name="mine", kind="code_bundle",
                              file=file, file_name=file.name)  # fmt: skip
    return {"sub": sub, "model": model, "team": world["teams"]["participant"], "challenge": world["challenge"]}


def faces(user, seen) -> dict[str, bool]:
    """Each face's answer to "does ``user`` count as a member of the team / see its submission"."""
    from assay.server.challenges.services.roles import participation_of
    from assay.server.models_zoo.services import access as model_access
    from assay.server.notifications.services import events
    from assay.server.submissions.services.access import can_view, can_view_logs
    from assay.server.submissions.services.result_access import TEAM, ResultReader
    from assay.server.submissions.services.statistics import challenge_statistics
    from assay.server.teams import services as teams

    sub, team, challenge, model = seen["sub"], seen["team"], seen["challenge"], seen["model"]
    reader = ResultReader(user)
    api, web = client_for(user), Client()
    web.force_login(user)
    evalai = client_for(user)
    host = sub.phase.challenge.host_team.memberships.first().user
    return {
        "access.can_view": can_view(user, sub),
        "access.can_view_logs": can_view_logs(user, sub),
        "ResultReader.may_view": reader.may_view(sub),
        "ResultReader.may_read_logs": reader.may_read_logs(sub),
        "ResultReader.threshold": reader.threshold(sub) == TEAM,
        "teams.is_member": teams.is_member(user, team),
        "teams.participant_teams_of": teams.participant_teams_of(user).filter(pk=team.pk).exists(),
        "teams.active_members": teams.active_members(team).filter(pk=user.pk).exists(),
        "roles.participation_of": participation_of(user, challenge) is not None,
        "models_zoo.can_view": model_access.can_view(user, model),
        "models_zoo.visible_models": model_access.visible_models(user).filter(pk=model.pk).exists(),
        "statistics.participants": challenge_statistics(host, challenge).participants > 1,
        "GET /api/v1/submissions/N": api.get(f"/api/v1/submissions/{sub.pk}").status_code == 200,
        "GET /api/v1/submissions/N/stdout": api.get(f"/api/v1/submissions/{sub.pk}/stdout").status_code == 200,
        "GET /api/v1/challenges?role=participant": any(
            c["id"] == challenge.pk for c in api.get("/api/v1/challenges?role=participant").json()["results"]
        ),
        "GET /api/jobs/submission/N (EvalAI)": evalai.get(f"/api/jobs/submission/{sub.pk}/").status_code == 200,
        "GET /api/jobs/submission_files (EvalAI)": evalai.get(
            "/api/jobs/submission_files/", {"bucket": "b", "key": sub.stdout_file.name}
        ).status_code
        == 200,
        "web submission file": web.get(f"/submissions/{sub.pk}/files/stdout").status_code == 200,
        "notifications: result e-mail recipients": user in events._subscribers({team.pk}).get(team.pk, []),
        "notifications: approval e-mail recipients": user in events._members(team.pk),
    }


def test_an_active_member_sees_everything_here(seen, users):
    """The baseline the two tests below take away: every face answers yes for alice."""
    answers = faces(users["participant"], seen)
    assert all(answers.values()), [face for face, yes in answers.items() if not yes]


@pytest.mark.parametrize("how", ["removed", "not_active"])
def test_a_member_who_is_no_longer_active_loses_every_face(seen, users, how):
    from assay.server.teams.models import ParticipantTeamMember

    membership = ParticipantTeamMember.objects.filter(team=seen["team"], user=users["participant"])
    if how == "removed":
        membership.delete()
    else:
        membership.update(status=ParticipantTeamMember.Status.INVITED)
    answers = faces(users["participant"], seen)
    assert not any(answers.values()), [face for face, yes in answers.items() if yes]


def test_every_face_asks_the_one_rule(seen, users, monkeypatch):
    """``active_membership`` patched to admit nobody, everywhere it was imported: alice, an active member in the
    data, must lose every face. A face that kept its own copy of the filter (or of may-see) still says yes."""
    from assay.server.challenges.services import roles
    from assay.server.notifications.services import events
    from assay.server.submissions.services import result_access
    from assay.server.teams import models

    real = models.active_membership

    def nobody(via: str = "", **same_row) -> Q:
        return real(via, **same_row) & Q(**{f"{via}status": "no-such-status"})

    patched = [
        name
        for name, module in list(sys.modules.items())
        if name.startswith("assay.") and getattr(module, "active_membership", None) is real
    ]
    assert "assay.server.teams.services" in patched
    for name in patched:
        monkeypatch.setattr(sys.modules[name], "active_membership", nobody)
    monkeypatch.setattr(result_access, "_QUERIES", {})  # compiled queries: built again with the patched rule
    monkeypatch.setattr(roles, "_PARTICIPATION", {})
    monkeypatch.setattr(events, "_SUBSCRIBERS", {})
    answers = faces(users["participant"], seen)
    assert not any(answers.values()), [face for face, yes in answers.items() if yes]
