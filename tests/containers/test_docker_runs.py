"""Participant and host containers on a real Docker engine: the two EvalAI submission kinds, and images
that try to escape their limits. Skipped, with the reason, where no engine can run."""

from __future__ import annotations

import json
import socket
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assay.evaluation import EvaluationJob, EvaluationLimits, EvaluatorPool
from assay.evaluation.containers import ContainerRun, ContainerUnavailable, run_environment, run_static_dataset
from assay.evaluation.containers.docker_backend import LABEL, DockerBackend
from assay.evaluation.handles import STOPPED, RunHandle
from tests.containers.conftest import owned_by

LABELS_SECRET = "LABEL-7f3a91"
FAST = EvaluationLimits(wall_seconds=20, memory_bytes=64 * 1024**2, max_processes=32, tmp_bytes=8 * 1024**2)


@pytest.fixture
def dataset(tmp_path: Path) -> tuple[Path, Path]:
    """Test inputs (mounted) and, next to them, the labels (never mounted)."""
    inputs = tmp_path / "phase" / "inputs"
    labels = tmp_path / "phase" / "labels"
    inputs.mkdir(parents=True)
    labels.mkdir()
    (inputs / "inputs.txt").write_text("a\nb\nc\n")
    (labels / "labels.json").write_text(json.dumps({"answers": LABELS_SECRET}))
    return inputs, labels


class Listener:
    """A host TCP server on every interface that counts who connected (nobody should)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("0.0.0.0", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            conn.sendall(b"HTTP/1.0 200 OK\r\n\r\nreached the host\n")
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


def host_address() -> str:
    """This machine's outward address (what a container on a bridge would try)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("10.255.255.255", 1))
        return probe.getsockname()[0]
    except OSError:
        return "127.0.0.1"
    finally:
        probe.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.close()


def sh(script: str) -> list[str]:
    return ["/bin/sh", "-c", script]


# -- static dataset -----------------------------------------------------------------------------------
def test_good_static_submission_produces_predictions(
    backend: DockerBackend, images: dict[str, str], dataset: tuple[Path, Path], tmp_path: Path, docker_client: Any
) -> None:
    inputs, _ = dataset
    run = run_static_dataset(backend, images["predictor"], inputs, tmp_path / "job", limits=FAST)
    assert run.ok, (run.error, run.outcome)
    assert run.predictions == tmp_path / "job" / "output" / "submission.json"
    assert json.loads(run.predictions.read_text()) == {"predictions": 3}
    assert run.outcome.image_digest == docker_client.images.get(images["predictor"]).id
    assert run.failure() is None
    assert "docker" in run.sandbox


def test_static_predictions_are_then_scored_by_the_phase_script(
    backend: DockerBackend, images: dict[str, str], dataset: tuple[Path, Path], tmp_path: Path
) -> None:
    """The whole static-dataset flow a worker runs: container → predictions file → EvaluatorPool."""
    inputs, labels = dataset
    (labels / "annotations.json").write_text(json.dumps({"expected": 3}))
    script = tmp_path / "evaluation_script.zip"
    with zipfile.ZipFile(script, "w") as zf:
        zf.writestr(
            "__init__.py",
            "import json\n"
            "def evaluate(test_annotation_file, user_submission_file, phase_codename, **kwargs):\n"
            "    truth = json.load(open(test_annotation_file))\n"
            "    predicted = json.load(open(user_submission_file))\n"
            "    return {'result': [{'test': {'exact': float(predicted['predictions'] == truth['expected'])}}]}\n",
        )
    run = run_static_dataset(backend, images["predictor"], inputs, tmp_path / "job", limits=FAST)
    assert run.predictions is not None, run.error
    job = EvaluationJob(
        key="containers-e2e", script_zip=script, annotation_file=labels / "annotations.json",
        submission_file=run.predictions, phase_codename="test",
    )  # fmt: skip
    with EvaluatorPool(workdir=tmp_path / "evaluators", max_warm=0) as pool:
        outcome = pool.evaluate(job)
    assert outcome.ok, (outcome.error, outcome.stderr)
    assert outcome.output == {"result": [{"test": {"exact": 1.0}}]}


