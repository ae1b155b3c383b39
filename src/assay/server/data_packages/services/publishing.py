"""Creating a package, editing its card and policy, publishing a version from a zip, and what a reader sees.

A version is published from one ``.zip`` whose top-level folders give each file's role: ``inputs/``,
``labels/``, ``metadata/``. The archive is hostile until checked: every entry is checked from the zip's
central directory before a byte is stored (names, kinds, count, declared sizes, compression ratio),
and sizes are counted again while the entries are copied out. Files are stored by sha256 (``ContentWriter``);
a file whose bytes a package already stores is not stored again (its row names the stored copy).
Versions are numbered 1, 2, … under a lock of the package row and are immutable.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from typing import IO, Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import Max, QuerySet

from assay.evaluation.safezip import (
    UnsafeZipError,
    checked_entry_is_folder,
    checked_entry_path,
    checked_entry_readable,
)
from assay.server.storage import ContentWriter
from assay.server.teams.models import HostTeam

from ..models import DataPackage, DataPackageFile, DataPackageVersion
from .access import DataPackageRefusal, is_owner, require_host, require_owner
from .card import TITLE_MAX, clean_card, clean_text

A = DataPackage.Access
R = DataPackageFile.Role
SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,98}[a-z0-9])?$")
NOTES_MAX = 20_000
ROLES = tuple(R.values)  # the top-level folders of an archive
PATH_MAX = 300  # DataPackageFile.path
#: An archive may unpack to at most this many times its size beyond the allowance (a zip bomb declares
#: gigabytes in kilobytes; real data compresses well, so the allowance is generous).
MAX_EXPANSION = 200
EXPANSION_ALLOWANCE = 64 * 1024**2
CHUNK = 1024 * 1024


def max_bytes() -> int:
    """The largest archive and unpacked total of a version (``ASSAY_DATA_PACKAGE_MAX_BYTES``)."""
    return settings.DATA_PACKAGE_MAX_BYTES


def max_entries() -> int:
    """The most entries a version's zip may hold (``ASSAY_DATA_PACKAGE_MAX_ENTRIES``)."""
    return settings.DATA_PACKAGE_MAX_ENTRIES


def create_package(
    user, host_team_id: int | None, slug: str, title: str, access: str, card: dict | None = None
) -> DataPackage:
    """A new, empty package of the host team ``host_team_id`` (``user`` must be one of its members; None:
    the user's only host team)."""
    require_host(user)
    teams = HostTeam.objects.filter(memberships__user=user).distinct()
    if host_team_id is None:
        found = list(teams[:2])
        if len(found) != 1:
            why = "name the host team that owns the package (you are in none or several)"
            raise DataPackageRefusal("team_required", why, 400)
        team = found[0]
    else:
        team = teams.filter(pk=host_team_id).first()
    if team is None:  # a team one is not in answers the same as a missing one
        raise DataPackageRefusal("forbidden", "you are not a member of that host team", 403)
    slug = clean_text("slug", slug, 100)
    if not SLUG.match(slug):
        raise DataPackageRefusal(
            "invalid", "a package's slug is 1-100 lower-case letters, digits and '-', not starting or ending with '-'"
        )
    title = _title(title)
    access = _access(access)
    fields = clean_card(card)
    if DataPackage.objects.filter(slug=slug).exists():
        raise DataPackageRefusal("conflict", f"a data package named {slug!r} exists already", 409)
    try:
        with transaction.atomic():
            return DataPackage.objects.create(
                host_team=team, slug=slug, title=title, access=access, created_by=user, **fields
            )
    except IntegrityError:
        raise DataPackageRefusal("conflict", f"a data package named {slug!r} exists already", 409) from None


def update_package(user, package: DataPackage, fields: dict[str, Any]) -> DataPackage:
    """Change the given ``title``, ``access`` and card fields (flat, or the card's under ``card``).

    The slug and the owning team never change (bundles name the slug); versions stay as they are.
    """
    require_owner(user, package, "edit it")
    if not isinstance(fields, dict):
        raise DataPackageRefusal("invalid", "the changes must be an object of fields", 400)
    fields = dict(fields)
    nested = fields.pop("card", None)
    if nested is not None:
        if not isinstance(nested, dict):
            raise DataPackageRefusal("invalid", "card must be an object of its fields", 400)
        fields.update(nested)
    changes: dict[str, Any] = {}
    if "title" in fields:
        changes["title"] = _title(fields.pop("title"))
    if "access" in fields:
        changes["access"] = _access(fields.pop("access"))
    changes.update(clean_card(fields, partial=True))  # anything left must be a card field
    for name, value in changes.items():
        setattr(package, name, value)
    if changes:
        package.save(update_fields=list(changes))
    return package


