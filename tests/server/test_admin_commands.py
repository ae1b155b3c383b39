"""``assay admin …`` as an operator runs it: the real command in a fresh process, on a fresh database.

The in-process tests (test_cli_server.py) run inside an already configured Django, so they cannot see
an admin command that touches models before Django is set up; these start ``assay`` with nothing but
its environment (``ASSAY_VAR_DIR``, ``ASSAY_DATABASE_URL``) and read the database it wrote directly.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.factories import DEMO_BUNDLE, REPO

ASSAY = Path(sys.executable).with_name("assay")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not ASSAY.exists(), reason="the assay command is not installed in this venv"),
]


class Site:
    """One server installation: a var folder and an SQLite file, both new."""

    def __init__(self, root: Path) -> None:
        self.db = root / "assay.sqlite3"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("ASSAY_", "DJANGO_"))}
        self.env.update(
            ASSAY_VAR_DIR=str(root / "var"),
            ASSAY_DATABASE_URL=f"sqlite:///{self.db}",
            DJANGO_SUPERUSER_PASSWORD="pw-for-tests",
            COLUMNS="400",  # no wrapping of long paths (tmp_path is longer under pytest-xdist) in what tests read
        )

    def __call__(self, *args: object, code: int = 0) -> str:
        proc = subprocess.run([str(ASSAY), *map(str, args)], capture_output=True, text=True, env=self.env, timeout=180)
        out = proc.stdout + proc.stderr
        assert proc.returncode == code, f"assay {' '.join(map(str, args))} exited {proc.returncode}:\n{out}"
        assert "Traceback" not in out, out
        return out

    def start(self, *args: object) -> subprocess.Popen:
        return subprocess.Popen(
            [str(ASSAY), *map(str, args)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=self.env,
        )

    def rows(self, sql: str) -> list[tuple]:
        with sqlite3.connect(self.db) as db:
            return db.execute(sql).fetchall()


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Site:
    """Migrated once, with an administrator ``root``, through the real commands."""
    s = Site(tmp_path_factory.mktemp("site"))
    s("manage", "migrate", "--verbosity", "0")
    s("manage", "createsuperuser", "--noinput", "--username", "root", "--email", "root@example.org")
    return s


@pytest.mark.parametrize(
    "args",
    [
        ["admin", "import-bundle", DEMO_BUNDLE, "--host-team", "Hosts"],
        ["admin", "worker-token", "create", "--name", "w"],
        ["admin", "worker-token", "list"],
        ["admin", "worker-token", "revoke", "1"],
    ],
    ids=["import-bundle", "token-create", "token-list", "token-revoke"],
)
def test_an_unmigrated_database_is_named_with_the_fix(tmp_path, args):
    site = Site(tmp_path)
    out = site(*args, code=2)
    assert "unapplied migrations" in out and "assay manage migrate" in out and str(site.db) in out


def test_import_bundle_creates_updates_and_refuses(site, tmp_path):
    out = site("admin", "import-bundle", DEMO_BUNDLE, "--host-team", "Hosts", "--create-team", "--user", "root",
               "--json")  # fmt: skip
    report = json.loads(out)
    assert report["imported"] is True and report["created"] is True
    cid = report["challenge_id"]
    assert site.rows(f"SELECT title FROM challenges_challenge WHERE id = {cid}") == [
        ("Assay Demo — Spot the Even Numbers",)
    ]
    assert site.rows(
        f"SELECT codename FROM challenges_challengephase WHERE challenge_id = {cid} ORDER BY codename"
    ) == [
        ("dev",),
        ("test",),
    ]

    # the same folder again, onto that challenge: updated in place, in words
    out = site("admin", "import-bundle", DEMO_BUNDLE, "--host-team", "Hosts", "--challenge", cid)
    assert f"updated challenge 'Assay Demo — Spot the Even Numbers' (id {cid})" in out
    assert site.rows("SELECT count(*) FROM challenges_challenge") == [(1,)]

    # a broken bundle: exit 1, the problem named with its file and line, nothing imported
    bad = shutil.copytree(DEMO_BUNDLE, tmp_path / "bad")
    (bad / "templates" / "description.html").unlink()
    out = site("admin", "import-bundle", bad, "--host-team", "Hosts", code=1)
    assert "templates/description.html" in out and "not imported" in out
    problems = json.loads(site("admin", "import-bundle", bad, "--host-team", "Hosts", "--json", code=1))["problems"]
    assert problems[0]["code"] == "file_not_found" and problems[0]["line"] == 5
    out = site("admin", "import-bundle", tmp_path / "missing", "--host-team", "New", "--create-team", "--user", "root",
               code=1)  # fmt: skip
    assert "no such file or folder" in out
    assert site.rows("SELECT count(*) FROM challenges_challenge") == [(1,)]
    assert site.rows("SELECT name FROM teams_hostteam") == [("Hosts",)]  # the refused import made no team

    # refusals that are not about the bundle
    out = site("admin", "import-bundle", DEMO_BUNDLE, "--host-team", "Nobody", code=1)
    assert "no host team named 'Nobody' (pass --create-team to create it)" in out
    out = site("admin", "import-bundle", DEMO_BUNDLE, "--host-team", "Hosts", "--challenge", 999, code=1)
    assert "no challenge with id 999" in out


def test_worker_tokens(site):
    made = json.loads(site("admin", "worker-token", "create", "--name", "gpu box", "--json"))
    assert made["queue"] == "default" and made["token"].startswith("aw_")
    listed = json.loads(site("admin", "worker-token", "list", "--json"))
    assert [(t["id"], t["name"], t["revoked"]) for t in listed] == [(made["id"], "gpu box", False)]
    assert f"revoked token {made['id']}" in site("admin", "worker-token", "revoke", made["id"])
    assert json.loads(site("admin", "worker-token", "list", "--json"))[0]["revoked"] is True
    assert "no token with id 999" in site("admin", "worker-token", "revoke", 999, code=1)
    assert "no challenge with id 999" in site("admin", "worker-token", "create", "--name", "x", "--challenge", 999,
                                              code=1)  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, bytes, dict]:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    try:
        with urllib.request.build_opener(NoRedirect).open(url, timeout=10) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


def _serving(proc: subprocess.Popen, base: str, seconds: float = 120) -> dict:
    """Wait for ``/healthz`` to answer 200; the server's output if it exits first."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the server exited {proc.returncode}:\n{proc.stdout.read()}")
        try:
            status, body, _ = _get(base + "/healthz")
            if status == 200:
                return json.loads(body)
        except OSError:
            pass
        time.sleep(0.3)
    pytest.fail("the server did not answer /healthz in time")


