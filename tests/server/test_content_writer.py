"""ContentWriter on local storage: a new file is written where storage would write it (same name, mode, bytes),
a taken name still gets a fresh one from storage (a rollback never deletes another writer's file), and an
object store goes through storage's ``save`` as before."""

from __future__ import annotations

import os
import stat

import pytest
from django.core.files.storage import default_storage

from assay.server.storage import ContentWriter


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")  # not made yet: the first write makes the folders
    settings.FILE_UPLOAD_PERMISSIONS = 0o640
    return tmp_path / "media"


def test_a_new_file_is_where_storage_puts_it_with_storages_mode(media):
    writer = ContentWriter()
    name, digest, size = writer.save("submission_files/7", "std out.txt", data=b"hello\n")
    assert name == f"submission_files/7/{digest}/std_out.txt" and size == 6
    assert (media / name).read_bytes() == b"hello\n"
    assert stat.S_IMODE(os.stat(media / name).st_mode) == 0o640
    assert default_storage.exists(name) and default_storage.open(name).read() == b"hello\n"
    assert writer.created == [name]


def test_the_same_bytes_and_name_twice_get_two_files_and_a_rollback_removes_only_its_own(media):
    first = ContentWriter()
    kept, digest, _ = first.save("submission_files/7", "stdout.txt", data=b"")
    second = ContentWriter()
    other, _, _ = second.save("submission_files/7", "stdout.txt", data=b"")
    assert other != kept and other.startswith(f"submission_files/7/{digest}/stdout_")  # storage's fresh name
    second.rollback()
    assert (media / kept).exists() and not (media / other).exists()


def test_a_name_that_would_leave_the_media_folder_is_refused(media):
    from django.core.exceptions import SuspiciousFileOperation

    with pytest.raises(SuspiciousFileOperation):
        ContentWriter().save("../outside", "x.txt", data=b"x")
