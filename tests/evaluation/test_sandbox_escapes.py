"""Escape attempts a hostile (or careless) evaluation script could make, each run for real in bwrap.

Every test here uses the ``bwrap_pool`` fixture, which skips (with the reason) only where bubblewrap
cannot run at all. Each attempt must fail *and* the failure must be reported, not hidden.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from pathlib import Path

import pytest

from assay.evaluation import EvaluationLimits, EvaluatorPool
from assay.evaluation.venvs import sandbox_pip_environment

from .conftest import ACCURACY_SCRIPT, job_for, require_bwrap

PROBE = """
import json, os

def evaluate(test_annotation_file, user_submission_file, phase_codename, **kwargs):
    probe = json.load(open(user_submission_file))
    report = run(probe)
    return {"result": [{"probe": {"done": 1}}], "submission_result": report}
"""

LIMITS = EvaluationLimits(wall_seconds=20, cpu_seconds=20, memory_bytes=1024**3, max_processes=32)


def _probe(pool: EvaluatorPool, tmp_path: Path, body: str, probe: dict, limits: EvaluationLimits = LIMITS):
    files = {"__init__.py": PROBE + "\n" + body}
    outcome = pool.evaluate(job_for(tmp_path, files, submission=probe, limits=limits))
    assert outcome.ok, outcome
    return outcome.output["submission_result"]


def test_network_is_unreachable(bwrap_pool: EvaluatorPool, tmp_path: Path) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    accepted: list[object] = []
    server.settimeout(5)

    def accept() -> None:
        try:
            accepted.append(server.accept())
        except OSError:
            pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    body = """
import socket
def run(probe):
    out = {}
    for host in ("127.0.0.1", probe["host_ip"]):
        s = socket.socket()
        s.settimeout(2)
        try:
            s.connect((host, probe["port"]))
            out[host] = "connected"
        except OSError as exc:
            out[host] = f"{type(exc).__name__}: {exc}"
    try:
        socket.getaddrinfo("pypi.org", 443)
        out["dns"] = "resolved"
    except OSError as exc:
        out["dns"] = str(exc)
    out["interfaces"] = sorted(name for _, name in socket.if_nameindex())
    return out
"""
    host_ip = _host_ip()
    report = _probe(bwrap_pool, tmp_path, body, {"port": server.getsockname()[1], "host_ip": host_ip})
    server.close()
    assert "Connection refused" in report["127.0.0.1"]
    assert report[host_ip] != "connected"
    assert report["dns"] != "resolved"
    assert report["interfaces"] == ["lo"]
    assert not accepted


def _host_ip() -> str:
    """An address of this machine other than loopback, when it has one (for the unreachable check)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: no packet is sent for a UDP connect
            return s.getsockname()[0]
    except OSError:
        return "127.0.0.2"


def test_other_phases_annotations_and_host_files_are_invisible(bwrap_pool: EvaluatorPool, tmp_path: Path) -> None:
    other = tmp_path / "data" / "phase_2_annotations.json"
    other.parent.mkdir(parents=True, exist_ok=True)
    other.write_text('{"secret": "test labels of another phase"}')
    body = """
def run(probe):
    out = {}
    for path in probe["paths"]:
        try:
            with open(path) as fh:
                out[path] = "READ: " + fh.read(100)
        except OSError as exc:
            out[path] = type(exc).__name__
    out["input"] = sorted(os.listdir("/input"))
    out["root"] = sorted(os.listdir("/"))
    return out
"""
    # The worker's own code (this repository) and settings are invisible; only its venv is bound.
    paths = [
        str(other), str(tmp_path / "data"), "/etc/shadow", "/root/.bashrc", str(Path.home() / ".profile"),
        str(Path(__file__).resolve()), str(Path(__file__).resolve().parents[2] / "pyproject.toml"),
    ]  # fmt: skip
    report = _probe(bwrap_pool, tmp_path, body, {"paths": paths})
    for path in paths:
        assert not report[path].startswith("READ"), (path, report[path])
    assert report[str(other)] == "FileNotFoundError"
    assert report["input"] == ["annotations.json"]  # only this phase's annotation file
    assert "home" not in report["root"]


