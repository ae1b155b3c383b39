"""Registering a model, adding versions, editing its card, publishing it.

A version's file is checked as a submission's would be, without a phase: an image tarball by its index
and config (``assay.evaluation.containers.intake``: not root, the workers' architecture), a code bundle
by its entries (``submissions.services.images.check_code_bundle``). Each phase checks it again against
its own limits when the version is submitted. A version is immutable: its file, sha256 and digest are
written once; the same file twice in one model is refused (it is already a version).
"""

from __future__ import annotations

import re
from typing import IO

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from assay.evaluation.containers.intake import ImageRefused, read_manifest
from assay.server.storage import ContentWriter, hash_stream_open
from assay.server.submissions.services import images
from assay.server.teams.models import ParticipantTeam
from assay.server.teams.services import is_member as team_member
from assay.server.teams.services import participant_teams_of

from ..models import Model, ModelVersion
from .access import ModelRefusal, is_member
from .card import clean_card, clean_text

K = Model.Kind
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}$")
LABEL_MAX, NOTES_MAX = 100, 20_000
SUFFIXES = {K.IMAGE: images.IMAGE_SUFFIXES, K.CODE_BUNDLE: (images.CODE_BUNDLE_SUFFIX,)}


def stored_by_a_version(name: str) -> bool:
    """Whether a version names this stored file (retention keeps it: submissions share versions' files)."""
    return ModelVersion.objects.filter(file=name).exists()


def team_for(user, team_id: int | None) -> ParticipantTeam:
    """The participant team a model is registered for: ``team_id``, or the user's only team."""
    teams = participant_teams_of(user)
    if team_id is None:
        found = list(teams[:2])
        if len(found) != 1:
            raise ModelRefusal("team_required", "name the team the model belongs to (you are in none or several)", 400)
        return found[0]
    team = teams.filter(pk=team_id).first()
    if team is None:
        raise ModelRefusal("forbidden", "you are not a member of that team", 403)
    return team


def register(
    user,
    *,
    team: ParticipantTeam,
    name: str,
    kind: str,
    file: IO[bytes],
    file_name: str,
    card: dict | None = None,
    label: str = "",
    notes: str = "",
) -> Model:
    """A new model of ``team`` with its first version; refused as a whole when anything is wrong."""
    if not team_member(user, team):
        raise ModelRefusal("forbidden", "you are not a member of that team", 403)
    name = clean_text("name", name, 100)
    if not NAME.match(name):
        raise ModelRefusal("invalid", "a model's name is 1-100 letters, digits, spaces, '.', '_' or '-'", 400)
    if kind not in K.values:
        raise ModelRefusal("invalid", f"kind must be one of: {', '.join(K.values)}", 400)
    fields = clean_card(card)
    if Model.objects.filter(team=team, name=name).exists():
        raise ModelRefusal("conflict", f"your team already has a model named {name!r}", 409)
    label, notes = clean_text("label", label, LABEL_MAX), clean_text("notes", notes, NOTES_MAX)
    checked = _check_file(kind, file, file_name)
    writer = ContentWriter()
    try:
        stored = _store(writer, file, checked)  # before the transaction: a large copy holds no lock
        with transaction.atomic():
            model = Model.objects.create(team=team, name=name, kind=kind, created_by=user, **fields)
            _create_version(user, model, stored, checked, label=label, notes=notes, number=1)
    except IntegrityError:
        writer.rollback()
        raise ModelRefusal("conflict", f"your team already has a model named {name!r}", 409) from None
    except BaseException:
        writer.rollback()
        raise
    return model


def add_version(
    user, model: Model, *, file: IO[bytes], file_name: str, label: str = "", notes: str = ""
) -> ModelVersion:
    """A new version after the existing ones (which stay as they are)."""
    if not is_member(user, model):
        raise ModelRefusal("forbidden", "only the model's team may add versions", 403)
    label, notes = clean_text("label", label, LABEL_MAX), clean_text("notes", notes, NOTES_MAX)
    checked = _check_file(model.kind, file, file_name)
    same = model.versions.filter(file_sha256=checked[1]).first()
    if same is not None:
        raise ModelRefusal("conflict", f"this file is already version {same.number} of the model", 409)
    writer = ContentWriter()
    try:
        stored = _store(writer, file, checked)  # before the transaction: a large copy holds no lock
        with transaction.atomic():
            Model.objects.select_for_update().filter(pk=model.pk).first()  # numbers in order, one at a time
            number = (model.versions.aggregate(n=Max("number"))["n"] or 0) + 1
            return _create_version(user, model, stored, checked, label=label, notes=notes, number=number)
    except BaseException:
        writer.rollback()
        raise


def update_card(user, model: Model, card: dict) -> Model:
    """Change the card's given fields (the card describes the model; versions stay immutable)."""
    if not is_member(user, model):
        raise ModelRefusal("forbidden", "only the model's team may edit its card", 403)
    fields = clean_card(card, partial=True)
    for field, value in fields.items():
        setattr(model, field, value)
    model.save(update_fields=list(fields))
    return model


def publish(user, model: Model, published: bool) -> Model:
    """Publish (readable by every signed-in user) or make private again."""
    if not is_member(user, model):
        raise ModelRefusal("forbidden", "only the model's team may publish it", 403)
    if published != model.is_published:
        model.published_at = timezone.now() if published else None
        model.save(update_fields=["published_at"])
    return model


def _check_file(kind: str, file: IO[bytes] | None, file_name: str) -> tuple[str, str, int, str]:
    """(clean name, sha256, size, image digest) of an acceptable file of ``kind``, else a refusal."""
    if file is None:
        raise ModelRefusal("file_required", "a model version needs its file", 400)
    clean = clean_text("file name", file_name or "", 255).replace("\\", "/").rsplit("/", 1)[-1] or "model"
    if not clean.lower().endswith(SUFFIXES[kind]):
        wanted = " or ".join(SUFFIXES[kind])
        raise ModelRefusal("file_type_not_allowed", f"a {K(kind).label.lower()} is a {wanted} file", 400)
    size = file.seek(0, 2)
    file.seek(0)
    if size > settings.SUBMISSION_MAX_BYTES:
        raise ModelRefusal(
            "file_too_large", f"the file is {size} bytes; the limit is {settings.SUBMISSION_MAX_BYTES}", 413
        )
    digest = ""
    if kind == K.CODE_BUNDLE:
        images.check_code_bundle(file, max_bytes=settings.SUBMISSION_MAX_BYTES)
    else:
        try:
            manifest = read_manifest(
                file, max_bytes=settings.SUBMISSION_MAX_BYTES, architecture=images.container_architecture()
            )
        except ImageRefused as exc:
            raise ModelRefusal("image_refused", str(exc), 400) from None
        digest = manifest.config_digest
    file.seek(0)
    sha256, size = hash_stream_open(file)
    file.seek(0)
    return clean, sha256, size, digest


def _store(writer: ContentWriter, file: IO[bytes], checked: tuple[str, str, int, str]) -> str:
    clean, sha256, size, _ = checked
    return writer.save_seekable("models", clean, file, known=(sha256, size))[0]


def _create_version(user, model: Model, stored: str, checked: tuple[str, str, int, str], **fields) -> ModelVersion:
    clean, sha256, size, digest = checked
    return ModelVersion.objects.create(
        model=model,
        file=stored,
        file_name=clean,
        file_sha256=sha256,
        file_size=size,
        image_digest=digest,
        created_by=user,
        **fields,
    )
