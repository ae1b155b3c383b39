"""``assay data …`` against a live server (issue 16 item 2): a host pushes a folder as a new package and a second
version; a participant is refused the inputs, requests access, is approved by user name, downloads the inputs
(each checked against its SHA-256; labels never listed nor fetched) and the download shows in the host's log
with ``via cli``; a denied user stays refused; bytes that do not match the listed hash are never written; and
hostile folders, archives and server-named paths are refused with a clear error."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import pytest
import typer

from tests.cli.test_client import run  # noqa: F401  (the CLI runner fixture)

pytestmark = pytest.mark.django_db(transaction=True)

INPUTS = {"inputs/cases.csv": b"case_id\ndr-0001\ndr-0002\n", "inputs/images/dr-0001.txt": b"pixels"}
LABELS = {"labels/test.json": b'{"dr-0001": 2, "dr-0002": 0}'}
METADATA = {"metadata/cases.csv": b"case_id,camera\ndr-0001,handheld\ndr-0002,desktop-A\n"}


def folder(root: Path, files: dict[str, bytes]) -> Path:
    for path, data in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    return root


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    """Tables and messages unwrapped: the consoles fix their width when imported (80 columns under xdist)."""
    from assay.cli.output import console, err_console

    for printer in (console, err_console):
        monkeypatch.setattr(printer, "_width", 400)


def flat(out: str) -> str:
    """The output with the console's line wrapping undone (its width depends on where the tests run)."""
    return " ".join(out.split())


def as_user(run, url: str, name: str) -> None:  # noqa: F811
    run("login", "--server", url, "-u", name, "--password", "pw")


def test_push_request_approve_download_and_log(live_server, world, users, run, tmp_path):  # noqa: F811
    url = live_server.url
    data = folder(tmp_path / "dr", {**INPUTS, **LABELS, **METADATA, "README.txt": b"left out"})
    card = tmp_path / "card.json"
    card.write_text(json.dumps({"source": "Synthetic.", "licence": "CC0"}))

    as_user(run, url, "host1")
    out = run("data", "push", str(data), "dr-test", "--title", "DR test set", "--card", str(card))
    assert "dr-test v1" in out and "1 labels" in out and "2 inputs" in out and "README.txt" in out
    relabelled = folder(tmp_path / "dr2", {**INPUTS, "labels/test.json": b'{"dr-0001": 3, "dr-0002": 0}'})
    with zipfile.ZipFile(tmp_path / "v2.zip", "w") as zf:
        for path, content in {**INPUTS, "labels/test.json": (relabelled / "labels/test.json").read_bytes()}.items():
            zf.writestr(path, content)
    pushed = json.loads(run("data", "push", str(tmp_path / "v2.zip"), "dr-test", "--notes", "relabelled", "--json"))
    assert pushed["pushed"]["number"] == 2 and pushed["licence"] == "CC0" and pushed["access"] == "on_request"
    again = run("data", "push", str(tmp_path / "v2.zip"), "dr-test", code=1)
    assert "version 2 already" in again

    as_user(run, url, "alice")
    listed = json.loads(run("data", "list", "--json"))
    assert [(p["slug"], p["has_access"]) for p in listed] == [("dr-test", False)]
    shown = run("data", "show", "dr-test")
    assert "inputs/cases.csv" in shown and "labels/" not in shown and "assay data request dr-test" in shown
    refused = run("data", "download", "dr-test", "--to", str(tmp_path / "early"), code=1)
    assert "request access" in refused and not (tmp_path / "early" / "inputs" / "cases.csv").exists()
    assert "assay data show dr-test" in refused  # the next step, not the generic hint about teams
    out = run("data", "request", "dr-test", "--reason", "Validating a grader.")
    assert "requested" in out and "pending" in out

    as_user(run, url, "host1")
    pending = json.loads(run("data", "requests", "dr-test", "--json"))
    assert [(r["user"], r["status"], r["reason"]) for r in pending] == [("alice", "pending", "Validating a grader.")]
    assert "approved" in run("data", "approve", "dr-test", "alice", "--note", "ok")

    as_user(run, url, "alice")
    got = json.loads(run("data", "download", "dr-test", "--to", str(tmp_path / "got"), "--json"))
    assert got["version"] == 2 and sorted(f["path"] for f in got["files"]) == sorted(INPUTS)
    for path, content in INPUTS.items():
        assert (tmp_path / "got" / path).read_bytes() == content
    assert not (tmp_path / "got" / "labels").exists()
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "got" / "inputs" / "cases.csv").stat().st_mode & 0o777 == 0o666 & ~mask  # not private
    refused = run("data", "download", "dr-test", "labels/test.json", "--to", str(tmp_path / "got"), code=2)
    assert "not yours to read" in refused
    one = run("data", "download", "dr-test", "inputs/cases.csv", "--version", "1", "--to", str(tmp_path / "v1"))
    assert "checked" in one and (tmp_path / "v1" / "inputs" / "cases.csv").read_bytes() == INPUTS["inputs/cases.csv"]
    assert [r["status"] for r in json.loads(run("data", "requests", "dr-test", "--json"))] == ["approved"]

    as_user(run, url, "host1")
    log = json.loads(run("data", "log", "dr-test", "--json"))
    assert sorted((r["user"], r["version"], r["path"], r["via"]) for r in log) == [
        ("alice", 1, "inputs/cases.csv", "cli"),
        ("alice", 2, "inputs/cases.csv", "cli"),
        ("alice", 2, "inputs/images/dr-0001.txt", "cli"),
    ]
    assert "alice" in run("data", "log", "dr-test")
    owner = json.loads(run("data", "download", "dr-test", "labels/test.json", "--to", str(tmp_path / "h"), "--json"))
    assert owner["files"][0]["path"] == "labels/test.json"  # the host team reads its labels

    as_user(run, url, "bob")
    run("data", "request", "dr-test", "--reason", "Curious.")
    as_user(run, url, "host1")
    assert "denied" in run("data", "deny", "dr-test", "bob", "--note", "not for this")
    assert "no access request from 'carol'" in run("data", "deny", "dr-test", "carol", code=2)
    as_user(run, url, "bob")
    assert "request access" in run("data", "download", "dr-test", "--to", str(tmp_path / "bob"), code=1)
    assert "only the package's host team" in run("data", "log", "dr-test", code=1)
    missing = run("data", "show", "nope", code=1)
    assert "no such data package" in missing and "assay data list" in missing


