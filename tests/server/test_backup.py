"""``assay admin backup`` / ``restore``: a round trip reproduces every row, file and leaderboard; a full
instance and a damaged archive are refused before anything changes. Runs on SQLite and on PostgreSQL
(CI's second pass), so an archive's rows are the portable JSON-lines form on both."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
from django.core.cache import cache
from django.core.files.storage import default_storage
from django.core.management import call_command

from assay.server.backup.archive import MANIFEST_MEMBER, BackupError
from assay.server.backup.dump import backup, stored_files, write_rows
from assay.server.backup.load import restore
from assay.server.submissions.services.submit import SubmissionFields, submit
from tests.factories import upload

MARKER = b'{"dev-a0": 0.731, "marker": "backup-round-trip"}'


def canonical() -> tuple[list[str], dict[str, str]]:
    """Every dumped row (sorted JSON lines, natural keys for content types) and every stored file's sha256."""
    import hashlib

    out = io.StringIO()
    write_rows(out)
    files = {}
    for name in stored_files():
        with default_storage.open(name, "rb") as fh:
            files[name] = hashlib.sha256(fh.read()).hexdigest()
    return sorted(out.getvalue().splitlines()), files


def fill(world, participant, team):
    """Results on the leaderboard, plus one real submission whose file went through storage."""
    world.results([("Red", 0.9, 0.5), ("Blue", 0.7, 0.8, {"public": False}), ("Red", 0.95, 0.4), ("Green", 0.8, 0.7)])
    phase = world.challenge.phases.get(codename="dev")
    return submit(participant, phase, upload(MARKER, "preds.json"), "preds.json", SubmissionFields(method_name="m"))


def board_rows(world) -> list:
    return [sorted(r.items()) for r in world.board(world.host).rows]


@pytest.mark.django_db(transaction=True)
def test_backup_wipe_restore_reproduces_everything(world, participant, team, media, tmp_path):
    sub = fill(world, participant, team)
    rows_before, files_before = canonical()
    board_before = board_rows(world)
    assert sub.input_file.name in files_before and len(board_before) >= 2
    archive = tmp_path / "site.tar"
    messages: list[str] = []
    summary = backup(archive, messages.append)
    assert summary.files == len(files_before) and not summary.missing
    assert any(m.startswith("files:") for m in messages)

    call_command("flush", interactive=False, verbosity=0)  # a new, empty instance
    for name in files_before:
        default_storage.delete(name)
    cache.clear()
    assert canonical() == ([], {})

    result = restore(archive)
    assert result.files == len(files_before) and result.rows == len(rows_before)
    assert canonical() == (rows_before, files_before)
    assert board_rows(world) == board_before
    # the restored instance goes on: new rows take fresh ids (PostgreSQL's sequences were reset)
    again = submit(participant, sub.phase, upload(b"{}", "p.json"), "p.json", SubmissionFields())
    assert again.pk > sub.pk


def test_restore_refuses_an_instance_that_has_data(world, participant, team, media, tmp_path):
    fill(world, participant, team)
    archive = tmp_path / "site.tar"
    backup(archive)
    before = canonical()
    with pytest.raises(BackupError, match="restore needs an empty instance .*has rows.*nothing was changed"):
        restore(archive)
    assert canonical() == before


def _flip_byte(path: Path, needle: bytes) -> None:
    data = bytearray(path.read_bytes())
    at = data.index(needle) + 5
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


def test_a_changed_byte_is_refused_with_what_is_wrong(world, participant, team, media, tmp_path):
    sub = fill(world, participant, team)
    archive = tmp_path / "site.tar"
    backup(archive)
    _flip_byte(archive, MARKER)
    with pytest.raises(BackupError, match=rf"files/{sub.input_file.name} is corrupted: its sha256 is .* refused"):
        restore(archive)

    backup(archive)
    _flip_byte(archive, b'"model": "submissions.submission"')  # a row, not a file
    with pytest.raises(BackupError, match="rows.jsonl is corrupted"):
        restore(archive)


