"""Restore a backup into an empty instance: check the whole archive, migrate, load the rows in one
transaction (sequences reset on PostgreSQL, foreign keys checked), then write and re-hash every file."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from django.core import serializers
from django.core.files import File
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.core.management.color import no_style
from django.core.serializers.base import DeserializationError
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder

from .archive import (
    CHUNK,
    FILES_PREFIX,
    ROWS_MEMBER,
    BackupError,
    Checked,
    HashingReader,
    Progress,
    check,
    open_archive,
    quiet,
    storage_name,
)
from .dump import dumped_models, stored_files


@dataclass
class RestoreSummary:
    rows: int = 0
    files: int = 0
    file_bytes: int = 0
    warnings: list[str] = field(default_factory=list)


def occupied() -> list[str]:
    """Why this instance is not empty: tables with rows (only those that exist yet), or stored files."""
    existing = set(connection.introspection.table_names())
    found = []
    for model in dumped_models():
        if model._meta.db_table in existing and model._base_manager.exists():
            found.append(f"{model._meta.label_lower} has rows")
    first_file = next(stored_files(), None)
    if first_file is not None:
        found.append(f"the file storage is not empty ({first_file!r})")
    return found


def _unknown_migrations(document: dict) -> list[str]:
    graph = MigrationLoader(None, ignore_no_migrations=True).graph
    recorded = document.get("migrations")
    if not isinstance(recorded, dict):
        raise BackupError("the archive's format.json has no migration state: refused")
    return sorted(
        f"{app}.{name}" for app, names in recorded.items() for name in names if (app, name) not in graph.nodes
    )


def restore(path: Path, progress: Progress = quiet) -> RestoreSummary:
    """Restore ``path``; refuses a damaged archive or a non-empty instance before changing anything."""
    progress(f"checking {path} against its manifest")
    checked = check(path, progress)
    unknown = _unknown_migrations(checked.format)
    if unknown:
        raise BackupError(
            f"the backup was made by a newer Assay (migrations unknown here: {', '.join(unknown[:5])}):"
            " install that version or later, then restore"
        )
    try:
        reasons = occupied()
    except DatabaseError as exc:
        raise BackupError(f"cannot read the target database: {exc}") from None
    if reasons:
        raise BackupError(
            "restore needs an empty instance (a new database and an empty file storage), but "
            + "; ".join(reasons[:5])
            + ": refused, nothing was changed"
        )
    progress("migrating the database")
    call_command("migrate", interactive=False, verbosity=0)
    summary = RestoreSummary()
    summary.warnings += _newer_here(checked.format)
    total = checked.files  # counted once: it walks every member
    with open_archive(path) as tar:
        for member in tar:
            fh = tar.extractfile(member)
            assert fh is not None
            if member.name == ROWS_MEMBER:
                _expect(checked, member.name, _load_rows(fh, member.size, summary, progress))
            elif member.name.startswith(FILES_PREFIX):
                _expect(checked, member.name, _write_file(storage_name(member.name), fh, member.size))
                summary.files += 1
                summary.file_bytes += member.size
                if summary.files % 200 == 0 or summary.files == total:
                    progress(f"files: {summary.files}/{total}")
    return summary


def _newer_here(document: dict) -> list[str]:
    recorded = {(app, name) for app, names in document["migrations"].items() for name in names}
    newer = sorted(f"{a}.{n}" for a, n in set(MigrationRecorder(connection).applied_migrations()) - recorded)
    if not newer:
        return []
    return [
        f"this Assay has {len(newer)} migrations the backup predates ({', '.join(newer[:5])}); the rows were"
        " loaded with their new fields' defaults"
    ]


def _expect(checked: Checked, member: str, got: tuple[str, int]) -> None:
    if checked.members[member] != got:
        raise BackupError(f"{member} changed while it was restored (the archive was modified meanwhile?)")


class _Lines:
    """The rows member read line by line, hashed as it goes."""

    def __init__(self, fh: IO[bytes], size: int) -> None:
        self.reader = HashingReader(fh, size, ROWS_MEMBER)
        self.count = 0

    def __iter__(self) -> Iterator[dict]:
        pending = b""
        while chunk := self.reader.read(CHUNK):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                self.count += 1
                yield json.loads(line)
        if pending.strip():
            self.count += 1
            yield json.loads(pending)


def _load_rows(fh: IO[bytes], size: int, summary: RestoreSummary, progress: Progress) -> tuple[str, int]:
    lines = _Lines(fh, size)
    models = set()
    progress("loading rows (one transaction)")
    try:
        with transaction.atomic():
            for number, item in enumerate(serializers.deserialize("python", lines, ignorenonexistent=True), 1):
                # an empty instance has no links yet: setting an empty many-to-many would only read
                item.m2m_data = {name: ids for name, ids in (item.m2m_data or {}).items() if ids}
                item.save()
                models.add(type(item.object))
                if number % 10000 == 0:
                    progress(f"rows: {number}")
            for sql in connection.ops.sequence_reset_sql(no_style(), sorted(models, key=lambda m: m._meta.label)):
                with connection.cursor() as cursor:
                    cursor.execute(sql)
            _check_references(models)
    except (DeserializationError, IntegrityError, DatabaseError) as exc:
        raise BackupError(f"the rows could not be loaded (nothing was kept): {exc}") from None
    summary.rows = lines.count
    return lines.reader.hexdigest(), lines.reader.read_bytes


def _check_references(models: set) -> None:
    """Every foreign key points at a row: now, not at commit (a test's outer transaction never commits)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
    else:
        connection.check_constraints(table_names=[m._meta.db_table for m in models])


def _write_file(name: str, fh: IO[bytes], size: int) -> tuple[str, int]:
    """Copy one member to the storage under its own name, through a seekable spool (S3 uploads seek)."""
    reader = HashingReader(fh, size, name)
    with tempfile.SpooledTemporaryFile(max_size=8 << 20) as spool:
        shutil.copyfileobj(reader, spool, CHUNK)
        spool.seek(0)
        saved = default_storage.save(name, File(spool, name=name.rsplit("/", 1)[-1]))
    if saved != name:
        default_storage.delete(saved)
        raise BackupError(f"the storage already holds {name!r} (it saved the file as {saved!r}): restore stopped")
    return reader.hexdigest(), reader.read_bytes
