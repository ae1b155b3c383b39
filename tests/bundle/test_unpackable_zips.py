"""Zips in a bundle that a worker unpacks (the evaluation script, a phase's test inputs) are judged at import by
the worker's own entry rule (:mod:`assay.evaluation.safezip`), so a bundle that imports never fails every
submission later with "cannot be unpacked safely". The refusals themselves are cases in test_hostile.py."""

from __future__ import annotations

import zipfile
from pathlib import Path

import builders
import pytest

from assay.bundle import BundleError, read_bundle
from assay.evaluation.safezip import UnsafeZipError, safe_extract
from tests.zips import patched_entry

INPUTS = "inputs/images.zip"
KEY = "challenge_phases.0.test_inputs"


def _entry(name: str, mode: int | None = None) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    if mode is not None:
        info.create_system = 3  # Unix: external_attr's high half is st_mode
        info.external_attr = mode << 16
    return info


def _inner_zip(path: Path, entries: list[tuple[zipfile.ZipInfo, bytes]]) -> bytes:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for info, payload in entries:
            zf.writestr(info, payload)
    return path.read_bytes()


def _bundle(tmp: Path, inputs: bytes, *, as_zip: bool, name: str = INPUTS) -> Path:
    config = builders.minimal_config()
    config["challenge_phases"][0]["test_inputs"] = name
    if as_zip:
        return builders.write_zip(tmp / "bundle.zip", config, extra={name: inputs})
    return builders.write_folder(tmp / "bundle", config, extra={name: inputs})


@pytest.mark.parametrize("as_zip", [True, False], ids=["zip-bundle", "folder-bundle"])
def test_a_sound_test_inputs_zip_imports_and_streams_whole(as_zip: bool, tmp_path: Path) -> None:
    data = _inner_zip(
        tmp_path / "inner.zip",
        [
            (_entry("images/"), b""),
            (_entry("images/0001.png", 0o100644), b"\x89PNG" * 1000),
            (_entry("./labels-free\\notes.txt"), b"no labels here"),
            (_entry("__MACOSX/images/._0001.png", 0o100644), b"\x00\x05\x16\x07"),  # AppleDouble: a regular file
        ],
    )
    with read_bundle(_bundle(tmp_path, data, as_zip=as_zip)) as bundle:
        assert bundle.test_inputs == {1: INPUTS}
        with bundle.open_file(INPUTS) as fh:
            assert fh.read() == data


def test_test_inputs_that_are_no_zip_are_not_opened_as_one(tmp_path: Path) -> None:
    """The worker mounts a file not named .zip as it is; so does the reader read it as it is."""
    with read_bundle(_bundle(tmp_path, b"PK\x03\x04 but no zip", as_zip=True, name="inputs/numbers.txt")) as bundle:
        assert bundle.test_inputs == {1: "inputs/numbers.txt"}


def test_macosx_metadata_in_a_script_zip_is_checked_but_left_out(tmp_path: Path) -> None:
    script = builders.zip_bytes(
        {"__init__.py": builders.SCRIPT_INIT, "main.py": builders.SCRIPT_MAIN, "__MACOSX/._main.py": b"\x00\x05"}
    )
    with read_bundle(builders.write_zip(tmp_path / "b.zip", extra={"evaluation_script.zip": script})) as bundle:
        assert bundle.evaluation_script is not None
        assert sorted(bundle.evaluation_script.names) == ["__init__.py", "main.py"]


ENTRIES = {
    "plain": _entry("images/a.png"),
    "dot-slash": _entry("./images/a.png"),
    "backslash": _entry("images\\a.png"),
    "folder-mode": _entry("images/", 0o040755),
    "regular-mode": _entry("images/a.png", 0o100600),
    "macosx": _entry("__MACOSX/._a.png", 0o100644),
    "dotdot": _entry("images/../../a.png"),
    "backslash-dotdot": _entry("..\\a.png"),
    "absolute": _entry("/a.png"),
    "drive": _entry("C:\\a.png"),
    "tab": _entry("a\tb.png"),
    "escape": _entry("\x1b[31ma.png"),
    "delete": _entry("a\x7f.png"),
    "symlink": _entry("a.png", 0o120777),
    "macosx-symlink": _entry("__MACOSX/a", 0o120777),
    "fifo": _entry("a.png", 0o010644),
    "socket": _entry("a.png", 0o140644),
    "encrypted": _entry("a.png"),
    "deflate64": _entry("a.png"),
    "aes-encrypted": _entry("a.png"),
    "encrypted-macosx": _entry("__MACOSX/._a.png"),
}
PATCHES = {"encrypted": {"flag": 1}, "deflate64": {"method": 9}, "aes-encrypted": {"flag": 1, "method": 99}}
PATCHES["encrypted-macosx"] = PATCHES["encrypted"]  # skipped by the worker, never opened: no refusal


@pytest.mark.parametrize("entry", list(ENTRIES))
def test_import_refuses_a_test_inputs_entry_exactly_when_the_worker_would(entry: str, tmp_path: Path) -> None:
    """One rule: the worker's refusal and the import's carry the same words, and the import names the entry."""
    info = ENTRIES[entry]
    data = _inner_zip(tmp_path / "inner.zip", [(info, b"" if info.filename.endswith("/") else b"x")])
    if entry in PATCHES:
        data = patched_entry(data, info.filename, **PATCHES[entry])
        (tmp_path / "inner.zip").write_bytes(data)
    try:
        safe_extract(tmp_path / "inner.zip", tmp_path / "unpacked")
        worker = None
    except UnsafeZipError as exc:
        worker = exc
    try:
        read_bundle(_bundle(tmp_path, data, as_zip=True)).close()
        problems = []
    except BundleError as exc:
        problems = exc.errors
    if worker is None:
        assert problems == []
    else:
        assert [(p.code, p.message, p.file, p.key) for p in problems] == [
            (worker.code, str(worker), f"{INPUTS}: {info.filename}", KEY)
        ]