def test_cut_short_foreign_or_hostile_archives_are_refused(world, media, tmp_path):
    archive = tmp_path / "site.tar"
    backup(archive)
    data = archive.read_bytes()
    (tmp_path / "short.tar").write_bytes(data[: len(data) // 2])
    with pytest.raises(BackupError, match="damaged|no manifest"):
        restore(tmp_path / "short.tar")
    (tmp_path / "text.tar").write_bytes(b"not a tar at all" * 100)
    with pytest.raises(BackupError, match="not a backup archive|damaged"):
        restore(tmp_path / "text.tar")
    with pytest.raises(BackupError, match="no archive at"):
        restore(tmp_path / "missing.tar")

    # a member that would leave the storage root, listed honestly in its own manifest
    hostile = tmp_path / "hostile.tar"
    with tarfile.open(hostile, "w") as tar:
        for name, body in (("assay-backup/files/../../etc/x", b"x"), (MANIFEST_MEMBER, b"")):
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    with pytest.raises(BackupError, match="cannot be a storage name"):
        restore(hostile)


def test_an_archive_from_a_newer_assay_is_refused(world, media, tmp_path):
    archive = tmp_path / "site.tar"
    backup(archive)
    rebuilt = tmp_path / "newer.tar"
    with tarfile.open(archive) as src, tarfile.open(rebuilt, "w") as dst:
        lines = []
        for member in src.getmembers():
            body = src.extractfile(member).read()
            if member.name == MANIFEST_MEMBER:
                continue
            if member.name.endswith("format.json"):
                doc = json.loads(body)
                doc["migrations"]["submissions"].append("9999_from_the_future")
                body = json.dumps(doc).encode()
            import hashlib

            lines.append(
                json.dumps({"member": member.name, "size": len(body), "sha256": hashlib.sha256(body).hexdigest()})
            )
            member.size = len(body)
            dst.addfile(member, io.BytesIO(body))
        manifest = ("\n".join(lines) + "\n").encode()
        info = tarfile.TarInfo(MANIFEST_MEMBER)
        info.size = len(manifest)
        dst.addfile(info, io.BytesIO(manifest))
    with pytest.raises(BackupError, match="newer Assay .*submissions.9999_from_the_future"):
        restore(rebuilt)


def _rows_and_files(archive: Path) -> tuple[list[str], dict[str, str]]:
    """An archive's rows (sorted lines) and its files' sha256, from its own manifest."""
    with tarfile.open(archive) as tar:
        rows = sorted(tar.extractfile("assay-backup/rows.jsonl").read().decode().splitlines())
        manifest = [json.loads(line) for line in tar.extractfile(MANIFEST_MEMBER).read().splitlines()]
    files = {m["member"]: m["sha256"] for m in manifest if m["member"].startswith("assay-backup/files/")}
    return rows, files


@pytest.mark.slow
def test_an_archive_restores_into_the_other_database_through_the_cli(world, participant, team, media, tmp_path):
    """SQLite → PostgreSQL in the first CI pass, PostgreSQL → SQLite in the second: ``assay admin restore``
    into a fresh instance of the other kind, then ``assay admin backup`` there gives the same rows and files."""
    import os
    import subprocess
    import sys
    import uuid

    from django.db import connection

    from tests.server.test_native_stack import PG, postgres_admin

    assay = Path(sys.executable).with_name("assay")
    fill(world, participant, team)
    source = tmp_path / "source.tar"
    backup(source)
    dropped = None
    if connection.vendor == "sqlite":
        name = f"assay_restore_{uuid.uuid4().hex[:10]}"
        with postgres_admin() as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        dropped = name
        url = f"postgres://{PG['user']}@{PG['host']}:{PG['port']}/{name}"
    else:
        url = f"sqlite:///{tmp_path / 'other.sqlite3'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASSAY_", "DJANGO_"))}
    env.update(ASSAY_VAR_DIR=str(tmp_path / "other"), ASSAY_DATABASE_URL=url)
    try:
        restored = subprocess.run(
            [assay, "admin", "restore", source], capture_output=True, text=True, env=env, timeout=300
        )
        assert restored.returncode == 0, restored.stdout + restored.stderr
        assert "✓ restored" in restored.stdout and "checking" in restored.stderr  # progress on stderr
        again = tmp_path / "again.tar"
        made = subprocess.run([assay, "admin", "backup", again], capture_output=True, text=True, env=env, timeout=300)
        assert made.returncode == 0, made.stdout + made.stderr
        refused = subprocess.run(
            [assay, "admin", "restore", source], capture_output=True, text=True, env=env, timeout=300
        )
        assert refused.returncode == 1 and "restore needs an empty instance" in refused.stderr
    finally:
        if dropped:
            with postgres_admin() as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{dropped}" WITH (FORCE)')
    assert _rows_and_files(again) == _rows_and_files(source)


@pytest.mark.django_db(transaction=True)
def test_round_trip_with_files_in_an_s3_bucket(s3_storage, s3_server, world, participant, team, media, tmp_path):
    """The files are read and written through the default storage: an instance on S3 backs up and restores
    without a local path (the bucket is a real S3 API server, tests/s3.py)."""
    fill(world, participant, team)
    rows_before, files_before = canonical()
    assert files_before and len(s3_server.keys(s3_storage)) == len(files_before)
    archive = tmp_path / "site.tar"
    backup(archive)

    call_command("flush", interactive=False, verbosity=0)
    for name in files_before:
        default_storage.delete(name)
    cache.clear()
    assert s3_server.keys(s3_storage) == []

    restore(archive)
    assert canonical() == (rows_before, files_before)
    assert sorted(s3_server.keys(s3_storage)) == sorted(f"media/{name}" for name in files_before)
    assert not any(media.rglob("*.*"))  # nothing went to the local folder


@pytest.mark.django_db
def test_an_in_place_reruns_earlier_files_are_referenced_rows_of_the_backup(world, participant, team, media):
    """The attempt a host's re-run keeps names the earlier logs and result: the backup knows them as
    referenced files (a missing one is reported), not as leftovers no row points to."""
    from assay.server.submissions.services import lifecycle
    from tests.factories import finish

    done = finish(fill(world, participant, team))
    earlier = {done.stdout_file.name, done.stderr_file.name, done.submission_result_file.name}
    lifecycle.rerun(world.host, done)
    _, referenced = write_rows(io.StringIO())
    assert earlier <= referenced