def _stop(proc: subprocess.Popen) -> str:
    proc.terminate()
    try:
        out, _ = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out


def test_serve_migrates_a_fresh_database_and_serves(tmp_path):
    site = Site(tmp_path)
    port = _free_port()
    proc = site.start("serve", "--port", port)
    try:
        assert _serving(proc, f"http://127.0.0.1:{port}") == {"status": "ok"}  # liveness only
        status, body, _ = _get(f"http://127.0.0.1:{port}/readyz?skip=workers")
        assert status == 200 and json.loads(body)["checks"]["database"]["ok"] is True, body
        status, body, _ = _get(f"http://127.0.0.1:{port}/api/challenges/challenge/all/all/all")
        assert status == 200 and json.loads(body)["count"] == 0
    finally:
        out = _stop(proc)
    assert "Traceback" not in out, out
    assert site.rows("SELECT count(*) FROM django_migrations")[0][0] > 0


def test_demo_sets_up_and_serves_the_demo_from_nothing(tmp_path):
    """What ``make demo`` runs, on a fresh var folder: the demo challenge and the two audit templates
    (built into the var folder) are listed on EvalAI's API, and the terms link the evalai CLI prints
    leads to its terms page."""
    site = Site(tmp_path)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    audits = [
        arg
        for name in ("audit-dr-grading", "audit-breast-cancer")
        for arg in ("--audit-template", REPO / "examples" / name)
    ]
    proc = site.start("demo", "--port", port, "--bundle", DEMO_BUNDLE, "--container-bundle", tmp_path / "none", *audits)
    try:
        _serving(proc, base)
        status, body, _ = _get(base + "/api/challenges/challenge/present/approved/public")
        titles = {c["title"]: c["id"] for c in json.loads(body)["results"]}
        assert status == 200 and set(titles) == {
            "Assay Demo — Spot the Even Numbers",
            "Assay Audit Template — Diabetic Retinopathy Grading",
            "Assay Audit Template — Breast Cancer Classification",
        }
        cid = titles["Assay Demo — Spot the Even Numbers"]
        status, _, headers = _get(f"{base}/web/challenges/challenge-page/{cid}/evaluation")
        assert status == 302 and headers["Location"] == f"/challenges/{cid}/terms"
    finally:
        out = _stop(proc)
    assert "Demo users: admin, host, participant, auditor" in out and f"(id {cid}) imported" in out
    assert out.count("auditor audits it") == 2 and (tmp_path / "var" / "demo" / "audit-dr-grading").is_dir()
    assert "Traceback" not in out, out