def test_the_participant_container_is_confined(
    backend: DockerBackend, images: dict[str, str], dataset: tuple[Path, Path], tmp_path: Path
) -> None:
    """Non-root, no capabilities, no new privileges, read-only root and inputs; labels nowhere to be found."""
    inputs, labels = dataset
    script = f"""
    exec 2>&1 > /output/submission.json
    id -u; grep -E '^(CapEff|NoNewPrivs)' /proc/self/status
    touch /etc/x && echo ROOT-WRITABLE; touch /input/x && echo INPUT-WRITABLE
    cat {labels}/labels.json; find / -name 'labels*' -not -path '/proc/*' -not -path '/sys/*'
    ls /input; echo written > /tmp/ok && cat /tmp/ok
    """
    run = run_static_dataset(backend, images["busybox"], inputs, tmp_path / "job", limits=FAST, command=sh(script))
    assert run.ok, run.error
    report = run.predictions.read_text()
    lines = report.split()
    assert lines[0] == "1000"
    assert "CapEff:\t0000000000000000" in report and "NoNewPrivs:\t1" in report
    assert "WRITABLE" not in report
    assert LABELS_SECRET not in report and "labels.json" not in report
    assert "inputs.txt" in report and "written" in report


def test_a_root_image_runs_as_nobody(
    backend: DockerBackend, images: dict[str, str], dataset: tuple[Path, Path], tmp_path: Path
) -> None:
    run = run_static_dataset(
        backend, images["busybox-root"], dataset[0], tmp_path / "job", limits=FAST,
        command=sh("id -u > /output/submission.json"),
    )  # fmt: skip
    assert run.ok, run.error
    assert run.predictions.read_text().strip() == "65534"


def test_network_attempts_reach_nothing(
    backend: DockerBackend, images: dict[str, str], dataset: tuple[Path, Path], tmp_path: Path, listener: Listener
) -> None:
    script = f"""
    exec > /output/submission.json 2>&1
    wget -T 2 -q -O- http://{host_address()}:{listener.port}/ || echo wget-failed
    nc -w 2 127.0.0.1 {listener.port} </dev/null || echo nc-failed
    wget -T 2 -q -O- http://example.com/ || echo dns-failed
    ip -o addr 2>/dev/null || cat /proc/net/dev
    """
    run = run_static_dataset(backend, images["busybox"], dataset[0], tmp_path / "job", limits=FAST, command=sh(script))
    assert run.ok, run.error
    report = run.predictions.read_text()
    assert "wget-failed" in report and "nc-failed" in report and "dns-failed" in report
    assert "reached the host" not in report
    assert "eth0" not in report
    assert listener.connections == 0


def test_fork_bomb_stops_at_the_pids_limit(
    backend: DockerBackend, images: dict[str, str], dataset: tuple[Path, Path], tmp_path: Path
) -> None:
    limits = EvaluationLimits(wall_seconds=20, memory_bytes=64 * 1024**2, max_processes=16, tmp_bytes=8 * 1024**2)
    script = """
    ( i=0; while [ $i -lt 60 ]; do sleep 30 & i=$((i+1)); done ) 2>/tmp/err
    set -- /proc/[0-9]*; read -r why </tmp/err
    echo "$# $why" > /output/submission.json
    """
    run = run_static_dataset(
        backend, images["busybox"], dataset[0], tmp_path / "job", limits=limits, command=sh(script)
    )
    assert run.ok, run.error
    count, why = run.predictions.read_text().split(" ", 1)
    assert int(count) <= 16
    assert "can't fork" in why


def test_real_fork_bomb_is_contained(
    backend: DockerBackend, images: dict[str, str], dataset: tuple[Path, Path], tmp_path: Path
) -> None:
    """The bomb ends by the wall clock, or sooner when the shell itself cannot fork (exit 2): either way
    within the limit, with the container gone and the engine ready for the next run."""
    limits = EvaluationLimits(wall_seconds=3, memory_bytes=64 * 1024**2, max_processes=16, tmp_bytes=8 * 1024**2)
    command = sh("b() { b | b & }; b; while :; do :; done")
    run = run_static_dataset(backend, images["busybox"], dataset[0], tmp_path / "job", limits=limits, command=command)
    assert not run.ok
    assert run.error_kind == "timeout" or run.error == "the participant container exited with code 2", run.error
    after = backend.run(ContainerRun(image=images["busybox"], command=sh("echo fine"), limits=FAST))
    assert after.ok and after.stdout == "fine\n"


def test_memory_bomb_is_reported_as_out_of_memory(
    backend: DockerBackend, images: dict[str, str], dataset: tuple[Path, Path], tmp_path: Path
) -> None:
    command = sh("dd if=/dev/zero of=/dev/null bs=200M count=1")
    run = run_static_dataset(backend, images["busybox"], dataset[0], tmp_path / "job", limits=FAST, command=command)
    assert run.outcome.oom_killed
    assert run.error_kind == "memory"
    assert run.error == "evaluation ran out of memory in the participant container (limit 64 MiB)"
    failure = run.failure()
    assert failure is not None and failure.error_kind == "memory"