def test_worker_token_is_not_visible(bwrap_pool: EvaluatorPool, tmp_path: Path, monkeypatch) -> None:
    token = "assay-worker-token-" + os.urandom(8).hex()
    monkeypatch.setenv("ASSAY_WORKER_TOKEN", token)
    body = """
import glob
def run(probe):
    found = {"env": dict(os.environ)}
    for pid in {os.getppid(), 1, probe["worker_pid"], probe["worker_ppid"]}:
        try:
            found[f"/proc/{pid}/environ"] = open(f"/proc/{pid}/environ", "rb").read().decode(errors="replace")
        except OSError as exc:
            found[f"/proc/{pid}/environ"] = type(exc).__name__
    for path in glob.glob("/proc/[0-9]*/environ") + glob.glob("/proc/[0-9]*/cmdline"):
        try:
            found[path] = open(path, "rb").read().decode(errors="replace")
        except OSError as exc:
            found[path] = type(exc).__name__
    found["fds"] = sorted(os.listdir("/proc/self/fd"))
    return found
"""
    report = _probe(bwrap_pool, tmp_path, body, {"worker_pid": os.getpid(), "worker_ppid": os.getppid()})
    assert token not in json.dumps(report)
    assert "ASSAY_WORKER_TOKEN" not in report["env"]
    assert set(report["env"]) <= {
        "PATH",
        "HOME",
        "TMPDIR",
        "LANG",
        "LC_ALL",
        "MALLOC_ARENA_MAX",
        "ASSAY_OUTPUT_DIR",
        "PWD",
        *sandbox_pip_environment(Path("/env"), Path("/wheels")),  # the script's venv and offline pip
    }
    # stdin (/dev/null), the two capture pipes, the two protocol pipes, and the listing's own fd.
    assert len(report["fds"]) <= 7, report["fds"]


def test_writes_outside_the_output_folder_fail(bwrap_pool: EvaluatorPool, tmp_path: Path) -> None:
    body = """
import sys
def run(probe):
    out = {}
    pkg = os.path.dirname(__file__)
    targets = probe["targets"] + [os.path.join(pkg, "pwned.py"), "/input/annotations.json",
                                  "/submission/new.json", "/usr/pwned", "/pwned", "/etc/passwd"]
    for path in targets:
        try:
            with open(path, "a") as fh:
                fh.write("pwned")
            out[path] = "written"
        except OSError as exc:
            out[path] = type(exc).__name__
    with open(os.path.join(os.environ["ASSAY_OUTPUT_DIR"], "ok.txt"), "w") as fh:
        fh.write("fine")
    out["output"] = "written"
    out["uid"] = os.getuid()
    out["caps"] = [l for l in open("/proc/self/status") if l.startswith(("CapEff", "CapPrm", "NoNewPrivs"))]
    return out
"""
    host_targets = [str(tmp_path / "pwned.txt"), str(tmp_path / "data" / "annotations.json"), "/root/pwned"]
    report = _probe(bwrap_pool, tmp_path, body, {"targets": host_targets})
    for path, result in report.items():
        if path.startswith("/") and path not in host_targets:
            assert result != "written", path
    for path in host_targets:
        # Inside, /tmp is a private tmpfs: a write there may "succeed" but must never reach the host.
        assert not Path(path).exists() or "pwned" not in Path(path).read_text()
    assert not list((tmp_path / "work" / "scripts").rglob("pwned*"))
    assert report["output"] == "written"
    assert report["uid"] == 65534
    assert "CapEff:\t0000000000000000\n" in report["caps"]
    assert "NoNewPrivs:\t1\n" in report["caps"]


BOMB = """
import os

def evaluate(*args, **kwargs):
    while True:
        try:
            os.fork()
        except OSError:
            pass
"""

FORK_COUNT = """
import time
def run(probe):
    children = 0
    try:
        while True:
            if os.fork() == 0:
                time.sleep(30)
                os._exit(0)
            children += 1
    except OSError as exc:
        return {"children": children, "errno": exc.errno}
"""


