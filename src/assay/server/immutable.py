"""Rows whose identifying fields are written once (a model version's file, a data package's files)."""

from __future__ import annotations

from django.db import models
from django.db.models.fields.files import FieldFile


def refuse_changes(row: models.Model, fields: tuple[str, ...], message: str) -> None:
    """Raise ``ValueError(message)`` if saving ``row`` would change any of ``fields`` of its stored copy
    (called from ``save``; a new row, or one no longer stored, passes)."""
    if row.pk is None:
        return
    before = type(row).objects.filter(pk=row.pk).values(*fields).first()
    now = {name: getattr(row, name) for name in fields}
    now = {name: value.name if isinstance(value, FieldFile) else value for name, value in now.items()}
    if before is not None and before != now:
        raise ValueError(message)