def _title(value: Any) -> str:
    title = clean_text("title", value, TITLE_MAX)
    if not title:
        raise DataPackageRefusal("invalid", "a data package needs a title", 400)
    return title


def _access(value: Any) -> str:
    if value not in A.values:
        raise DataPackageRefusal("invalid", f"access must be one of: {', '.join(A.values)}", 400)
    return value


@dataclass(frozen=True)
class Entry:
    """One file of an archive: its zip entry and where it goes."""

    info: zipfile.ZipInfo
    path: str
    role: str


def check_archive(archive: IO[bytes]) -> list[Entry]:
    """The archive's files with their roles, or a refusal naming the first entry that is wrong.

    Decided from the central directory alone (nothing is unpacked): not a zip, empty, too many entries,
    absolute or ``..`` paths, NUL bytes, symbolic links and other non-regular entries, two entries with the
    same name, a file outside ``inputs/``, ``labels/`` and ``metadata/``, a name too long, a total over the
    limit, or a compression ratio only a zip bomb has.
    """
    size = archive.seek(0, 2)
    archive.seek(0)
    if size > max_bytes():
        raise _refused(f"the archive is {size} bytes; the limit is {max_bytes()}", 413)
    if size == 0:
        raise _refused("the archive is empty (a version is a .zip with inputs/, labels/ or metadata/ folders)")
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        raise _refused("the file is not a readable zip (a version is a .zip of inputs/, labels/, metadata/)") from None
    finally:
        archive.seek(0)
    if len(infos) > max_entries():
        raise _refused(f"the zip holds {len(infos)} entries, more than {max_entries()}")
    entries: list[Entry] = []
    seen: set[str] = set()
    total = 0
    for info in infos:
        path = _entry_path(info)
        if path is None:
            continue
        if path in seen:
            raise _refused(f"zip entry {info.filename!r} appears twice (as {path!r})")
        seen.add(path)
        total += info.file_size
        entries.append(Entry(info, path, path.split("/", 1)[0]))
    if not entries:
        raise _refused("the zip holds no files (put them in inputs/, labels/ or metadata/)")
    folders = {p.rsplit("/", 1)[0] for p in seen}
    clash = sorted(p for p in seen if p in folders)
    if clash:
        raise _refused(f"zip entry {clash[0]!r} is both a file and a folder")
    if total > max_bytes():
        raise _refused(f"the zip unpacks to {total} bytes, more than the limit of {max_bytes()}", 413)
    if total > EXPANSION_ALLOWANCE and total > MAX_EXPANSION * size:
        raise _refused(f"the zip unpacks to {total} bytes, more than {MAX_EXPANSION} times its size (a zip bomb?)")
    return entries


def _entry_path(info: zipfile.ZipInfo) -> str | None:
    """The entry's clean path (``inputs/a/b.png``), None for a folder or macOS metadata, else a refusal.

    Names and kinds are :mod:`assay.evaluation.safezip`'s rules (the worker's); the roles and the length are this
    module's.
    """
    raw = info.filename
    try:
        rel = checked_entry_path(raw)
        folder = checked_entry_is_folder(info)
        if rel is not None and not folder:
            checked_entry_readable(info)  # a worker could not unpack it, nor the server stream it
    except UnsafeZipError as exc:
        raise _refused(str(exc)) from None
    if rel is None or rel.name == ".DS_Store":
        return None
    parts = rel.parts
    if folder:
        if parts[0] not in ROLES:
            raise _refused(f"zip entry {raw!r}: the top-level folders are {', '.join(ROLES)} (nothing else)")
        return None
    if len(parts) < 2 or parts[0] not in ROLES:
        raise _refused(
            f"zip entry {raw!r} is outside {', '.join(r + '/' for r in ROLES)}: a file's top-level folder is its role"
        )
    path = str(rel)
    if len(path) > PATH_MAX:
        raise _refused(f"zip entry {raw[:80]!r}… is {len(path)} characters long; at most {PATH_MAX}")
    return path


def _refused(why: str, status: int = 400) -> DataPackageRefusal:
    return DataPackageRefusal("archive_refused", why, status)


