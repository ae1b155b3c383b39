"""What hosts do to their challenges from the web: upload bundles, edit settings, pause, export participants.

What hosts do to the submissions (list, re-run, mark, export) is :mod:`assay.server.submissions.services.hosting`.

Every function checks that the user hosts the challenge (or, for a new challenge, belongs to the host
team) before anything else; the web views only translate forms to these calls.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from django.conf import settings

from assay.bundle import BundleError, Problem, read_bundle
from assay.server.refusals import Refusal
from assay.server.spreadsheet import safe_text
from assay.server.teams.models import HostTeam
from assay.server.teams.services import ActiveMembersOf

from ..models import Challenge, ChallengePhase, ChallengePhaseSplit
from .bundle_import import ImportReport, config_text_and_digest, import_bundle
from .read_versions import challenge_updated
from .roles import is_host


class HostingError(Refusal):
    """A host's action on a challenge the rules refuse."""


def require_host(user, challenge: Challenge) -> None:
    if not is_host(user, challenge):
        raise HostingError("forbidden", "only the challenge's hosts may do this", 403)


# --- bundles -----------------------------------------------------------------------------------------

BUNDLE_SUFFIXES = (".zip", ".yaml", ".yml")


def upload_bundle(
    user, upload, *, host_team: HostTeam | None = None, challenge: Challenge | None = None
) -> ImportReport:
    """Validate and import an uploaded bundle (zip, or a lone config for a check only).

    Raises :class:`BundleError` (every problem with file, line and key), :class:`ImportRefused` (valid
    but not applicable, with the reason) or :class:`HostingError` (not allowed, not a bundle).
    """
    if challenge is not None:
        require_host(user, challenge)
        host_team = challenge.host_team
    if host_team is None:
        raise HostingError("host_team_required", "choose the host team the challenge belongs to")
    if not (user.is_staff or host_team.memberships.filter(user=user).exists()):
        raise HostingError("forbidden", "you are not a member of that host team", 403)
    name = Path(getattr(upload, "name", "") or "bundle.zip").name
    suffix = Path(name).suffix.lower()
    if suffix not in BUNDLE_SUFFIXES:
        raise BundleError.single(
            "not_a_bundle",
            f"{name!r} is not a bundle: upload a .zip (or a challenge_config.yaml to check it)",
            file=name,
        )
    size = getattr(upload, "size", None)
    if size is not None and size > settings.BUNDLE_LIMITS.max_total_bytes:
        raise BundleError.single("too_large", f"the upload is {size} bytes; the limit is "
                                 f"{settings.BUNDLE_LIMITS.max_total_bytes}", file=name)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="assay-bundle-") as tmp:
        path = Path(tmp) / ("upload" + suffix)
        with open(path, "wb") as fh:
            for chunk in upload.chunks():
                fh.write(chunk)
        with read_bundle(str(path), limits=settings.BUNDLE_LIMITS, name=name) as bundle:  # problems name the upload
            config_text, digest = config_text_and_digest(str(path))
            if not config_text and bundle.config_only:
                config_text = path.read_text(encoding="utf-8-sig", errors="replace")
            return import_bundle(
                bundle,
                host_team=host_team,
                user=user,
                challenge=challenge,
                config_text=config_text,
                bundle_sha256=digest,
            )


def describe_problems(problems: Iterable[Problem]) -> list[dict[str, Any]]:
    """Problems as rows for a page: file, line, key, message, code, severity."""
    return [
        {
            "file": p.file,
            "line": p.line,
            "key": p.key,
            "message": p.message,
            "code": p.code,
            "severity": p.severity,
        }
        for p in problems
    ]


# --- settings ----------------------------------------------------------------------------------------

