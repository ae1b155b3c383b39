"""Write a backup: one consistent read of every table, then every stored file, into one archive.

The rows are read inside one snapshot (PostgreSQL: a REPEATABLE READ, READ ONLY transaction; SQLite: one
deferred read transaction, which WAL keeps at one view while writers go on). Files are read after it:
they are content-addressed and written before the rows that name them, so every file a snapshot row names
is still there unless something deleted it meanwhile (retention, say) — such files are listed as missing.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from django.apps import apps
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.core import serializers
from django.core.files.storage import default_storage
from django.core.serializers.python import Serializer as PythonSerializer
from django.db import connection, models, transaction
from django.db.migrations.recorder import MigrationRecorder

import assay

from .archive import FORMAT, FORMAT_MEMBER, ROWS_MEMBER, VERSION, ArchiveWriter, Progress, file_member, quiet

# made by ``migrate`` on every instance (pks differ between instances), or transient (sessions)
NOT_DUMPED = {"contenttypes.contenttype", "auth.permission", "sessions.session"}
# referred to by natural key, since their pks differ between instances; every other reference is a pk
NATURAL = (ContentType, Permission)


def dumped_models() -> list[type[models.Model]]:
    """Every concrete table Django manages, but those ``migrate`` makes itself, in dependency order."""
    app_list = [(config, None) for config in apps.get_app_configs()]
    ordered = serializers.sort_dependencies(app_list, allow_cycles=True)
    return [m for m in ordered if m._meta.label_lower not in NOT_DUMPED and m._meta.managed and not m._meta.proxy]


def _default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()  # full precision (DjangoJSONEncoder drops microseconds)
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to a backup")


def encode(row: dict[str, Any]) -> str:
    return json.dumps(row, default=_default, ensure_ascii=False, sort_keys=True)


class LineSerializer(PythonSerializer):
    """Django's ``python`` serializer, writing each object as one JSON line instead of keeping a list, and
    noting every file name a FileField holds."""

    def __init__(self, out: IO[str], referenced: set[str]) -> None:
        super().__init__()
        self.out, self.referenced = out, referenced

    def handle_field(self, obj, field) -> None:
        super().handle_field(obj, field)
        if isinstance(field, models.FileField) and self._current[field.name]:
            self.referenced.add(str(self._current[field.name]))

    def handle_fk_field(self, obj, field) -> None:
        self.use_natural_foreign_keys = field.remote_field.model in NATURAL
        super().handle_fk_field(obj, field)

    def handle_m2m_field(self, obj, field) -> None:
        self.use_natural_foreign_keys = field.remote_field.model in NATURAL
        super().handle_m2m_field(obj, field)

    def end_object(self, obj) -> None:
        self.out.write(encode(self.get_dump_object(obj)) + "\n")
        self._current = None


@contextmanager
def snapshot() -> Iterator[None]:
    """One consistent view of the database for everything read inside."""
    if connection.in_atomic_block:  # already in a transaction (a test's): its view is the snapshot
        yield
        return
    if connection.vendor == "postgresql":
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield
        return
    if connection.vendor == "sqlite":
        # Django would BEGIN IMMEDIATE (the settings' transaction mode), taking the write lock for the
        # whole dump; a deferred BEGIN takes a read snapshot at the first SELECT and lets writers go on.
        connection.ensure_connection()
        with connection.cursor() as cursor:
            cursor.execute("BEGIN DEFERRED")
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                cursor.execute("ROLLBACK")
        return
    with transaction.atomic():
        yield


def applied_migrations() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for app, name in sorted(MigrationRecorder(connection).applied_migrations()):
        out.setdefault(app, []).append(name)
    return out


def write_rows(out: IO[str], progress: Progress = quiet) -> tuple[dict[str, int], set[str]]:
    """Every dumped row as one JSON line, model by model in pk order; returns counts and named files."""
    counts: dict[str, int] = {}
    referenced: set[str] = set()
    for model in dumped_models():
        serializer = LineSerializer(out, referenced)
        links = [f.name for f in model._meta.many_to_many if f.remote_field.through._meta.auto_created]
        rows = model._base_manager.order_by("pk").prefetch_related(*links)  # per chunk, not a query per row
        counter = _Counted(rows.iterator(chunk_size=2000))
        serializer.serialize(counter)
        counts[model._meta.label_lower] = counter.count
        if counter.count:
            progress(f"rows: {model._meta.label_lower} {counter.count}")
    return counts, referenced


class _Counted:
    def __init__(self, rows: Iterator[models.Model]) -> None:
        self.rows, self.count = rows, 0

    def __iter__(self) -> Iterator[models.Model]:
        for row in self.rows:
            self.count += 1
            yield row


def stored_files(folder: str = "") -> Iterator[str]:
    """Every file name in the default storage, depth first, sorted (works on local folders and S3)."""
    try:
        dirs, files = default_storage.listdir(folder)
    except FileNotFoundError:
        return
    for name in sorted(files):
        yield f"{folder}/{name}" if folder else name
    for sub in sorted(dirs):
        yield from stored_files(f"{folder}/{sub}" if folder else sub)


@dataclass
class BackupSummary:
    path: Path
    rows: dict[str, int]
    files: int = 0
    file_bytes: int = 0
    missing: list[str] = field(default_factory=list)


def backup(path: Path, progress: Progress = quiet) -> BackupSummary:
    """Write the archive at ``path`` (replacing it only once complete)."""
    with tempfile.TemporaryDirectory(prefix="assay-backup-") as tmp:
        rows_path = Path(tmp) / "rows.jsonl"
        progress("reading the database (one snapshot)")
        with snapshot(), open(rows_path, "w", encoding="utf-8") as out:
            migrations = applied_migrations()
            counts, referenced = write_rows(out, progress)
        progress("listing stored files")
        names = list(stored_files())
        missing = sorted(referenced - set(names))
        document = {
            "format": FORMAT,
            "version": VERSION,
            "assay_version": assay.__version__,
            "created_at": dt.datetime.now(dt.UTC).isoformat(),
            "database": connection.vendor,
            "migrations": migrations,
            "rows": counts,
            "files": len(names),
            "missing_files": missing,
        }
        summary = BackupSummary(path, counts, missing=missing)
        writer = ArchiveWriter(path)
        try:
            writer.add_bytes(FORMAT_MEMBER, json.dumps(document, indent=1, sort_keys=True).encode())
            writer.add_path(ROWS_MEMBER, rows_path)
            for number, name in enumerate(names, 1):
                try:
                    size = default_storage.size(name)
                    fh = default_storage.open(name, "rb")
                except FileNotFoundError:  # deleted since it was listed (retention, an undone write): not needed
                    if name in referenced:
                        summary.missing.append(name)
                    continue
                with fh:
                    writer.add_stream(file_member(name), fh, size)
                summary.files += 1
                summary.file_bytes += size
                if number % 200 == 0 or number == len(names):
                    progress(f"files: {number}/{len(names)} ({summary.file_bytes} bytes)")
            writer.close()
        except BaseException:
            writer.abort()
            raise
    return summary
