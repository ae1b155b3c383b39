"""The process sandbox for code bundles, with real bubblewrap: good bundles, hostile ones, and the contract.

Skipped, with the reason, where bwrap cannot sandbox (not installed, or user namespaces forbidden).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from assay.evaluation.cgroups import detect_cgroups
from assay.evaluation.containers import ContainerRun, ContainerUnavailable, run_static_dataset
from assay.evaluation.containers.process_backend import ProcessBackend
from assay.evaluation.handles import STOPPED, RunHandle
from assay.evaluation.limits import EvaluationLimits
from assay.evaluation.sandbox import SandboxReport, detect_sandbox

LIMITS = EvaluationLimits(
    wall_seconds=30, cpu_seconds=30, memory_bytes=256 * 1024**2, max_processes=16, tmp_bytes=16 * 1024**2
)
COUNT_SH = """n=0; while read -r line; do n=$((n+1)); done < /input/inputs.txt
printf '{"predictions": %s}\\n' "$n" > "$SUBMISSION_PATH/submission.json"; echo "predicted $n as $(id -u) in $PWD"
"""
COUNT_PY = """import helper, json, os
n = len(open("/input/inputs.txt").read().split())
json.dump({"predictions": helper.double(n) // 2}, open(os.environ["SUBMISSION_PATH"] + "/submission.json", "w"))
print(f"predicted {n} as {os.getuid()} in {os.getcwd()}")
"""


@pytest.fixture(scope="module")
def sandbox() -> SandboxReport:
    report = detect_sandbox()
    if not report.usable:
        pytest.skip(f"bubblewrap cannot sandbox here: {report.reason}")
    return report


@pytest.fixture
def backend(sandbox: SandboxReport, tmp_path: Path) -> ProcessBackend:
    return ProcessBackend(tmp_path / "runs", sandbox=sandbox)


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    """The phase's inputs, with the labels lying right next to them on the host."""
    folder = tmp_path / "data" / "inputs"
    folder.mkdir(parents=True)
    (folder / "inputs.txt").write_text("a\nb\nc\n")
    (tmp_path / "data" / "labels.txt").write_text("SECRET-LABELS\n")
    return folder


def bundle(tmp_path: Path, files: dict[str, str], name: str = "code") -> Path:
    folder = tmp_path / name
    folder.mkdir()
    for path, text in files.items():
        (folder / path).write_text(text)
    return folder


def run(backend: ProcessBackend, code: Path, inputs: Path, tmp_path: Path, limits: EvaluationLimits = LIMITS):
    return run_static_dataset(backend, str(code), inputs, tmp_path / "job", limits=limits)


@pytest.mark.parametrize(
    "files", [{"run.sh": COUNT_SH}, {"main.py": COUNT_PY, "helper.py": "def double(n):\n    return 2 * n\n"}]
)
def test_a_good_bundle_writes_its_predictions(backend: ProcessBackend, inputs: Path, tmp_path: Path, files) -> None:
    result = run(backend, bundle(tmp_path, files), inputs, tmp_path)
    assert result.ok, (result.error, result.outcome)
    assert result.predictions is not None and result.predictions.read_text().strip() == '{"predictions": 3}'
    assert result.outcome.stdout.strip() == "predicted 3 as 65534 in /code"
    assert result.sandbox.startswith("process sandbox (bwrap")


def test_run_sh_wins_over_main_py(backend: ProcessBackend, inputs: Path, tmp_path: Path) -> None:
    code = bundle(tmp_path, {"run.sh": COUNT_SH, "main.py": "raise SystemExit(3)"})
    assert run(backend, code, inputs, tmp_path).ok


def test_it_sees_only_its_mounts_and_environment(
    backend: ProcessBackend, inputs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASSAY_WORKER_TOKEN", "aw_secret_token")
    cache = tmp_path / "worker" / "cache" / ("a" * 64)
    cache.mkdir(parents=True)
    (cache / "annotation.txt").write_text("CACHED-LABELS\n")
    labels = tmp_path / "data" / "labels.txt"
    probe = f"""for f in {labels} {cache}/annotation.txt {inputs.parent}/labels.txt /input/../labels.txt; do
  cat "$f" 2>/dev/null && echo "READ $f"; done
ls -a / > /output/root.txt; env > /output/env.txt; ls /input > /output/input.txt; echo '{{}}' > /output/submission.json
"""
    result = run(backend, bundle(tmp_path, {"run.sh": probe}), inputs, tmp_path)
    assert result.ok, (result.error, result.outcome)
    output = result.predictions.parent  # type: ignore[union-attr]
    assert "LABELS" not in result.outcome.stdout and "READ" not in result.outcome.stdout
    assert (output / "input.txt").read_text().split() == ["inputs.txt"]
    root = set((output / "root.txt").read_text().split())
    assert {"code", "input", "output", "tmp", "usr"} <= root and not root & {"root", "home", "work", "var", "srv"}
    env = dict(line.split("=", 1) for line in (output / "env.txt").read_text().splitlines() if "=" in line)
    assert "ASSAY_WORKER_TOKEN" not in env and env["HOME"] == "/tmp" and env["INPUT_PATH"] == "/input"


def test_it_cannot_reach_the_network(backend: ProcessBackend, inputs: Path, tmp_path: Path) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    accepted: list[object] = []

    def accept() -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not accepted:
            try:
                accepted.append(listener.accept())
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept)
    thread.start()
    probe = f"""import json, socket
found = {{}}
for host, port in (("127.0.0.1", {port}), ("1.1.1.1", 53), ("10.0.0.1", 80)):
    try:
        socket.create_connection((host, port), timeout=3).close()
        found[host] = "connected"
    except OSError as exc:
        found[host] = type(exc).__name__
json.dump(found, open("/output/submission.json", "w"))
"""
    try:
        result = run(backend, bundle(tmp_path, {"main.py": probe}), inputs, tmp_path)
    finally:
        thread.join()
        listener.close()
    assert result.ok, (result.error, result.outcome)
    found = result.predictions.read_text()  # type: ignore[union-attr]
    assert "connected" not in found and not accepted, found


def test_it_cannot_write_its_inputs_or_code(backend: ProcessBackend, inputs: Path, tmp_path: Path) -> None:
    probe = """for f in /input/inputs.txt /input/new.txt /code/run.sh /code/new.txt /new.txt /usr/new.txt; do
  (echo x >> "$f") 2>/dev/null && echo "WROTE $f"; done
echo scratch > /tmp/ok && cat /tmp/ok; echo '{}' > /output/submission.json
"""
    code = bundle(tmp_path, {"run.sh": probe})
    result = run(backend, code, inputs, tmp_path)
    assert result.ok, (result.error, result.outcome)
    assert "WROTE" not in result.outcome.stdout and "scratch" in result.outcome.stdout
    assert (inputs / "inputs.txt").read_text() == "a\nb\nc\n" and sorted(os.listdir(inputs)) == ["inputs.txt"]
    assert (code / "run.sh").read_text() == probe


def test_an_endless_loop_is_killed_at_the_wall_clock(backend: ProcessBackend, inputs: Path, tmp_path: Path) -> None:
    limits = EvaluationLimits(wall_seconds=3, cpu_seconds=60, memory_bytes=256 * 1024**2)
    result = run(backend, bundle(tmp_path, {"run.sh": "sleep 600 & while :; do :; done"}), inputs, tmp_path, limits)
    assert result.outcome.timed_out and result.error_kind == "timeout"  # the backend's own wall clock ended it
    assert result.error == "evaluation exceeded the 3 s time limit (participant container)"
    assert not _leftovers()


def test_a_fork_bomb_is_contained(backend: ProcessBackend, inputs: Path, tmp_path: Path) -> None:
    counter = """import os, time
n = 0
try:
    while n < 500:
        if os.fork() == 0:
            time.sleep(30)
            os._exit(0)
        n += 1
except OSError:
    pass
open("/output/submission.json", "w").write(str(n))
"""
    result = run(backend, bundle(tmp_path, {"main.py": counter}), inputs, tmp_path)
    assert result.ok, (result.error, result.outcome)
    assert int(result.predictions.read_text()) < LIMITS.max_processes  # type: ignore[union-attr]
    limits = EvaluationLimits(wall_seconds=5, cpu_seconds=60, memory_bytes=256 * 1024**2, max_processes=16)
    bomb = run(backend, bundle(tmp_path, {"run.sh": "b() { b | b & }; b; sleep 600"}, "bomb"), inputs, tmp_path, limits)
    # ended by the 5 s wall clock, or earlier when the process limit left the shell no fork for its own
    # `sleep` ("Cannot fork", exit 2: seen under load) — never by the sleep's 600 s
    assert not bomb.ok
    assert bomb.outcome.timed_out or (bomb.outcome.exit_code and "fork" in bomb.outcome.stderr.lower()), bomb.outcome
    assert not _leftovers()  # the sleeping children and the bomb's processes died with the run


def test_a_memory_bomb_is_a_memory_error(backend: ProcessBackend, inputs: Path, tmp_path: Path) -> None:
    limits = EvaluationLimits(wall_seconds=30, cpu_seconds=30, memory_bytes=128 * 1024**2)
    hog = "blocks = []\nwhile True:\n    blocks.append(bytearray(16 * 1024**2))\n"
    result = run(backend, bundle(tmp_path, {"main.py": hog}), inputs, tmp_path, limits)
    assert not result.ok
    if "memory" in detect_cgroups().bases:
        assert result.outcome.oom_killed and result.error_kind == "memory"
        assert result.error == "evaluation ran out of memory in the participant container (limit 128 MiB)"
    else:  # RLIMIT_AS alone: the allocation fails inside the program
        assert "MemoryError" in result.outcome.stderr


def test_output_is_capped_to_its_end(backend: ProcessBackend, inputs: Path, tmp_path: Path) -> None:
    limits = EvaluationLimits(wall_seconds=30, max_output_bytes=1024)
    code = bundle(tmp_path, {"run.sh": "i=0; while [ $i -lt 3000 ]; do echo line $i; i=$((i+1)); done; echo THE-END"})
    outcome = backend.run(ContainerRun(image=str(code), limits=limits, output_dir=tmp_path / "out"))
    assert outcome.ok and outcome.stdout.rstrip().endswith("THE-END")
    assert outcome.stdout.startswith("[first ") and "logs are capped at 1024 bytes" in outcome.stdout
    assert len(outcome.stdout) < 1200


def test_a_missing_entry_point_is_named(backend: ProcessBackend, inputs: Path, tmp_path: Path) -> None:
    result = run(backend, bundle(tmp_path, {"predict.py": "print(1)"}), inputs, tmp_path)
    assert result.error == (
        "the participant container could not run: the code bundle has no entry point: "
        "put run.sh or main.py at the root of the zip (zip the folder's contents)"
    )
    assert result.error_kind == "setup"


def test_stop_all_ends_a_run_at_once(backend: ProcessBackend, inputs: Path, tmp_path: Path) -> None:
    code = bundle(tmp_path, {"run.sh": "sleep 600"})
    outcomes: list = []
    thread = threading.Thread(target=lambda: outcomes.append(run(backend, code, inputs, tmp_path)))
    thread.start()
    time.sleep(1.0)
    backend.stop_all()
    thread.join(timeout=60)  # the run sleeps 600 s: only stop_all ends it
    assert not thread.is_alive()
    assert outcomes[0].outcome.exit_code == 137 and not outcomes[0].ok


def test_a_stopped_handle_kills_its_own_bundle_and_no_other(
    backend: ProcessBackend, inputs: Path, tmp_path: Path
) -> None:
    """A worker with two slots is told one job ended: that bundle's process tree is killed; the other
    bundle of the same backend runs to its end."""
    codes = {
        "long": bundle(tmp_path, {"run.sh": "sleep 600"}, "long"),
        "short": bundle(tmp_path, {"run.sh": "sleep 8; " + COUNT_SH}, "short"),
    }
    handles = {name: RunHandle(name) for name in codes}
    results: dict[str, Any] = {}

    def go(name: str) -> None:
        results[name] = run_static_dataset(
            backend, str(codes[name]), inputs, tmp_path / f"job-{name}", limits=LIMITS, handle=handles[name]
        )

    threads = {name: threading.Thread(target=go, args=(name,)) for name in codes}
    for thread in threads.values():
        thread.start()
    for _ in range(300):
        if len(backend._running) == 2:
            break
        time.sleep(0.1)
    assert len(backend._running) == 2
    handles["long"].stop()
    threads["long"].join(timeout=60)  # it sleeps 600 s: only its stop ends it
    assert not threads["long"].is_alive()
    assert results["long"].outcome.error == STOPPED and not results["long"].ok
    assert "short" not in results or results["short"].ok
    threads["short"].join(timeout=60)
    assert results["short"].ok, results["short"].error


def test_agent_and_environment_runs_are_refused_clearly(backend: ProcessBackend, tmp_path: Path) -> None:
    runs = [ContainerRun(image=str(tmp_path), network="internal", name=n) for n in ("environment", "agent")]
    with pytest.raises(ContainerUnavailable, match="agent ↔ environment runs need Docker or Kubernetes"):
        backend.run_together(runs)


def test_without_bwrap_there_is_no_process_backend(tmp_path: Path) -> None:
    with pytest.raises(ContainerUnavailable, match="only in the bubblewrap sandbox, and bubblewrap .* not installed"):
        ProcessBackend(tmp_path, sandbox=SandboxReport("none", "bubblewrap (bwrap) is not installed"))


def _leftovers() -> list[int]:
    """Processes still in a cgroup this test process created (a run's group must be empty and gone)."""
    marker = f"/assay-eval-{os.getpid()}-"
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if marker in Path(f"/proc/{entry}/cgroup").read_text():
                    found.append(int(entry))
            except OSError:
                continue
    return found