@pytest.mark.parametrize("use_cgroups", [True, False], ids=["cgroup+nproc", "nproc-only"])
def test_fork_bomb_is_stopped(tmp_path: Path, use_cgroups: bool) -> None:
    require_bwrap()
    nonce = f"# {uuid.uuid4().hex}\n"  # a unique script, so its processes can be told from others'
    with EvaluatorPool(workdir=tmp_path / "work", sandbox="bwrap", use_cgroups=use_cgroups) as pool:
        job = job_for(tmp_path, {"__init__.py": PROBE + FORK_COUNT + nonce}, submission={}, limits=LIMITS)
        sleepers = _package_of(job)
        outcome = pool.evaluate(job)
        assert outcome.ok, outcome
        report = outcome.output["submission_result"]
        assert report["errno"] == 11  # EAGAIN
        assert report["children"] < 32
        assert _live_processes(sleepers) >= report["children"]
        # A real bomb (every process forks forever) ends at the wall limit; the machine stays usable.
        limits = EvaluationLimits(wall_seconds=2, cpu_seconds=60, memory_bytes=1024**3, max_processes=32)
        bomb = job_for(tmp_path / "bomb", {"__init__.py": BOMB + nonce}, limits=limits)
        outcome = pool.evaluate(bomb)
        assert outcome.error_kind == "timeout"  # the pool's own 2 s wall clock ended it
        assert _live_processes(_package_of(bomb)) == 0  # the bomb's whole tree was killed
        assert pool.evaluate(job_for(tmp_path / "good", ACCURACY_SCRIPT)).ok
    assert _live_processes(sleepers) == 0  # close() ended every evaluator, with its children


def _package_of(job) -> str:
    """The package name the evaluator imports: it is in the command line of all its processes."""
    from assay.evaluation.scripts import file_sha256

    return f"challenge_{file_sha256(job.script_zip)[:16]}"


def _live_processes(marker: str) -> int:
    """Live (non-zombie) processes whose command line contains ``marker``.

    Counting by uid 65534 would also count other sandboxes running on the same machine.
    """
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if marker.encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                    stat = Path(f"/proc/{entry}/stat").read_text()
                    count += stat[stat.rfind(")") + 2] != "Z"
            except OSError:
                pass
    return count


def test_allocating_10_gb_is_a_memory_error(bwrap_pool: EvaluatorPool, tmp_path: Path) -> None:
    files = {"__init__.py": "def evaluate(*a, **k):\n    block = bytearray(10 * 1024**3)\n    return {'result': []}\n"}
    limits = EvaluationLimits(wall_seconds=20, memory_bytes=512 * 1024**2)
    outcome = bwrap_pool.evaluate(job_for(tmp_path, files, limits=limits))
    assert outcome.error_kind == "memory"
    assert outcome.error == "evaluation ran out of memory (limit 512 MiB)"
    assert bwrap_pool.evaluate(job_for(tmp_path / "good", ACCURACY_SCRIPT)).ok


def test_memory_cgroup_kill_is_reported_as_memory(tmp_path: Path) -> None:
    """Without RLIMIT_AS (rlimit_as=False, for CUDA/JAX-style scripts) the memory cgroup must catch it."""
    require_bwrap()
    with EvaluatorPool(workdir=tmp_path / "work", sandbox="bwrap") as pool:
        files = {
            "__init__.py": """
                def evaluate(*a, **k):
                    blocks = []
                    for _ in range(64):
                        blocks.append(bytearray(b"x") * (64 * 1024**2))  # touched, so really resident
                    return {"result": []}
            """
        }
        limits = EvaluationLimits(wall_seconds=30, memory_bytes=256 * 1024**2, tmp_bytes=16 * 1024**2, rlimit_as=False)
        outcome = pool.evaluate(job_for(tmp_path, files, limits=limits))
        if "no cgroup" in outcome.sandbox:
            pytest.skip(f"no memory cgroup on this machine: {outcome.sandbox}")
        assert outcome.error_kind == "memory", outcome
        assert outcome.error == "evaluation ran out of memory (limit 256 MiB)"


