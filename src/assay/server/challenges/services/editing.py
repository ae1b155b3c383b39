"""A host edits a challenge's texts and dates, and its phases, on the web or /api/v1 — no new bundle needed.

The values are checked by the bundle's own models and rules (:mod:`assay.bundle.model`,
:mod:`assay.bundle.rules`): the row as it is, overlaid with the edit, is validated as the bundle's
``Phase`` (or the challenge's fields of ``ChallengeConfig``), so a value a bundle may not hold cannot
come in this way either. What would break existing results (removing a phase's leaderboard that has
entries) is refused by the import's own refusal. Saves go through ``Model.save``, whose signals replace
the cached reads (:mod:`.read_versions`) and empty the phase rules' cache (:mod:`.phase_rules`).

HTML texts are stored as the bundle's are (as written) and cleaned by the allow-list at display.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction
from pydantic import ValidationError, create_model

from assay.bundle import rules
from assay.bundle.model import ChallengeConfig, Phase
from assay.bundle.rules import Findings
from assay.bundle.yamlsafe import LineMap

from ..models import Challenge, ChallengePhase, ChallengePhaseSplit
from .bundle_import import refuse_removing_phase_split
from .hosting import HostingError, require_host
from .read_versions import challenge_updated

#: What a host may change here; the rest (codenames, files, splits' wiring) stays the bundle's.
CHALLENGE_FIELDS = ("title", "short_description", "start_date", "end_date")
HTML_FIELDS = ("description", "evaluation_details", "terms_and_conditions", "submission_guidelines")
CHALLENGE_EDITABLE = (*CHALLENGE_FIELDS, *HTML_FIELDS)
PHASE_EDITABLE = (
    "name", "description", "start_date", "end_date", "max_submissions_per_day", "max_submissions_per_month",
    "max_submissions", "is_public", "leaderboard_public", "is_submission_public", "allowed_submission_file_types",
)  # fmt: skip
# the phase's other columns the bundle's Phase model checks, read from the row so rules across keys hold
_PHASE_CHECKED = (
    "max_concurrent_submissions_allowed", "allowed_email_ids", "is_restricted_to_select_one_submission",
    "disable_logs", "is_submission_paused", "count_failed_submissions",
)  # fmt: skip

_CONFIG_FIELDS = ChallengeConfig.model_fields
_ChallengeFields = create_model(
    "ChallengeFields",
    __base__=Phase.__base__,  # the bundle's base model: unknown keys refused, strict as a bundle is
    **{name: (_CONFIG_FIELDS[name].annotation, _CONFIG_FIELDS[name]) for name in CHALLENGE_FIELDS},
)


class EditRefused(HostingError):
    """An edit of a challenge or phase that the bundle's rules refuse; ``problems``: every reason, by key."""


def _problems(exc: ValidationError) -> list[str]:
    found = Findings(LineMap(), "")
    found.from_validation_error(exc)
    return [f"{p.key}: {p.message}" if p.key else p.message for p in found.problems]


def _refuse(problems: list[str]) -> None:
    if problems:
        raise EditRefused("invalid", "; ".join(problems), 400, problems=problems)