def test_endless_loop_is_killed_at_the_time_limit(
    backend: DockerBackend, images: dict[str, str], dataset: tuple[Path, Path], tmp_path: Path
) -> None:
    limits = EvaluationLimits(wall_seconds=2, memory_bytes=64 * 1024**2, max_processes=16, tmp_bytes=8 * 1024**2)
    command = sh("echo started; while :; do :; done")
    run = run_static_dataset(backend, images["busybox"], dataset[0], tmp_path / "job", limits=limits, command=command)
    assert run.outcome.timed_out
    assert run.error == "evaluation exceeded the 2 s time limit (participant container)"  # the wall clock ended it
    assert "started" in run.outcome.stdout


def test_missing_predictions_and_symlinked_predictions_are_refused(
    backend: DockerBackend, images: dict[str, str], dataset: tuple[Path, Path], tmp_path: Path
) -> None:
    nothing = run_static_dataset(
        backend, images["busybox"], dataset[0], tmp_path / "a", limits=FAST, command=sh("true")
    )
    assert nothing.error == "the container wrote no /output/submission.json or /output/submission.csv"
    link = run_static_dataset(
        backend, images["busybox"], dataset[0], tmp_path / "b", limits=FAST,
        command=sh("ln -s /etc/shadow /output/submission.json"),
    )  # fmt: skip
    assert link.error_kind == "bad_output"
    assert "must be a regular file" in (link.error or "")


def test_logs_are_capped_keeping_the_end(
    backend: DockerBackend, images: dict[str, str], dataset: tuple[Path, Path], tmp_path: Path
) -> None:
    limits = EvaluationLimits(wall_seconds=20, memory_bytes=64 * 1024**2, max_output_bytes=1000, tmp_bytes=8 * 1024**2)
    command = sh("i=0; while [ $i -lt 3000 ]; do echo line-$i; i=$((i+1)); done; echo THE-END")
    outcome = backend.run(ContainerRun(image=images["busybox"], command=command, limits=limits))
    assert outcome.ok
    assert len(outcome.stdout) < 1200
    assert outcome.stdout.rstrip().endswith("THE-END") and "cut" in outcome.stdout


# -- agent ↔ environment ------------------------------------------------------------------------------
ENVIRONMENT = """
got=$(nc -l -p 8085 </dev/null)
leaked=0; case "$got" in *"$ASSAY_RESULT_SECRET"*) leaked=1;; esac
first=$(echo "$got" | head -n 1); accuracy=0; [ "$first" = 42 ] && accuracy=1
echo "environment heard: $first"
printf '{"secret": "%s", "result": [{"test": {"accuracy": %s, "secret_leaked": %s}}]}' \
  "$ASSAY_RESULT_SECRET" "$accuracy" "$leaked" > "$ASSAY_RESULT_PATH"
"""
AGENT = """
{ echo 42; env; cat /proc/[0-9]*/environ; ls -la /output /proc; } > /tmp/message 2>&1
wget -T 1 -q -O- http://{host}:{port}/ >> /tmp/message 2>&1
echo '{"secret": "forged", "result": [{"test": {"accuracy": 99}}]}'
until nc $ENVIRONMENT_HOST 8085 < /tmp/message; do sleep 0.1; done
sleep 600
"""


def test_agent_environment_run_scores_with_the_secret_verified(
    backend: DockerBackend, images: dict[str, str], tmp_path: Path, listener: Listener
) -> None:
    agent = AGENT.replace("{host}", host_address()).replace("{port}", str(listener.port))
    outcome = run_environment(
        backend, images["busybox"], images["busybox"], tmp_path / "job", limits=FAST,
        environment_command=sh(ENVIRONMENT), agent_command=sh(agent),
    )  # fmt: skip
    assert outcome.ok, (outcome.error, outcome.stderr)
    assert outcome.output == {"result": [{"test": {"accuracy": 1, "secret_leaked": 0}}]}
    assert "environment heard: 42" in outcome.stdout
    # the agent sleeps 600 s: the run ended ok within FAST's 20 s wall clock, so it was stopped, not waited for
    assert listener.connections == 0


def test_environment_result_without_the_secret_is_refused(
    backend: DockerBackend, images: dict[str, str], tmp_path: Path
) -> None:
    forged = """echo '{"secret": "guess", "result": [{"test": {"accuracy": 1}}]}'"""
    outcome = run_environment(
        backend, images["busybox"], images["busybox"], tmp_path / "job", limits=FAST,
        environment_command=sh(forged), agent_command=sh("sleep 600"),
    )  # fmt: skip
    assert not outcome.ok and outcome.error_kind == "bad_output"
    assert "not authenticated" in (outcome.error or "")


