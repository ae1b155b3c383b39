"""Zips for data package versions, good and hostile, built in memory."""

from __future__ import annotations

import io
import stat
import warnings
import zipfile

INPUTS = {"inputs/case-1.json": b'{"x": [1, 2, 3]}', "inputs/images/case-1.png": b"\x89PNG fake"}
LABELS = {"labels/test.json": b'{"case-1": "cat"}'}
METADATA = {"metadata/cases.csv": b"case,site\ncase-1,A\n"}
FILES = {**INPUTS, **LABELS, **METADATA}


def package_zip(files: dict[str, bytes] | None = None, *, folders: bool = False) -> bytes:
    """A zip of ``files`` (path → bytes); ``folders`` adds the folder entries real zip tools write."""
    files = FILES if files is None else files
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        if folders:
            for folder in sorted({p.split("/", 1)[0] + "/" for p in files}):
                zf.writestr(folder, b"")
        for path, data in files.items():
            zf.writestr(path, data)
    return buffer.getvalue()


def symlink_zip(kind: int = stat.S_IFLNK) -> bytes:
    """A zip whose ``inputs/passwd`` is a symbolic link to /etc/passwd (or another ``kind`` of special file)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("inputs/a.json", b"{}")
        info = zipfile.ZipInfo("inputs/passwd")
        info.external_attr = (kind | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    return buffer.getvalue()


def duplicate_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("inputs/a.json", b"{}")
        with_warning = zipfile.ZipInfo("inputs/./a.json")
        zf.writestr(with_warning, b"{ }")
    return buffer.getvalue()


def bomb_zip(megabytes: int = 100) -> bytes:
    """One entry of zeros: a few hundred kilobytes that declare ``megabytes`` MiB."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        with zf.open("inputs/zeros.bin", "w", force_zip64=True) as out:
            block = bytes(1024 * 1024)
            for _ in range(megabytes):
                out.write(block)
    return buffer.getvalue()


def named_zip(*names: str) -> bytes:
    """A zip with one small entry per name, written as given (``ZipInfo`` keeps '/', '..' and drive letters)."""
    buffer = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buffer, "w") as zf:
        warnings.simplefilter("ignore")  # a duplicate name is the point of some tests
        for name in names:
            zf.writestr(zipfile.ZipInfo(name), b"{}")
    return buffer.getvalue()
