"""The same runs as Kubernetes Jobs, for clusters: manifests, submit, poll, logs, clean up.

A group (one container, or environment + agent) is one Job whose single pod holds every container,
so they share the pod's loopback and nothing else: a deny-all NetworkPolicy (no ingress, no egress,
not even DNS) is created first and selects the pod by its run label. Each container runs with
``runAsNonRoot``, a read-only root filesystem, no privilege escalation, every capability dropped,
the RuntimeDefault seccomp profile, Guaranteed resources (requests = limits), and an ``emptyDir``
``/tmp`` with a size limit; the pod gets no service-account token and no service links, and the Job
``activeDeadlineSeconds`` (the wall limit plus scheduling and pull time) with no retries.

Files: the worker and the Job pods share one volume (``data_volume``, e.g. a ReadWriteMany PVC)
that the worker sees at ``data_root``; inputs and the output folder must live under it and are
mounted by ``subPath``. The image must be pullable by the cluster (push an accepted image to the
cluster's registry and run it by ``repo@sha256:…``). Not enforceable per pod in Kubernetes: a pids
limit (kubelet ``podPidsLimit``) and ulimits; stdout and stderr come back merged.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

try:
    from kubernetes import client as k8s
except ImportError as exc:  # pragma: no cover - only without the extra
    raise ImportError(
        "the Kubernetes backend needs the kubernetes client: pip install '.[containers]' in Assay's checkout"
    ) from exc

from ..handles import STOPPED, RunHandle
from .contract import (
    OUTPUT_PATH,
    ContainerOutcome,
    ContainerRun,
    ContainerUnavailable,
    UnsafeRun,
    numeric_user,
    tail_text,
)

log = logging.getLogger("assay.evaluation.containers")

RUN_LABEL = "assay.dev/run"
MANAGED = {"app.kubernetes.io/managed-by": "assay"}
#: Waiting reasons that will not resolve by waiting longer.
STUCK = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CreateContainerConfigError", "CreateContainerError"}
DATA_VOLUME = "data"


def _quantity(n: float) -> str:
    return str(int(n))


class KubernetesBackend:
    """Kubernetes Jobs backend. ``batch_api``/``core_api``/``networking_api`` default to the client's
    ``BatchV1Api``/``CoreV1Api``/``NetworkingV1Api`` with in-cluster or kubeconfig credentials; tests
    pass a fake object. ``clock``/``sleep`` are injectable so polling is testable without waiting.
    """

    name = "kubernetes"

    def __init__(
        self,
        namespace: str = "assay-runs",
        *,
        batch_api: Any | None = None,
        core_api: Any | None = None,
        networking_api: Any | None = None,
        data_volume: k8s.V1Volume | None = None,
        data_root: Path | None = None,
        runtime_class: str | None = None,
        startup_seconds: float = 120.0,
        poll_seconds: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.namespace = namespace
        self._apis = (batch_api, core_api, networking_api)
        self.data_volume = data_volume
        self.data_root = Path(data_root).resolve() if data_root is not None else None
        self.runtime_class = runtime_class
        self.startup_seconds = startup_seconds
        self.poll_seconds = poll_seconds
        self.clock = clock
        self._stop_lock = threading.Lock()
        self._stop_generation = 0  # stop_all() ends the runs that started before it
        self.sleep = sleep

    def describe(self) -> str:
        runtime = f"runtimeClass {self.runtime_class}; " if self.runtime_class else ""
        return (
            f"kubernetes job ({runtime}deny-all NetworkPolicy; runAsNonRoot; read-only root; all capabilities "
            "dropped; no privilege escalation; RuntimeDefault seccomp; Guaranteed resources)"
        )

    def _api(self) -> tuple[Any, Any, Any]:
        batch, core, networking = self._apis
        if batch is None or core is None or networking is None:
            from kubernetes import config

            try:
                config.load_incluster_config()
            except config.ConfigException:
                try:
                    config.load_kube_config()
                except (config.ConfigException, OSError) as exc:
                    raise ContainerUnavailable(f"no Kubernetes credentials (in-cluster or kubeconfig): {exc}") from exc
            batch, core, networking = (
                batch or k8s.BatchV1Api(),
                core or k8s.CoreV1Api(),
                networking or k8s.NetworkingV1Api(),
            )
            self._apis = (batch, core, networking)
        return batch, core, networking

    # -- manifests -----------------------------------------------------------------------------------
    def _sub_path(self, host: Path) -> str:
        if self.data_root is None or self.data_volume is None:
            raise UnsafeRun("the kubernetes backend mounts files only from its shared data volume (data_root)")
        host = Path(host).resolve()
        try:
            return host.relative_to(self.data_root).as_posix()
        except ValueError as exc:
            raise UnsafeRun(f"{host} is not under the shared data volume {self.data_root}") from exc

    def _container(self, run: ContainerRun, tmp_volume: str) -> k8s.V1Container:
        limits = run.limits
        ids = numeric_user(run.user)
        resources = {
            "cpu": f"{max(1, int(run.cpus * 1000))}m",
            "memory": _quantity(limits.memory_bytes),
            "ephemeral-storage": _quantity(limits.tmp_bytes + 64 * 1024**2),
        }
        mounts = [k8s.V1VolumeMount(name=tmp_volume, mount_path="/tmp")]
        for host, target in run.inputs.items():
            mounts.append(
                k8s.V1VolumeMount(name=DATA_VOLUME, mount_path=target, sub_path=self._sub_path(host), read_only=True)
            )
        if run.output_dir is not None:
            Path(run.output_dir).mkdir(parents=True, exist_ok=True)
            Path(run.output_dir).chmod(0o777)  # the image's user is not the worker's
            mounts.append(
                k8s.V1VolumeMount(name=DATA_VOLUME, mount_path=OUTPUT_PATH, sub_path=self._sub_path(run.output_dir))
            )
        return k8s.V1Container(
            name=run.name,
            image=run.image,
            args=list(run.command) if run.command is not None else None,
            env=[k8s.V1EnvVar(name=k, value=v) for k, v in run.env.items()] or None,
            resources=k8s.V1ResourceRequirements(limits=resources, requests=dict(resources)),
            volume_mounts=mounts,
            image_pull_policy="IfNotPresent",
            security_context=k8s.V1SecurityContext(
                run_as_non_root=True,
                run_as_user=ids[0] if ids else None,
                run_as_group=ids[1] if ids else None,
                read_only_root_filesystem=True,
                allow_privilege_escalation=False,
                privileged=False,
                capabilities=k8s.V1Capabilities(drop=["ALL"]),
                seccomp_profile=k8s.V1SeccompProfile(type="RuntimeDefault"),
            ),
        )

    def manifests(self, runs: Sequence[ContainerRun], job_name: str) -> tuple[k8s.V1Job, k8s.V1NetworkPolicy]:
        """The Job and its deny-all NetworkPolicy for one group of runs (``runs[0]`` sets the deadline)."""
        if not runs:
            raise UnsafeRun("nothing to run")
        if len({r.name for r in runs}) != len(runs):
            raise UnsafeRun("the runs of one group need distinct names")
        labels = {**MANAGED, RUN_LABEL: job_name}
        volumes = []
        containers = []
        for index, run in enumerate(runs):
            tmp = f"tmp-{index}"
            volumes.append(
                k8s.V1Volume(name=tmp, empty_dir=k8s.V1EmptyDirVolumeSource(size_limit=_quantity(run.limits.tmp_bytes)))
            )
            containers.append(self._container(run, tmp))
        if any(r.inputs or r.output_dir is not None for r in runs):
            volume = self.data_volume
            volumes.append(k8s.V1Volume(name=DATA_VOLUME, **{
                k: getattr(volume, k) for k in volume.attribute_map if k != "name" and getattr(volume, k) is not None
            }))  # fmt: skip
        runtime = next((r.runtime for r in runs if r.runtime), None) or self.runtime_class
        pod = k8s.V1PodSpec(
            containers=containers,
            volumes=volumes,
            restart_policy="Never",
            automount_service_account_token=False,
            enable_service_links=False,
            share_process_namespace=False,
            host_network=False,
            host_pid=False,
            host_ipc=False,
            termination_grace_period_seconds=5,
            runtime_class_name=runtime,
            security_context=k8s.V1PodSecurityContext(
                run_as_non_root=True, seccomp_profile=k8s.V1SeccompProfile(type="RuntimeDefault")
            ),
        )
        job = k8s.V1Job(
            api_version="batch/v1",
            kind="Job",
            metadata=k8s.V1ObjectMeta(name=job_name, namespace=self.namespace, labels=labels),
            spec=k8s.V1JobSpec(
                backoff_limit=0,
                active_deadline_seconds=math.ceil(runs[0].limits.wall_seconds + self.startup_seconds),
                ttl_seconds_after_finished=600,
                template=k8s.V1PodTemplateSpec(metadata=k8s.V1ObjectMeta(labels=labels), spec=pod),
            ),
        )
        policy = k8s.V1NetworkPolicy(
            api_version="networking.k8s.io/v1",
            kind="NetworkPolicy",
            metadata=k8s.V1ObjectMeta(name=job_name, namespace=self.namespace, labels=labels),
            spec=k8s.V1NetworkPolicySpec(
                pod_selector=k8s.V1LabelSelector(match_labels={RUN_LABEL: job_name}),
                policy_types=["Ingress", "Egress"],  # and no rules: nothing in, nothing out
            ),
        )
        return job, policy

    def stop_all(self) -> None:
        """End every run in progress at its next poll (a worker stopping, a cancelled job); Jobs are deleted.

        Runs that start afterwards are not affected: the worker goes on with its next job."""
        with self._stop_lock:
            self._stop_generation += 1

    # -- running -------------------------------------------------------------------------------------
    def run(self, run: ContainerRun, handle: RunHandle | None = None) -> ContainerOutcome:
        if run.network != "none":
            raise UnsafeRun("a single run has network 'none'; use run_together() for a private network")
        return self.run_together([run], handle)[0]

    def run_together(self, runs: Sequence[ContainerRun], handle: RunHandle | None = None) -> list[ContainerOutcome]:
        """One Job for the group; ``handle.stop()`` ends this Job alone at its next poll (it is deleted)."""
        batch, core, networking = self._api()
        job_name = f"assay-run-{uuid.uuid4().hex[:12]}"
        job, policy = self.manifests(runs, job_name)
        started = self.clock()
        if handle is not None and handle.stopped:
            return [self._outcome(core, None, r, None, started, error=STOPPED) for r in runs]
        generation = self._stop_generation
        ended = threading.Event()  # this Job's own stop
        try:
            with handle.attached(ended.set) if handle is not None else contextlib.nullcontext():
                networking.create_namespaced_network_policy(self.namespace, policy)  # before any pod exists
                batch.create_namespaced_job(self.namespace, job)
                return self._watch(batch, core, runs, job_name, started, generation, ended)
        finally:
            self._cleanup(batch, networking, job_name)

    def _watch(
        self,
        batch: Any,
        core: Any,
        runs: Sequence[ContainerRun],
        job_name: str,
        started: float,
        generation: int,
        ended: threading.Event,
    ) -> list[ContainerOutcome]:
        deadline = started + runs[0].limits.wall_seconds + self.startup_seconds
        primary = runs[0].name
        while True:
            if self._stop_generation != generation or ended.is_set():  # run_together's cleanup deletes the Job
                error = STOPPED if ended.is_set() else "stopped by the worker"
                return [self._outcome(core, None, r, None, started, error=error) for r in runs]
            pod = self._pod(core, job_name)
            statuses = {s.name: s for s in (pod.status.container_statuses or [])} if pod and pod.status else {}
            for status in statuses.values():
                waiting = status.state.waiting if status.state else None
                if waiting is not None and waiting.reason in STUCK:
                    error = f"{waiting.reason}: {waiting.message or 'the container cannot start'}"
                    return [self._outcome(core, pod, r, statuses.get(r.name), started, error=error) for r in runs]
            done = statuses.get(primary) and statuses[primary].state and statuses[primary].state.terminated
            timed_out = not done and (
                self.clock() >= deadline
                or _deadline_exceeded(batch.read_namespaced_job_status(job_name, self.namespace))
            )
            if done or timed_out:
                return [
                    self._outcome(
                        core,
                        pod,
                        r,
                        statuses.get(r.name),
                        started,
                        timed_out=bool(timed_out),
                        primary=r.name == primary,
                    )
                    for r in runs
                ]
            self.sleep(self.poll_seconds)

    def _pod(self, core: Any, job_name: str) -> Any | None:
        pods = core.list_namespaced_pod(self.namespace, label_selector=f"{RUN_LABEL}={job_name}").items or []
        return pods[0] if pods else None

    def _outcome(
        self, core: Any, pod: Any | None, run: ContainerRun, status: Any | None, started: float, *,
        timed_out: bool = False, primary: bool = True, error: str | None = None,
    ) -> ContainerOutcome:  # fmt: skip
        terminated = status.state.terminated if status is not None and status.state is not None else None
        logs = b""
        if pod is not None and status is not None and error is None:
            try:
                text = core.read_namespaced_pod_log(pod.metadata.name, self.namespace, container=run.name)
                logs = text.encode("utf-8", errors="replace") if isinstance(text, str) else bytes(text or b"")
            except k8s.ApiException as exc:
                logs = f"[logs unavailable: {exc.reason}]".encode()
        duration = self.clock() - started
        if terminated is not None and terminated.started_at and terminated.finished_at:
            duration = (terminated.finished_at - terminated.started_at).total_seconds()
        return ContainerOutcome(
            exit_code=terminated.exit_code if terminated is not None else None,
            oom_killed=terminated is not None and terminated.reason == "OOMKilled",
            timed_out=timed_out,
            stdout=tail_text(logs, run.limits.max_output_bytes),
            stderr="",
            duration=duration,
            image_digest=(status.image_id or None) if status is not None else None,
            stopped=not primary and terminated is None and not timed_out,
            error=error,
        )

    def _cleanup(self, batch: Any, networking: Any, job_name: str) -> None:
        """Delete the Job (and its pod) and the policy; what is already gone is fine."""
        for delete in (
            lambda: batch.delete_namespaced_job(job_name, self.namespace, propagation_policy="Background"),
            lambda: networking.delete_namespaced_network_policy(job_name, self.namespace),
        ):
            try:
                delete()
            except k8s.ApiException as exc:
                if exc.status != 404:
                    log.warning("could not delete %s: %s", job_name, exc.reason)


def _deadline_exceeded(job: Any) -> bool:
    conditions = (job.status.conditions if job is not None and job.status is not None else None) or []
    return any(c.type == "Failed" and c.status == "True" and c.reason == "DeadlineExceeded" for c in conditions)


def to_dict(obj: Any) -> dict[str, Any]:
    """A client model as the API's JSON (camelCase, no nulls), e.g. to validate or to write as YAML."""
    return k8s.ApiClient().sanitize_for_serialization(obj)