def test_environment_result_on_stdout_is_accepted_and_the_secret_redacted(
    backend: DockerBackend, images: dict[str, str], tmp_path: Path
) -> None:
    script = """printf '{"secret": "%s", "result": {"test": {"score": 0.5}}}\\n' "$ASSAY_RESULT_SECRET" """
    outcome = run_environment(
        backend, images["busybox"], images["busybox"], tmp_path / "job", limits=FAST,
        environment_command=sh(script), agent_command=sh("true"),
    )  # fmt: skip
    assert outcome.ok, outcome.error
    assert outcome.output == {"result": [{"test": {"score": 0.5}}]}
    assert '"[secret]"' in outcome.stdout


def test_stop_all_ends_running_containers_at_once(backend: DockerBackend, images: dict[str, str]) -> None:
    """What a worker does when it is told to stop mid-run: the run returns, the container is removed."""
    results: list[Any] = []
    thread = threading.Thread(
        target=lambda: results.append(
            backend.run(ContainerRun(image=images["busybox"], command=sh("sleep 600"), limits=FAST))
        )
    )
    thread.start()
    for _ in range(50):
        if backend.client.containers.list(filters=owned_by(backend)):
            break
        time.sleep(0.1)
    backend.stop_all()
    thread.join(timeout=15)
    assert results and results[0].exit_code == 137 and not results[0].timed_out


def test_a_stopped_handle_ends_its_own_run_and_no_other(backend: DockerBackend, images: dict[str, str]) -> None:
    """A worker with two slots is told one job ended: that container is killed and removed; the other
    run of the same backend goes on to its own end."""
    handles = {"long": RunHandle("long"), "short": RunHandle("short")}
    commands = {"long": "sleep 600", "short": "sleep 12; echo done"}
    outcomes: dict[str, Any] = {}

    def run(name: str) -> None:
        run = ContainerRun(image=images["busybox"], command=sh(commands[name]), limits=FAST, name=name)
        outcomes[name] = backend.run(run, handles[name])

    threads = {name: threading.Thread(target=run, args=(name,)) for name in handles}
    for thread in threads.values():
        thread.start()

    def running() -> list[str]:
        return sorted(c.labels[LABEL] for c in backend.client.containers.list(filters=owned_by(backend)))

    for _ in range(100):
        if running() == ["long", "short"]:
            break
        time.sleep(0.1)
    assert running() == ["long", "short"]
    handles["long"].stop()
    threads["long"].join(timeout=30)  # it sleeps 600 s: only the stop ends it
    assert not threads["long"].is_alive()
    assert outcomes["long"].error == STOPPED and not outcomes["long"].ok
    assert running() == ["short"]  # the stopped one is gone; the other still runs
    threads["short"].join(timeout=60)
    assert outcomes["short"].ok and outcomes["short"].stdout.strip() == "done"


def test_a_run_whose_handle_is_already_stopped_starts_no_container() -> None:
    """The job ended while its image loaded: nothing reaches the engine (this one fails if asked anything)."""

    class Untouchable:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"the engine was asked for {name}")

    handle = RunHandle()
    handle.stop()
    outcome = DockerBackend(Untouchable()).run(ContainerRun(image="any", command=sh("true"), limits=FAST), handle)
    assert outcome.error == STOPPED and not outcome.ok


def test_an_unknown_runtime_is_a_clear_error(docker_client: Any, images: dict[str, str]) -> None:
    unknown = DockerBackend(docker_client, runtime="no-such-runtime")
    outcome = unknown.run(ContainerRun(image=images["busybox"], limits=FAST))
    assert not outcome.ok
    assert outcome.error is not None and outcome.error.startswith("could not start the container")
    assert "no-such-runtime" in outcome.error
    assert not docker_client.containers.list(all=True, filters=owned_by(unknown))


def test_gvisor_runs_the_same_way_where_installed(docker_client: Any, images: dict[str, str], tmp_path: Path) -> None:
    if "runsc" not in docker_client.info().get("Runtimes", {}):
        pytest.skip("gVisor is optional: no 'runsc' runtime is registered with this dockerd")
    command = sh("id -u; cat /proc/version")
    outcome = DockerBackend(docker_client, runtime="runsc").run(
        ContainerRun(image=images["busybox"], command=command, limits=FAST)
    )
    assert outcome.ok, outcome
    assert outcome.stdout.startswith("1000")


def test_no_engine_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/missing.sock")
    with pytest.raises(ContainerUnavailable, match="no Docker engine answers|Docker SDK is not installed"):
        DockerBackend().run(ContainerRun(image="anything"))