@dataclass
class Staged:
    entry: Entry
    name: str
    sha256: str
    size: int


def publish_version(user, package: DataPackage, archive: IO[bytes], notes: str = "") -> DataPackageVersion:
    """The package's next version, from ``archive`` (a seekable .zip); refused as a whole when anything is wrong.

    Files are stored before the transaction that writes the rows (a large copy holds no database lock);
    a refused or failed publication deletes the files it stored.
    """
    require_owner(user, package, "publish versions")
    notes = clean_text("notes", notes, NOTES_MAX)
    if archive is None:
        raise _refused("a version needs its archive (a .zip)")
    entries = check_archive(archive)
    writer = ContentWriter()
    try:
        staged = _store_all(writer, archive, entries)
        latest = package.versions.order_by("-number").first()
        if latest is not None and _same_files(latest, staged):
            raise DataPackageRefusal("conflict", f"these files are version {latest.number} already", 409)
        with transaction.atomic():
            DataPackage.objects.select_for_update().filter(pk=package.pk).first()  # numbers in order, one at a time
            number = (package.versions.aggregate(n=Max("number"))["n"] or 0) + 1
            version = DataPackageVersion.objects.create(package=package, number=number, notes=notes, created_by=user)
            DataPackageFile.objects.bulk_create(
                DataPackageFile(
                    version=version, path=s.entry.path, role=s.entry.role, file=s.name, sha256=s.sha256, size=s.size
                )
                for s in staged
            )
    except IntegrityError:
        writer.rollback()
        raise DataPackageRefusal("conflict", "another version was published at the same time; try again", 409) from None
    except BaseException:
        writer.rollback()
        raise
    return version


def _store_all(writer: ContentWriter, archive: IO[bytes], entries: list[Entry]) -> list[Staged]:
    staged: list[Staged] = []
    limit = max_bytes()
    total = 0
    archive.seek(0)
    try:
        with zipfile.ZipFile(archive) as zf:
            for entry in entries:
                with tempfile.TemporaryFile() as tmp:
                    digest, size = _copy_out(zf, entry, tmp, limit - total)
                    total += size
                    name = _stored_copy(digest, size)
                    if not name:
                        basename = entry.path.rsplit("/", 1)[-1]
                        name = writer.save_seekable("data-packages", basename, tmp, known=(digest, size))[0]
                staged.append(Staged(entry, name, digest, size))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error, NotImplementedError, RuntimeError) as exc:
        raise _refused(f"the zip cannot be read (damaged, encrypted or an unknown compression): {exc}") from None
    finally:
        archive.seek(0)
    return staged


def _copy_out(zf: zipfile.ZipFile, entry: Entry, out: IO[bytes], budget: int) -> tuple[str, int]:
    """Copy one entry into ``out``, hashing; sizes are counted as unpacked, not taken from the headers."""
    digest = hashlib.sha256()
    size = 0
    with zf.open(entry.info) as src:
        while block := src.read(CHUNK):
            size += len(block)
            if size > entry.info.file_size or size > budget:
                raise _refused(f"zip entry {entry.info.filename!r} unpacks to more than it declares or the limit")
            digest.update(block)
            out.write(block)
    out.flush()
    return digest.hexdigest(), size


def _stored_copy(sha256: str, size: int) -> str:
    """The stored name of these bytes when a version of any package holds them already (stored once)."""
    for name in DataPackageFile.objects.filter(sha256=sha256, size=size).values_list("file", flat=True).distinct()[:5]:
        parts = name.split("/")
        if len(parts) >= 3 and parts[-2] == sha256 and default_storage.exists(name):
            return name
    return ""


def _same_files(version: DataPackageVersion, staged: list[Staged]) -> bool:
    before = set(version.files.values_list("path", "sha256"))
    return before == {(s.entry.path, s.sha256) for s in staged}


def versions_seen(user, package: DataPackage) -> QuerySet[DataPackageVersion]:
    """The package's versions, newest first (``package`` is one the reader may read)."""
    return package.versions.order_by("-number")


def files_seen(user, version: DataPackageVersion) -> QuerySet[DataPackageFile]:
    """The version's files as ``user`` may see them listed: the owners every file; others the inputs only."""
    files = version.files.order_by("path")
    if is_owner(user, version.package):
        return files
    return files.filter(role=R.INPUTS)