def _only(values: dict[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise EditRefused(
            "not_editable",
            f"these cannot be changed here: {', '.join(unknown)} (a new bundle changes them)",
            400,
            problems=[f"{name}: not editable here" for name in unknown],
        )


def _html_problems(values: dict[str, Any], names: tuple[str, ...]) -> list[str]:
    """HTML texts as a bundle may hold them: text, within the bundle reader's limit of a text file."""
    limit = settings.BUNDLE_LIMITS.max_text_bytes
    problems = []
    for name in names:
        if name not in values:
            continue
        value = values[name]
        if value is None:
            value = values[name] = ""
        if not isinstance(value, str):
            problems.append(f"{name}: must be text (HTML)")
        elif "\x00" in value:
            problems.append(f"{name}: null characters are not allowed")
        elif len(value.encode("utf-8")) > limit:
            problems.append(f"{name}: {len(value.encode('utf-8'))} bytes; the limit is {limit}")
    return problems


def check_challenge(challenge: Challenge, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` checked as a bundle's would be, over the challenge as it is; the normalised values."""
    problems = _html_problems(values, HTML_FIELDS)
    current = {name: getattr(challenge, name) for name in CHALLENGE_FIELDS}
    given = {name: values[name] for name in CHALLENGE_FIELDS if name in values}
    try:
        checked = _ChallengeFields.model_validate({**current, **given})
    except ValidationError as exc:
        _refuse(problems + _problems(exc))
        raise AssertionError("unreachable") from None
    found = Findings(LineMap(), "")
    rules.challenge_dates(checked.start_date, checked.end_date, found)
    problems += [f"{p.key}: {p.message}" for p in found.problems]
    _refuse(problems)
    out = {name: getattr(checked, name) for name in given}
    if "short_description" in out and out["short_description"] is None:
        out["short_description"] = ""
    out.update({name: values[name] for name in HTML_FIELDS if name in values})
    return out


def check_phase(phase: ChallengePhase, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` checked as the bundle's ``Phase`` with the phase's other settings; the normalised values."""
    problems = _html_problems(values, ("description",))
    current = {name: getattr(phase, name) for name in (*PHASE_EDITABLE, *_PHASE_CHECKED)}
    current.update(id=phase.config_id, codename=phase.codename)
    given = {name: values[name] for name in values if name != "description"}
    try:
        checked = Phase.model_validate({**current, **given, "description": ""})
    except ValidationError as exc:
        _refuse(problems + [p.replace("challenge_phases.", "") for p in _problems(exc)])
        raise AssertionError("unreachable") from None
    found = Findings(LineMap(), "")
    rules.phase_alone(checked, found, ())
    problems += [f"{p.key}: {p.message}" for p in found.problems]
    _refuse(problems)
    out = {name: getattr(checked, name) for name in given}
    if "max_submissions_per_month" in out:
        out["max_submissions_per_month"] = checked.effective_max_per_month
    if "description" in values:
        out["description"] = values["description"]
    return out


def _save(obj, values: dict[str, Any], extra: tuple[str, ...] = ()) -> list[str]:
    changed = [name for name, value in values.items() if getattr(obj, name) != value]
    for name in changed:
        setattr(obj, name, values[name])
    if changed:
        obj.save(update_fields=[*changed, *extra])  # post_save: cached reads and phase rules replaced
    return changed


@transaction.atomic
def edit_challenge(user, challenge: Challenge, values: dict[str, Any]) -> list[str]:
    """Change the challenge's title, texts and dates; returns the names of those that changed."""
    require_host(user, challenge)
    _only(values, CHALLENGE_EDITABLE)
    challenge = Challenge.objects.select_for_update().get(pk=challenge.pk)
    return _save(challenge, check_challenge(challenge, values), ("updated_at",))


@transaction.atomic
def edit_phase(user, phase: ChallengePhase, values: dict[str, Any]) -> list[str]:
    """Change a phase's name, description, dates, limits, visibility defaults and file types."""
    require_host(user, phase.challenge)
    _only(values, PHASE_EDITABLE)
    phase = ChallengePhase.objects.select_for_update().select_related("challenge").get(pk=phase.pk)
    changed = _save(phase, check_phase(phase, values))
    if changed:
        challenge_updated(phase.challenge_id)  # the challenge's pages list its phases' names and dates
    return changed


@transaction.atomic
def remove_phase_split(user, ps: ChallengePhaseSplit) -> None:
    """Take a leaderboard out of a phase; refused once it has results (the bundle import's own rule)."""
    require_host(user, ps.phase.challenge)
    refuse_removing_phase_split(ps)
    ps.delete()
