"""The demo platform: users admin/host/participant, a host team, a participant team and a challenge."""

from __future__ import annotations

from collections.abc import Iterator

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from assay.bundle import read_bundle

from .challenges.models import Challenge, Participation
from .challenges.services.bundle_import import import_bundle
from .teams.models import HostTeam, ParticipantTeam, ParticipantTeamMember
from .teams.services import create_host_team

DEMO_HOST_TEAM = "Demo hosts"
DEMO_PARTICIPANT_TEAM = "Demo participants"


def _user(username: str, password: str, **extra):
    User = get_user_model()
    user, _ = User.objects.get_or_create(username=username, defaults={"email": f"{username}@example.org"})
    for key, value in extra.items():
        setattr(user, key, value)
    user.set_password(password)
    user.save()
    # Demo users sign in through the normal login page, which wants a verified e-mail address.
    from allauth.account.models import EmailAddress

    EmailAddress.objects.update_or_create(user=user, email=user.email, defaults={"verified": True, "primary": True})
    return user


def seed(password: str, bundle_path: str) -> Iterator[str]:
    """Idempotent: run it again and it resets the demo passwords and updates the demo challenge."""
    with transaction.atomic():
        _user("admin", password, is_staff=True, is_superuser=True)
        host = _user("host", password)
        participant = _user("participant", password)
        team = HostTeam.objects.filter(name=DEMO_HOST_TEAM).first() or create_host_team(DEMO_HOST_TEAM, host)
        pteam, _ = ParticipantTeam.objects.get_or_create(
            name=DEMO_PARTICIPANT_TEAM, defaults={"created_by": participant}
        )
        ParticipantTeamMember.objects.get_or_create(team=pteam, user=participant)
    yield (f"Demo users: admin, host, participant — password {password!r} (set ASSAY_DEMO_PASSWORD to change it)")
    existing = Challenge.objects.filter(host_team=team).order_by("pk").first()
    with read_bundle(bundle_path, limits=settings.BUNDLE_LIMITS) as bundle:
        report = import_bundle(bundle, host_team=team, user=host, challenge=existing)
    challenge = report.challenge
    Challenge.objects.filter(pk=challenge.pk).update(approved_by_admin=True, published=True)
    Participation.objects.get_or_create(
        challenge=challenge, team=pteam, defaults={"status": Participation.Status.APPROVED}
    )
    yield f"Demo challenge {challenge.title!r} (id {challenge.pk}) imported from {bundle_path}"
    if settings.EMAIL_BACKEND.endswith("console.EmailBackend"):
        yield (
            "E-mail goes to this log (console backend): sign up at /accounts/signup/ and open the"
            " 'E-mail verification link' printed here"
        )