def test_printing_1_gb_is_capped_quickly(bwrap_pool: EvaluatorPool, tmp_path: Path) -> None:
    files = {
        "__init__.py": """
            import sys
            def evaluate(*a, **k):
                block = "y" * (1024 * 1024 - 1)
                for _ in range(1024):
                    print(block)
                return {"result": [{"s": {"printed_mib": 1024}}]}
        """
    }
    limits = EvaluationLimits(wall_seconds=60, memory_bytes=1024**3, max_output_bytes=64 * 1024)
    outcome = bwrap_pool.evaluate(job_for(tmp_path, files, limits=limits))
    assert outcome.ok, outcome.error  # within its 60 s wall clock
    assert len(outcome.stdout) < 65 * 1024
    assert "[truncated 1073676288 bytes" in outcome.stdout
    assert _disk_use(tmp_path) < 5 * 1024**2  # nothing was spooled to disk


def _disk_use(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def test_tmp_is_a_sized_private_tmpfs(bwrap_pool: EvaluatorPool, tmp_path: Path) -> None:
    body = """
def run(probe):
    written = 0
    try:
        with open("/tmp/fill", "wb") as fh:
            for _ in range(64):
                fh.write(b"z" * 1024 * 1024)
                fh.flush()
                written += 1
    except OSError as exc:
        return {"mib": written, "error": exc.errno}
    return {"mib": written, "error": None}
"""
    limits = EvaluationLimits(wall_seconds=20, memory_bytes=1024**3, tmp_bytes=8 * 1024**2)
    report = _probe(bwrap_pool, tmp_path, body, {}, limits)
    assert report["mib"] <= 8
    assert report["error"] in (27, 28)  # EFBIG (RLIMIT_FSIZE) or ENOSPC (tmpfs full)


WORKER = """
import sys, threading, time
from pathlib import Path
sys.path[:0] = [sys.argv[2]]
from assay.evaluation import EvaluatorPool, EvaluationLimits
from tests.evaluation.conftest import job_for

tmp = Path(sys.argv[1])
pool = EvaluatorPool(workdir=tmp / "work", sandbox="bwrap")
files = {"__init__.py": "def evaluate(*a, **k):\\n    while True:\\n        pass\\n# " + sys.argv[3]}
job = job_for(tmp, files, limits=EvaluationLimits(wall_seconds=120, cpu_seconds=120))
threading.Thread(target=pool.evaluate, args=(job,), daemon=True).start()
time.sleep(1.0)
print("busy", next(iter(pool._busy.values())).spec.script.package.split(".")[-1], flush=True)
time.sleep(120)
"""


def test_sandboxes_die_with_the_worker(tmp_path: Path) -> None:
    """A worker killed with SIGKILL leaves no evaluator behind, even one busy in a loop."""
    require_bwrap()
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(tmp_path), str(root), uuid.uuid4().hex],
        stdout=subprocess.PIPE,
        text=True,
        cwd=root,
    )
    try:
        assert worker.stdout is not None
        word, package = worker.stdout.readline().split()
        assert word == "busy"
        assert _live_processes(package) >= 1
    finally:
        worker.kill()
        worker.wait()
    deadline = time.monotonic() + 10
    while _live_processes(package) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _live_processes(package) == 0
    # The killed worker could not remove its cgroups; the next pool sweeps such leftovers.
    from assay.evaluation.cgroups import detect_cgroups, group_holds_only_zombies, sweep_stale_groups

    support = detect_cgroups()
    leftovers: list[Path] = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        sweep_stale_groups(support)
        leftovers = [p for base in support.bases.values() for p in base.glob(f"assay-eval-{worker.pid}-*")]
        if not leftovers:
            break
        time.sleep(0.2)
    # A group can outlive the sweep only while its exited processes wait for init to reap them
    # (some CI containers' init never does); nothing may still run in it.
    assert all(group_holds_only_zombies(p) for p in leftovers), leftovers
