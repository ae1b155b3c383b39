"""The worker's own logic without a server: job → EvaluationJob, the file cache, local overrides."""

from __future__ import annotations

import hashlib
import logging
import zipfile
from pathlib import Path

import pytest

from assay.evaluation import ChunkingSpec, EvaluationLimits
from assay.worker.cache import FileCache
from assay.worker.loop import LocalFiles, Worker


class FakeClient:
    """Serves downloads from a dict of sha256 → bytes, and counts them."""

    base = "http://fake/api/v1/worker"

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.downloads = 0

    def download(self, sha256: str, target: Path) -> Path:
        self.downloads += 1
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(self.files[sha256])
        return target


def _info(data: bytes, name: str) -> dict:
    return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "name": name}


@pytest.fixture
def job_and_client(tmp_path):
    script = tmp_path / "s.zip"
    with zipfile.ZipFile(script, "w") as zf:
        zf.writestr("__init__.py", "def evaluate(*a, **k):\n    return {'result': []}\n")
    files = {"sub": b'{"a": 1}', "ann": b'{"a": 1}', "script": script.read_bytes()}
    infos = {k: _info(v, f"{k}.json" if k != "script" else "evaluation_script.zip") for k, v in files.items()}
    client = FakeClient({infos[k]["sha256"]: files[k] for k in files})
    job = {
        "submission_id": 7,
        "attempt": 1,
        "phase": {"codename": "dev"},
        "submission_file": infos["sub"],
        "annotation": infos["ann"],
        "evaluation_script": infos["script"],
        "submission_metadata": {"id": 7},
        "limits": {"wall_seconds": 30, "memory_bytes": 512 * 2**20, "future_limit": 1},
        "chunking": {"format": "json", "chunk_count": 2, "min_bytes": 0, "future_key": True},
    }
    return job, client


class _NoPool:
    def close(self) -> None:
        pass


def test_job_becomes_an_evaluation_job(job_and_client, tmp_path):
    job, client = job_and_client
    worker = Worker(client, tmp_path / "w", pool=_NoPool())
    evaluation = worker._evaluation_job(job, worker.cache.hold())
    assert evaluation.phase_codename == "dev" and evaluation.submission_metadata == {"id": 7}
    assert evaluation.limits == EvaluationLimits(wall_seconds=30, memory_bytes=512 * 2**20)
    assert evaluation.chunking == ChunkingSpec(format="json", chunk_count=2, min_bytes=0)
    assert evaluation.key == f"{job['evaluation_script']['sha256']}:{job['annotation']['sha256']}"
    assert evaluation.submission_file.read_bytes() == b'{"a": 1}'
    worker._evaluation_job(job, worker.cache.hold())
    assert client.downloads == 3  # the second job found everything in the cache


def test_local_annotation_and_script_override_the_server(job_and_client, tmp_path):
    job, client = job_and_client
    labels = tmp_path / "secret.json"
    labels.write_text("{}")
    folder = tmp_path / "script"
    folder.mkdir()
    (folder / "__init__.py").write_text("def evaluate(*a, **k):\n    return {'result': []}\n")
    local = LocalFiles(annotations={"dev": labels}, evaluation_script=folder)
    worker = Worker(client, tmp_path / "w", pool=_NoPool(), local=local)
    evaluation = worker._evaluation_job(dict(job, annotation=None, evaluation_script=None), worker.cache.hold())
    assert evaluation.annotation_file == labels
    assert zipfile.ZipFile(evaluation.script_zip).namelist() == ["__init__.py"]
    assert client.downloads == 1  # only the submission came from the server