CHALLENGE_EDITABLE = (
    "short_description", "end_date", "is_registration_open", "manual_participant_approval", "invite_only",
    "require_complete_profile", "max_team_members", "allowed_email_domains", "blocked_email_domains",
    "banned_email_ids", "leaderboard_description", "forum_url", "allow_host_cancel_submissions",
    "allow_cancel_running_submissions", "allow_participants_resubmissions", "is_submission_paused", "published",
)  # fmt: skip
PHASE_EDITABLE = (
    "start_date", "end_date", "is_public", "leaderboard_public", "is_submission_public", "is_submission_paused",
    "max_submissions_per_day", "max_submissions_per_month", "max_submissions", "max_concurrent_submissions_allowed",
    "count_failed_submissions", "allowed_email_ids", "disable_logs", "is_restricted_to_select_one_submission",
    "submission_artifact_retention_policy",
)  # fmt: skip
PHASE_SPLIT_EDITABLE = (
    "visibility", "leaderboard_decimal_precision", "is_leaderboard_order_descending",
    "show_leaderboard_by_latest_submission", "show_execution_time", "show_scores_on_leaderboard",
)  # fmt: skip


def _apply(obj, allowed: tuple[str, ...], values: dict[str, Any]) -> list[str]:
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise HostingError("not_editable", f"these settings cannot be changed here: {', '.join(unknown)}")
    changed = [k for k, v in values.items() if getattr(obj, k) != v]
    for key in changed:
        setattr(obj, key, values[key])
    return changed


def update_challenge(user, challenge: Challenge, values: dict[str, Any]) -> list[str]:
    """Change host-editable settings; returns the names of those that changed."""
    require_host(user, challenge)
    from .editing import check_challenge  # the bundle's rules for the dates, as the editor of texts runs them

    values = {**values, **check_challenge(challenge, values)}
    changed = _apply(challenge, CHALLENGE_EDITABLE, values)
    if changed:
        challenge.save(update_fields=[*changed, "updated_at"])
    return changed


def update_phase(user, phase: ChallengePhase, values: dict[str, Any]) -> list[str]:
    require_host(user, phase.challenge)
    from .editing import check_phase  # the bundle's Phase model and rules, as the phase editor runs them

    values = {**values, **check_phase(phase, values)}
    changed = _apply(phase, PHASE_EDITABLE, values)
    if changed:
        phase.save(update_fields=changed)
    return changed


def update_phase_split(user, phase_split: ChallengePhaseSplit, values: dict[str, Any]) -> list[str]:
    require_host(user, phase_split.phase.challenge)
    if "leaderboard_decimal_precision" in values and not 0 <= int(values["leaderboard_decimal_precision"]) <= 20:
        raise HostingError("bad_precision", "the decimal precision is between 0 and 20")
    changed = _apply(phase_split, PHASE_SPLIT_EDITABLE, values)
    if changed:
        phase_split.save(update_fields=changed)
    return changed


def set_paused(user, challenge: Challenge, paused: bool, phase: ChallengePhase | None = None) -> None:
    """Pause or resume submissions to the whole challenge or to one phase."""
    require_host(user, challenge)
    if phase is not None:
        if phase.challenge_id != challenge.pk:
            raise HostingError("not_found", "no such phase", 404)
        ChallengePhase.objects.filter(pk=phase.pk).update(is_submission_paused=paused)
    else:
        Challenge.objects.filter(pk=challenge.pk).update(is_submission_paused=paused)
    challenge_updated(challenge.pk)  # a queryset update sends no signal


# --- exports -----------------------------------------------------------------------------------------


def csv_rows(rows: Iterable[list[Any]]) -> Iterator[str]:
    buf = io.StringIO()
    writer = csv.writer(buf)
    for row in rows:
        writer.writerow([safe_text(v) for v in row])
        yield buf.getvalue()
        buf.seek(0)
        buf.truncate()


def participants_csv(user, challenge: Challenge) -> Iterator[str]:
    require_host(user, challenge)
    from assay.server.accounts.services import profile_of

    from .participation import participations

    members_of = ActiveMembersOf()

    def rows() -> Iterator[list[Any]]:
        yield ["team", "status", "registered_at", "terms_accepted_at", "member", "email", "name", "affiliation"]
        for p in participations(challenge):
            for m in members_of(p.team):
                yield [
                    p.team.name, p.status, p.created_at.isoformat(),
                    p.terms_accepted_at.isoformat() if p.terms_accepted_at else "", m.get_username(), m.email,
                    m.get_full_name(), profile_of(m).affiliation,
                ]  # fmt: skip

    return csv_rows(rows())
