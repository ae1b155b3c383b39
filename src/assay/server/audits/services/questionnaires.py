"""Storing the questionnaire a challenge's bundle brings, one ``audits.Questionnaire`` row per version.

Teams' answers point at the version they answered, so a published version never changes: a bundle that
brings different questions under a version already stored is refused, naming the version (hosts bump
it). The same version with the same questions (any YAML layout: the hash is of a canonical form) is a
no-op, so re-importing an unchanged bundle changes nothing. The challenge's current questionnaire is the
newest version; going back to an older one is refused too, since it would not become current.
"""

from __future__ import annotations

from typing import Any

from assay.bundle.questionnaire import Questionnaire as QuestionnaireSchema
from assay.server.challenges.models import Challenge
from assay.server.challenges.services.bundle_import import ImportRefused

from ..models import Questionnaire


def current_questionnaire(challenge: Challenge) -> Questionnaire | None:
    """The newest questionnaire version the challenge's bundles brought, or None."""
    return Questionnaire.objects.filter(challenge=challenge).order_by("-created_at", "-id").first()


def store_questionnaire(challenge: Challenge, schema: QuestionnaireSchema) -> tuple[Questionnaire, bool]:
    """The row of ``schema``'s version, created if new. Refuses a changed text under a stored version,
    and a version older than the current one."""
    digest = schema.sha256()
    current = current_questionnaire(challenge)
    stored = Questionnaire.objects.filter(challenge=challenge, version=schema.version).first()
    if stored is not None and stored.sha256 != digest:
        raise ImportRefused(
            "questionnaire_version_exists",
            f"questionnaire version {schema.version!r} is already published with different content, and a"
            " published version cannot change (teams' answers refer to it): give the changed questionnaire"
            " a new version",
        )
    if stored is not None and current is not None and stored.pk != current.pk:
        raise ImportRefused(
            "questionnaire_version_outdated",
            f"questionnaire version {schema.version!r} is older than the current version"
            f" {current.version!r}: publish it again under a new version to make it current",
        )
    if stored is not None:
        return stored, False
    row = Questionnaire.objects.create(
        challenge=challenge, version=schema.version, schema=schema.as_json(), sha256=digest
    )
    return row, True


def on_bundle_imported(sender: Any, *, challenge: Challenge, bundle: Any, changes: list[str] | None = None,
                       **kwargs: Any) -> None:  # fmt: skip
    """Receiver of ``challenges.signals.bundle_imported``: keep the bundle's questionnaire, if it has one."""
    schema = getattr(bundle, "questionnaire", None)
    if schema is None:
        return
    _, created = store_questionnaire(challenge, schema)
    if created and changes is not None:
        changes.append(f"added questionnaire {schema.id!r} version {schema.version!r} ({schema.sha256()[:12]})")