def test_local_script_folder_is_zipped_without_following_symlinks(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the evaluator")
    folder = tmp_path / "script"
    (folder / "__pycache__").mkdir(parents=True)
    (folder / "__init__.py").write_text("")
    (folder / "__pycache__" / "x.pyc").write_bytes(b"")
    (folder / "link.txt").symlink_to(secret)
    zipped = LocalFiles(evaluation_script=folder).script_zip(tmp_path / "cache")
    assert zipfile.ZipFile(zipped).namelist() == ["__init__.py"]
    assert LocalFiles(evaluation_script=folder).script_zip(tmp_path / "cache") == zipped  # named by content
    assert LocalFiles(evaluation_script=zipped).script_zip(tmp_path / "other") == zipped  # a zip is used as is


def test_cache_refuses_names_that_escape(tmp_path):
    cache = FileCache(tmp_path / "cache")
    path = cache.path_for("a" * 64, "../../../etc/passwd")
    assert path.parent == tmp_path / "cache" / ("a" * 64) and path.name == "passwd"
    with pytest.raises(ValueError):
        cache.fetch(FakeClient({}), {"sha256": "../x", "name": "x"})


def test_a_file_carried_by_the_claim_needs_no_download_unless_it_hashes_wrong(tmp_path):
    import base64

    cache = FileCache(tmp_path / "cache")
    client = FakeClient({})
    data = b'{"dev-a0": 1}'
    info = {**_info(data, "preds.json"), "content": base64.b64encode(data).decode()}
    assert cache.fetch(client, info).read_bytes() == data and client.downloads == 0
    other = b'{"dev-a0": 0}'
    client.files[hashlib.sha256(other).hexdigest()] = other
    forged = {**_info(other, "p.json"), "content": base64.b64encode(b"tampered").decode()}
    assert cache.fetch(client, forged).read_bytes() == other and client.downloads == 1  # downloaded instead
    assert not list((tmp_path / "cache").rglob(".part-*"))


def test_making_room_tolerates_files_that_another_slot_renames_or_discards_meanwhile(tmp_path, monkeypatch):
    """CI: with slots, one thread measured the cache while another renamed its ``.part-`` download into place,
    and the vanished file failed the first thread's job ("could not prepare the evaluation")."""
    import os

    cache = FileCache(tmp_path / "cache", max_bytes=10)
    root = tmp_path / "cache"
    kept, old, discarded = root / ("a" * 64), root / ("b" * 64), root / ("c" * 64)
    for entry, data in ((old, b"12345678"), (kept, b"1234"), (discarded, b"1")):
        entry.mkdir()
        (entry / "f").write_bytes(data)
    (kept / ".part-x").write_bytes(b"1")  # another slot's download, renamed into place after the first look
    os.utime(old, (1, 1))  # used longest ago: evicted first
    looked: set[str] = set()

    def gone_after_the_first_look(real):
        def stat(path, *args, **kwargs):
            name = os.fspath(path)
            if name.endswith((".part-x", "c" * 64)):
                if name in looked:
                    raise FileNotFoundError(2, "No such file or directory", name)
                looked.add(name)
            return real(path, *args, **kwargs)

        return stat

    monkeypatch.setattr(os, "stat", gone_after_the_first_look(os.stat))
    monkeypatch.setattr(os, "lstat", gone_after_the_first_look(os.lstat))
    cache._make_room(2)
    assert not old.exists() and (kept / "f").read_bytes() == b"1234"


class _RefusingClient(FakeClient):
    """Refuses reports that carry output (say, a field the server finds too long); accepts plain failures."""

    def __init__(self, status: int) -> None:
        super().__init__({})
        self.status = status
        self.reports: list[dict] = []

    def complete(self, sid: int, attempt: int, report: dict) -> dict:
        from assay.worker.client import ProtocolError, TokenRefused

        self.reports.append(report)
        if self.status in (401, 403):  # as the real client raises it
            raise TokenRefused(f"/complete: {self.status} refused", self.status)
        if set(report) != {"error"}:
            raise ProtocolError(f"/complete: {self.status} refused", self.status)
        return {"status": "failed", "failure_reason": report["error"]}


def test_a_refused_report_becomes_a_plain_failure_instead_of_killing_the_worker(tmp_path):
    client = _RefusingClient(400)
    worker = Worker(client, tmp_path / "w", pool=_NoPool(), containers="off")
    worker._complete(7, 1, {"output": {"result": []}, "error": None, "stdout": "x" * 10, "stderr": ""})
    assert len(client.reports) == 2 and "refused by the server" in client.reports[1]["error"]


def test_a_revoked_token_still_stops_the_worker(tmp_path):
    from assay.worker.client import ProtocolError

    worker = Worker(_RefusingClient(403), tmp_path / "w", pool=_NoPool(), containers="off")
    with pytest.raises(ProtocolError):
        worker._complete(7, 1, {"output": None, "error": "x"})


def test_a_client_without_batched_heartbeats_renews_job_by_job():
    """Test doubles (and any client) with only ``heartbeat``: the loop asks per job, a refused lease "ended"."""
    from assay.worker.client import LeaseLostError, TokenRefused
    from assay.worker.loop import _lease_states

    class _OneByOne:
        def __init__(self, refuse: dict[int, Exception]) -> None:
            self.refuse, self.beats = refuse, []

        def heartbeat(self, sid: int, attempt: int) -> None:
            self.beats.append((sid, attempt))
            if sid in self.refuse:
                raise self.refuse[sid]

    client = _OneByOne({8: LeaseLostError("cancelled")})
    assert _lease_states(client, [(7, 1), (8, 2), (9, 1)]) == ["extended", "ended", "extended"]
    assert client.beats == [(7, 1), (8, 2), (9, 1)]
    with pytest.raises(TokenRefused):
        _lease_states(_OneByOne({7: TokenRefused("revoked", 403)}), [(7, 1)])


def test_the_submission_leaves_the_cache_after_its_job_and_the_challenges_files_stay(job_and_client, tmp_path):
    from assay.evaluation import EvaluationOutcome

    job, client = job_and_client
    predictions = b'{"a": 0}'  # unlike the fixture's, not the same bytes as the annotation
    job["submission_file"] = _info(predictions, "sub.json")
    client.files[job["submission_file"]["sha256"]] = predictions
    client.reports = []
    client.complete = lambda sid, attempt, report: client.reports.append(report) or {"status": "finished"}
    client.heartbeat = lambda sid, attempt: None

    class _Pool(_NoPool):
        def evaluate(self, evaluation, handle=None):
            assert evaluation.submission_file.exists()
            return EvaluationOutcome(
                ok=True,
                output={"result": []},
                stdout="",
                stderr="",
                error=None,
                error_kind=None,
                duration=0.0,
                sandbox="",
            )

    worker = Worker(client, tmp_path / "w", pool=_Pool(), containers="off")
    worker.run_job(job)
    assert client.reports and client.reports[0]["error"] is None
    cached = {p.name for p in (tmp_path / "w" / "cache").iterdir()}
    assert job["submission_file"]["sha256"] not in cached
    assert {job["annotation"]["sha256"], job["evaluation_script"]["sha256"]} <= cached


def test_every_line_about_a_job_names_its_submission_and_attempt(job_and_client, tmp_path, caplog):
    """The worker's lines carry no request id; each line about a job starts ``submission <id> attempt <n>:``
    and holds ``submission_id`` and ``attempt`` as fields (JSON logs), whichever thread wrote it."""
    job, client = job_and_client
    job["attempt"] = 3
    client.heartbeat = lambda sid, attempt: None
    client.complete = lambda sid, attempt, report: {"status": "failed", "failure_reason": report["error"][:20]}

    class _Failing(_NoPool):
        def evaluate(self, evaluation, handle=None):
            raise RuntimeError("the evaluator broke")

    worker = Worker(client, tmp_path / "w", pool=_Failing(), containers="off")
    caplog.set_level(logging.INFO, logger="assay.worker")
    caplog.clear()  # the worker's own start lines
    worker.run_job(job)
    lines = [r for r in caplog.records if r.name == "assay.worker"]
    assert [r.getMessage().split(": ", 1)[1].split(" (")[0] for r in lines] == [
        "evaluating",
        "evaluator failure",
        "failed the evaluator failed",
    ]
    assert all(r.getMessage().startswith("submission 7 attempt 3: ") for r in lines), [r.getMessage() for r in lines]
    assert {(r.submission_id, r.attempt) for r in lines} == {(7, 3)}
    assert lines[1].exc_info is not None  # the traceback stays with its line


def test_a_submission_that_is_also_the_annotation_stays_cached(job_and_client, tmp_path):
    job, _ = job_and_client  # the fixture's submission has the annotation's very bytes
    from assay.worker.loop import _shared

    assert _shared(job) and not _shared(dict(job, annotation=None))