def test_bytes_that_do_not_match_the_listed_hash_are_never_written(live_server, world, users, run, tmp_path):  # noqa: F811
    from assay.server.data_packages.models import DataPackageFile

    as_user(run, live_server.url, "host1")
    run("data", "push", str(folder(tmp_path / "d", INPUTS)), "tampered", "--title", "T", "--access", "public")
    stored = DataPackageFile.objects.get(path="inputs/cases.csv")
    from django.core.files.storage import default_storage

    with open(default_storage.path(stored.file.name), "wb") as fh:
        fh.write(b"case_id\nXX-0001\nXX-0002\n")  # the same size, other bytes
    out = run("data", "download", "tampered", "inputs/cases.csv", "--to", str(tmp_path / "out"), code=1)
    assert "are not the file the server lists" in flat(out) and "nothing was written" in flat(out)
    assert not (tmp_path / "out" / "inputs" / "cases.csv").exists()
    assert not [p for p in (tmp_path / "out" / "inputs").iterdir()]  # no partial file left behind


def test_hostile_pushes_are_refused_before_anything_is_sent(live_server, world, users, run, tmp_path):  # noqa: F811
    from assay.server.data_packages.models import DataPackage

    as_user(run, live_server.url, "host1")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "none of the folders" in flat(run("data", "push", str(empty), "x1", "--title", "X", code=2))
    linked = folder(tmp_path / "linked", INPUTS)
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the server")
    os.symlink(secret, linked / "inputs" / "link.txt")
    assert "symbolic link" in flat(run("data", "push", str(linked), "x2", "--title", "X", code=2))
    (tmp_path / "notazip.zip").write_bytes(b"plain text")
    assert "not a .zip" in flat(run("data", "push", str(tmp_path / "notazip.zip"), "x3", "--title", "X", code=2))
    assert "give --title" in flat(run("data", "push", str(folder(tmp_path / "ok", INPUTS)), "x4", code=2))
    with zipfile.ZipFile(tmp_path / "slip.zip", "w") as zf:
        zf.writestr("inputs/../../etc/passwd", b"x")
    out = run("data", "push", str(tmp_path / "slip.zip"), "x5", "--title", "X", code=1)
    assert "outside the archive" in flat(out)  # the server's refusal, printed
    assert list(DataPackage.objects.values_list("slug", flat=True)) == ["x5"]  # created, no version
    assert "invalid" in run("data", "push", str(folder(tmp_path / "ok2", INPUTS)), "Bad Slug", "--title", "X", code=1)


@pytest.mark.parametrize("path", ["../escape.txt", "/etc/passwd", "inputs/../../x", "inputs//x", "a\\b", ""])
def test_a_path_the_server_names_cannot_leave_the_target_folder(tmp_path, path):
    from assay.cli.client_data import _target

    with pytest.raises(typer.Exit):
        _target(tmp_path, path)
    assert _target(tmp_path, "inputs/a/b.png") == tmp_path / "inputs" / "a" / "b.png"
