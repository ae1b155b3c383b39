"""The Kubernetes backend without a cluster: manifests validated offline against the 1.30 schemas, and
submit/poll/logs/cleanup driven against a fake API that records every call."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("kubernetes", reason="pip install -e '.[containers]' (the kubernetes client)")
kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="pip install -e .[test] (kubernetes-validate)")

from kubernetes import client as k8s  # noqa: E402

from assay.evaluation import EvaluationLimits  # noqa: E402
from assay.evaluation.containers import ContainerRun, UnsafeRun, run_environment, run_static_dataset  # noqa: E402
from assay.evaluation.containers.kubernetes_backend import RUN_LABEL, KubernetesBackend, to_dict  # noqa: E402
from assay.evaluation.handles import STOPPED, RunHandle  # noqa: E402

LIMITS = EvaluationLimits(wall_seconds=60, memory_bytes=512 * 1024**2, tmp_bytes=64 * 1024**2)
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def terminated(name: str, code: int = 0, reason: str = "Completed", seconds: float = 3) -> k8s.V1ContainerStatus:
    state = k8s.V1ContainerState(
        terminated=k8s.V1ContainerStateTerminated(
            exit_code=code, reason=reason, started_at=T0, finished_at=T0 + dt.timedelta(seconds=seconds)
        )
    )
    return k8s.V1ContainerStatus(
        name=name,
        image="img",
        image_id=f"docker-pullable://img@sha256:{name}",
        ready=False,
        restart_count=0,
        state=state,
    )


def running(name: str) -> k8s.V1ContainerStatus:
    state = k8s.V1ContainerState(running=k8s.V1ContainerStateRunning(started_at=T0))
    return k8s.V1ContainerStatus(name=name, image="img", image_id="", ready=True, restart_count=0, state=state)


def waiting(name: str, reason: str) -> k8s.V1ContainerStatus:
    state = k8s.V1ContainerState(waiting=k8s.V1ContainerStateWaiting(reason=reason, message="pull access denied"))
    return k8s.V1ContainerStatus(name=name, image="img", image_id="", ready=False, restart_count=0, state=state)


class FakeKube:
    """Stands in for BatchV1Api, CoreV1Api and NetworkingV1Api: records calls, replays pod states."""

    def __init__(self, polls: list[list[k8s.V1ContainerStatus] | None], logs: dict[str, str] | None = None) -> None:
        self.polls = polls
        self.logs = logs or {}
        self.calls: list[tuple[str, Any]] = []
        self.created: dict[str, Any] = {}
        self.job_failed_reason: str | None = None

    def create_namespaced_network_policy(self, namespace: str, body: Any) -> Any:
        self.calls.append(("create_policy", body.metadata.name))
        self.created["policy"] = body
        return body

    def create_namespaced_job(self, namespace: str, body: Any) -> Any:
        self.calls.append(("create_job", body.metadata.name))
        self.created["job"] = body
        return body

    def list_namespaced_pod(self, namespace: str, label_selector: str) -> Any:
        self.calls.append(("list_pods", label_selector))
        statuses = self.polls.pop(0) if len(self.polls) > 1 else self.polls[0]
        if statuses is None:
            return k8s.V1PodList(items=[])
        pod = k8s.V1Pod(metadata=k8s.V1ObjectMeta(name="pod-1"), status=k8s.V1PodStatus(container_statuses=statuses))
        return k8s.V1PodList(items=[pod])

    def read_namespaced_job_status(self, name: str, namespace: str) -> Any:
        self.calls.append(("job_status", name))
        conditions = None
        if self.job_failed_reason:
            conditions = [k8s.V1JobCondition(type="Failed", status="True", reason=self.job_failed_reason)]
        return k8s.V1Job(status=k8s.V1JobStatus(conditions=conditions))

    def read_namespaced_pod_log(self, name: str, namespace: str, container: str) -> str:
        self.calls.append(("logs", container))
        return self.logs.get(container, "")

    def delete_namespaced_job(self, name: str, namespace: str, propagation_policy: str) -> None:
        self.calls.append(("delete_job", propagation_policy))

    def delete_namespaced_network_policy(self, name: str, namespace: str) -> None:
        self.calls.append(("delete_policy", name))
        raise k8s.ApiException(status=404, reason="Not Found")  # already gone is fine


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def make_backend(fake: FakeKube, tmp_path: Path, clock: Clock | None = None) -> KubernetesBackend:
    clock = clock or Clock()
    volume = k8s.V1Volume(
        name="data", persistent_volume_claim=k8s.V1PersistentVolumeClaimVolumeSource(claim_name="assay-data")
    )
    return KubernetesBackend(
        "assay-runs", batch_api=fake, core_api=fake, networking_api=fake, data_volume=volume, data_root=tmp_path,
        runtime_class="gvisor", clock=clock, sleep=clock.sleep, poll_seconds=2,
    )  # fmt: skip


def test_manifests_are_valid_kubernetes_1_30_and_hardened(tmp_path: Path) -> None:
    (tmp_path / "inputs").mkdir()
    backend = make_backend(FakeKube([None]), tmp_path)
    environment = ContainerRun(
        image="registry/env@sha256:ab", inputs={tmp_path / "inputs": "/input"}, output_dir=tmp_path / "out",
        limits=LIMITS, network="internal", name="environment", env={"ASSAY_RESULT_SECRET": "s"}, user="1000:1000",
    )  # fmt: skip
    agent = ContainerRun(
        image="registry/agent@sha256:cd",
        command=["python", "agent.py"],
        limits=LIMITS,
        network="internal",
        name="agent",
    )
    runs = [environment, agent]
    job, policy = backend.manifests(runs, "assay-run-test")
    job_doc, policy_doc = to_dict(job), to_dict(policy)
    kubernetes_validate.validate(job_doc, "1.30", strict=True)
    kubernetes_validate.validate(policy_doc, "1.30", strict=True)

    spec = job_doc["spec"]
    assert spec["backoffLimit"] == 0 and spec["activeDeadlineSeconds"] == 60 + 120
    pod = spec["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False and pod["enableServiceLinks"] is False
    assert pod["restartPolicy"] == "Never" and pod["runtimeClassName"] == "gvisor"
    assert pod["securityContext"]["runAsNonRoot"] is True
    env, agent = pod["containers"]
    for container in (env, agent):
        sc = container["securityContext"]
        assert sc["runAsNonRoot"] and sc["readOnlyRootFilesystem"] and sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]} and sc["seccompProfile"] == {"type": "RuntimeDefault"}
        assert container["resources"]["limits"] == container["resources"]["requests"]
        assert container["resources"]["limits"]["memory"] == str(512 * 1024**2)
    assert env["securityContext"]["runAsUser"] == 1000
    assert {"name": "ASSAY_RESULT_SECRET", "value": "s"} in env["env"] and "env" not in agent  # agent never sees it
    assert agent["args"] == ["python", "agent.py"]
    mounts = {m["mountPath"]: m for m in env["volumeMounts"]}
    assert mounts["/input"] == {"mountPath": "/input", "name": "data", "readOnly": True, "subPath": "inputs"}
    assert mounts["/output"]["subPath"] == "out" and not mounts["/output"].get("readOnly")
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["tmp-0"]["emptyDir"] == {"sizeLimit": str(64 * 1024**2)}
    assert volumes["data"]["persistentVolumeClaim"] == {"claimName": "assay-data"}
    assert policy_doc["spec"] == {
        "podSelector": {"matchLabels": {RUN_LABEL: "assay-run-test"}},
        "policyTypes": ["Ingress", "Egress"],
    }
    assert spec["template"]["metadata"]["labels"][RUN_LABEL] == "assay-run-test"


def test_files_outside_the_shared_volume_are_refused(tmp_path: Path) -> None:
    backend = make_backend(FakeKube([None]), tmp_path / "data")
    with pytest.raises(UnsafeRun, match="not under the shared data volume"):
        backend.manifests([ContainerRun(image="i", inputs={tmp_path: "/input"})], "assay-run-x")


def test_static_run_submits_polls_collects_and_cleans_up(tmp_path: Path) -> None:
    (tmp_path / "inputs").mkdir()
    fake = FakeKube(
        [None, [running("submission")], [terminated("submission", seconds=7)]], logs={"submission": "predicted 3\n"}
    )
    (tmp_path / "job" / "output").mkdir(parents=True)
    (tmp_path / "job" / "output" / "submission.csv").write_text("id,label\n")
    run = run_static_dataset(
        make_backend(fake, tmp_path), "registry/p@sha256:1", tmp_path / "inputs", tmp_path / "job", limits=LIMITS
    )
    assert run.ok and run.predictions == tmp_path / "job" / "output" / "submission.csv"
    assert run.outcome.stdout == "predicted 3\n" and run.outcome.duration == 7
    assert run.outcome.image_digest == "docker-pullable://img@sha256:submission"
    names = [c[0] for c in fake.calls]
    assert names[:2] == ["create_policy", "create_job"]  # the policy exists before any pod
    assert names[-2:] == ["delete_job", "delete_policy"]
    assert ("delete_job", "Background") in fake.calls and ("logs", "submission") in fake.calls
    container = fake.created["job"].spec.template.spec.containers[0]
    assert {e.name: e.value for e in container.env}["SUBMISSION_PATH"] == "/output"


def test_oom_is_reported(tmp_path: Path) -> None:
    fake = FakeKube([[terminated("run", code=137, reason="OOMKilled")]])
    outcome = make_backend(fake, tmp_path).run(ContainerRun(image="i", limits=LIMITS))
    assert outcome.oom_killed and outcome.exit_code == 137 and not outcome.ok


def test_deadline_exceeded_is_a_timeout_and_still_cleans_up(tmp_path: Path) -> None:
    fake = FakeKube([[running("run")]])
    fake.job_failed_reason = "DeadlineExceeded"
    outcome = make_backend(fake, tmp_path).run(ContainerRun(image="i", limits=LIMITS))
    assert outcome.timed_out and not outcome.ok
    assert fake.calls[-2][0] == "delete_job"


def test_the_poller_gives_up_at_the_deadline_itself(tmp_path: Path) -> None:
    clock = Clock()
    fake = FakeKube([None])  # never scheduled, and the Job never reports it
    outcome = make_backend(fake, tmp_path, clock).run(ContainerRun(image="i", limits=LIMITS))
    assert outcome.timed_out
    assert clock.now >= 60 + 120


def test_an_image_that_cannot_be_pulled_fails_at_once(tmp_path: Path) -> None:
    fake = FakeKube([[waiting("run", "ImagePullBackOff")]])
    outcome = make_backend(fake, tmp_path).run(ContainerRun(image="i", limits=LIMITS))
    assert outcome.error == "ImagePullBackOff: pull access denied"
    assert ("logs", "run") not in fake.calls


def test_cleanup_happens_when_submission_fails(tmp_path: Path) -> None:
    fake = FakeKube([None])

    def refuse(namespace: str, body: Any) -> None:
        raise k8s.ApiException(status=403, reason="Forbidden")

    fake.create_namespaced_job = refuse  # type: ignore[method-assign]
    with pytest.raises(k8s.ApiException):
        make_backend(fake, tmp_path).run(ContainerRun(image="i", limits=LIMITS))
    assert [c[0] for c in fake.calls] == ["create_policy", "delete_job", "delete_policy"]


def test_environment_run_as_one_pod_with_the_secret_checked(tmp_path: Path) -> None:
    fake = FakeKube([[running("environment"), running("agent")], [terminated("environment"), running("agent")]])
    backend = make_backend(fake, tmp_path)
    original = fake.read_namespaced_pod_log

    def logs(name: str, namespace: str, container: str) -> str:
        if container == "environment":  # the environment prints its result with the secret it was given
            env = {e.name: e.value for e in fake.created["job"].spec.template.spec.containers[0].env}
            return json.dumps({"secret": env["ASSAY_RESULT_SECRET"], "result": [{"test": {"reward": 12.5}}]})
        return original(name, namespace, container)

    fake.read_namespaced_pod_log = logs  # type: ignore[method-assign]
    outcome = run_environment(
        backend, "registry/env@sha256:1", "registry/agent@sha256:2", tmp_path / "job", limits=LIMITS
    )
    assert outcome.ok, outcome.error
    assert outcome.output == {"result": [{"test": {"reward": 12.5}}]}
    assert "kubernetes" in outcome.sandbox
    containers = fake.created["job"].spec.template.spec.containers
    assert [c.name for c in containers] == ["environment", "agent"]
    assert all(e.name != "ASSAY_RESULT_SECRET" for e in containers[1].env or [])


class PerJobKube(FakeKube):
    """Two Jobs at once: each pod's state by its Job's label (the first Job created is "a", the second "b")."""

    def __init__(self) -> None:
        super().__init__([None])
        self.names: dict[str, str] = {}  # Job name → "a" | "b"
        self.states: dict[str, list[k8s.V1ContainerStatus]] = {"a": [running("run")], "b": [running("run")]}
        self.deleted: list[str] = []
        self._lock = threading.Lock()

    def create_namespaced_job(self, namespace: str, body: Any) -> Any:
        with self._lock:
            self.names[body.metadata.name] = "ab"[len(self.names)]
        return super().create_namespaced_job(namespace, body)

    def list_namespaced_pod(self, namespace: str, label_selector: str) -> Any:
        which = self.names[label_selector.split("=", 1)[1]]
        pod = k8s.V1Pod(
            metadata=k8s.V1ObjectMeta(name=f"pod-{which}"),
            status=k8s.V1PodStatus(container_statuses=self.states[which]),
        )
        return k8s.V1PodList(items=[pod])

    def delete_namespaced_job(self, name: str, namespace: str, propagation_policy: str) -> None:
        self.deleted.append(self.names[name])


def test_a_stopped_handle_ends_its_own_job_and_no_other(tmp_path: Path) -> None:
    """A worker with two slots is told one job ended: that Job is deleted at its next poll; the other
    Job of the same backend runs on to its own end."""
    fake = PerJobKube()
    backend = make_backend(fake, tmp_path)
    backend.clock, backend.sleep, backend.poll_seconds = time.monotonic, time.sleep, 0.01  # type: ignore[method-assign]
    handles = {"a": RunHandle("a"), "b": RunHandle("b")}
    outcomes: dict[str, Any] = {}

    def run(which: str) -> None:
        outcomes[which] = backend.run(ContainerRun(image="i", limits=LIMITS), handles[which])

    first = threading.Thread(target=run, args=("a",))
    first.start()
    for _ in range(3000):
        if len(fake.names) >= 1:
            break
        time.sleep(0.01)
    second = threading.Thread(target=run, args=("b",))
    second.start()
    for _ in range(3000):
        if len(fake.names) >= 2:
            break
        time.sleep(0.01)
    handles["a"].stop()
    first.join(timeout=30)
    assert not first.is_alive() and outcomes["a"].error == STOPPED
    assert fake.deleted == ["a"] and second.is_alive()  # b is still polled
    fake.states["b"] = [terminated("run", seconds=3)]
    second.join(timeout=30)
    assert outcomes["b"].ok and outcomes["b"].duration == 3
    assert fake.deleted == ["a", "b"]


def test_a_run_whose_handle_is_already_stopped_creates_no_job(tmp_path: Path) -> None:
    fake = FakeKube([[running("run")]])
    handle = RunHandle()
    handle.stop()
    outcome = make_backend(fake, tmp_path).run(ContainerRun(image="i", limits=LIMITS), handle)
    assert outcome.error == STOPPED and not any(call[0] == "create_job" for call in fake.calls)


def test_stop_all_ends_a_run_at_the_next_poll(tmp_path: Path) -> None:
    clock = Clock()
    fake = FakeKube([[running("run")]])
    backend = make_backend(fake, tmp_path, clock)

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        backend.stop_all()

    backend.sleep = sleep  # type: ignore[method-assign]
    outcome = backend.run(ContainerRun(image="i", limits=LIMITS))
    assert outcome.error == "stopped by the worker" and clock.now == 2
    assert [c[0] for c in fake.calls][-2:] == ["delete_job", "delete_policy"]
    # the worker goes on with its next job: a stop ends the runs in progress, not the backend
    fake.polls = [[running("run")], [terminated("run", seconds=3)]]
    backend.sleep = clock.sleep  # type: ignore[method-assign]
    assert backend.run(ContainerRun(image="i", limits=LIMITS)).error is None
