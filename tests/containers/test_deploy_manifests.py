"""deploy/: the worker image and the Kubernetes manifests, checked offline (there is no cluster here or in CI).

Every manifest is validated against the Kubernetes 1.30 schemas, and held to what the code needs: the Role
grants exactly the API calls the Kubernetes backend makes (recorded through the real client), the worker's
environment is what ``assay worker`` and ``_kubernetes_runner`` read (a runner is built from it), the
claim the Jobs mount lives in their namespace, the worker runs as the image's non-root user, and the pods
meet Pod Security ``restricted`` where the namespace asks for it. With ``kubectl`` installed, both
kustomize builds (in-pod Docker engine, and the external-docker component) are built and checked too.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

pytest.importorskip("kubernetes", reason="pip install -e '.[containers]' (the kubernetes client)")
kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="pip install -e .[test] (kubernetes-validate)")

import urllib3  # noqa: E402
from kubernetes import client as k8s  # noqa: E402
from kubernetes.client import rest  # noqa: E402

from assay.evaluation import EvaluationLimits  # noqa: E402
from assay.evaluation.containers import ContainerRun, run_environment, run_static_dataset  # noqa: E402
from assay.evaluation.containers.docker_backend import DockerBackend  # noqa: E402
from assay.evaluation.containers.kubernetes_backend import KubernetesBackend, to_dict  # noqa: E402
from assay.worker import containers as worker_containers  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
MANIFESTS = DEPLOY / "kubernetes"
COMPONENT = "external-docker"
ENGINE = "docker-engine"  # the in-pod Docker engine: the one container allowed to be privileged
LIMITS = EvaluationLimits(wall_seconds=60, memory_bytes=512 * 1024**2, tmp_bytes=64 * 1024**2)
REFERENCE = re.compile(r"\$\((\w+)\)")


# -- loading -------------------------------------------------------------------------------------------
def manifest_files() -> list[Path]:
    return sorted(p for p in MANIFESTS.rglob("*.yaml") if p.name != "kustomization.yaml")


def documents(files: list[Path] | None = None) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in files if files is not None else manifest_files():
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                out.append((path.relative_to(MANIFESTS).as_posix(), doc))
    return out


def find(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def base_docs() -> list[dict[str, Any]]:
    return [doc for _, doc in documents()]


def pod_spec(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return find(docs, "StatefulSet", "assay-worker")["spec"]["template"]["spec"]


def worker_container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return next(c for c in pod_spec(docs)["containers"] if c["name"] == "worker")


def kustomize(directory: Path) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: the kustomize builds are not checked")
    built = subprocess.run([kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=60)
    assert built.returncode == 0, built.stderr
    return [d for d in yaml.safe_load_all(built.stdout) if d is not None]


def with_component(tmp_path: Path) -> Path:
    """A copy of deploy/kubernetes with external-docker enabled as its kustomization's comment says."""
    copy = tmp_path / "kubernetes"
    shutil.copytree(MANIFESTS, copy)
    kustomization = copy / "kustomization.yaml"
    text = kustomization.read_text()
    enabled = text.replace(f"# components:\n#   - {COMPONENT}\n", f"components:\n  - {COMPONENT}\n")
    assert enabled != text, "kustomization.yaml no longer has the commented-out external-docker component"
    kustomization.write_text(enabled)
    return copy


# -- Pod Security `restricted` (https://kubernetes.io/docs/concepts/security/pod-security-standards/) ----
RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim"}
RESTRICTED_VOLUMES |= {"projected", "secret"}


def restricted_violations(pod: dict[str, Any], *, skip: frozenset[str] = frozenset()) -> list[str]:
    problems = [key for key in ("hostNetwork", "hostPID", "hostIPC") if pod.get(key)]
    for volume in pod.get("volumes") or []:
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUMES:
            problems.append(f"volume {volume['name']}: {sorted(kinds)}")
    pod_sc = pod.get("securityContext") or {}
    if pod_sc.get("runAsUser") == 0 or pod_sc.get("sysctls"):
        problems.append("pod securityContext: runAsUser 0 or sysctls")
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for c in pod.get(key) or []:
            if c["name"] in skip:
                continue
            sc, name = c.get("securityContext") or {}, c["name"]
            caps = sc.get("capabilities") or {}
            seccomp = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
            checks = {
                "privileged": not sc.get("privileged"),
                "allowPrivilegeEscalation: false": sc.get("allowPrivilegeEscalation") is False,
                "capabilities drop ALL": "ALL" in (caps.get("drop") or []),
                "no added capabilities but NET_BIND_SERVICE": set(caps.get("add") or []) <= {"NET_BIND_SERVICE"},
                "runAsNonRoot": sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True,
                "runAsUser not 0": sc.get("runAsUser", pod_sc.get("runAsUser")) != 0,
                "seccomp RuntimeDefault or Localhost": seccomp in ("RuntimeDefault", "Localhost"),
                "no hostPort": not any(p.get("hostPort") for p in c.get("ports") or []),
                "procMount Default": sc.get("procMount", "Default") == "Default",
            }
            problems += [f"{name}: {check}" for check, ok in checks.items() if not ok]
    return problems


def undefined_references(container: dict[str, Any]) -> list[str]:
    """$(VAR) in env values must name a variable defined above it, in args/command any of the env."""
    defined: list[str] = []
    problems = []
    for entry in container.get("env") or []:
        references = REFERENCE.findall(entry.get("value", ""))
        problems += [f"{entry['name']} uses $({r})" for r in references if r not in defined]
        defined.append(entry["name"])
    for arg in (container.get("command") or []) + (container.get("args") or []):
        problems += [f"{arg!r} uses $({r})" for r in REFERENCE.findall(arg) if r not in defined]
    return problems


# -- the manifests as files ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "doc", [pytest.param(doc, id=f"{name}:{doc['kind']}/{doc['metadata']['name']}") for name, doc in documents()]
)
def test_every_manifest_is_valid_kubernetes_1_30(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, "1.30", strict=True)


def test_the_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    files = sorted(p.name for p in MANIFESTS.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(kustomization["resources"]) == files
    component = yaml.safe_load((MANIFESTS / COMPONENT / "kustomization.yaml").read_text())
    assert component["kind"] == "Component"
    assert sorted(p.name for p in (MANIFESTS / COMPONENT).iterdir()) == ["kustomization.yaml"]  # patches inline
    images = {i["name"] for i in kustomization["images"]}
    assert worker_container(base_docs())["image"] in images  # `images:` is where the real name is set


def test_the_role_grants_exactly_what_the_backend_calls(tmp_path: Path) -> None:
    docs = base_docs()
    role = find(docs, "Role", "assay-worker")
    granted = {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    assert "*" not in {part for grant in granted for part in grant}
    assert not [d for d in docs if d["kind"] in ("ClusterRole", "ClusterRoleBinding")]

    namespace = role["metadata"]["namespace"]
    calls = recorded_calls(tmp_path, namespace)
    assert {namespace} == {ns for ns, _ in calls}, "the backend called outside its namespace"
    assert granted == {call for _, call in calls}

    binding = find(docs, "RoleBinding", "assay-worker")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "assay-worker"}
    assert binding["metadata"]["namespace"] == namespace
    statefulset = find(docs, "StatefulSet", "assay-worker")
    account = statefulset["spec"]["template"]["spec"]["serviceAccountName"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account, "namespace": namespace}]
    assert find(docs, "ServiceAccount", account)["metadata"]["namespace"] == namespace
    assert statefulset["metadata"]["namespace"] == namespace  # the Jobs run in the worker's namespace


def test_the_worker_environment_is_what_the_worker_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    docs = base_docs()
    statefulset = find(docs, "StatefulSet", "assay-worker")
    pod, container = pod_spec(docs), worker_container(docs)
    assert undefined_references(container) == []
    names = [e["name"] for e in container["env"]]
    assert len(names) == len(set(names))

    # ASSAY_KUBERNETES_*: exactly the settings _kubernetes_runner reads, no misspelt extra.
    source = Path(worker_containers.__file__).read_text()
    read = set(re.findall(r'os\.environ\.get\("(ASSAY_KUBERNETES_\w+)"\)', source))
    assert {"ASSAY_KUBERNETES_PVC", "ASSAY_KUBERNETES_REGISTRY", "ASSAY_KUBERNETES_NAMESPACE"} <= read
    assert {n for n in names if n.startswith("ASSAY_KUBERNETES_")} == read

    # The server and token come from the environment variables `assay worker` declares; the args parse.
    command = worker_command()
    envvars = {p.name: p.envvar for p in command.params if getattr(p, "envvar", None)}
    assert {envvars["server"], envvars["token"]} <= set(names)
    token = next(e for e in container["env"] if e["name"] == envvars["token"])
    assert token["valueFrom"]["secretKeyRef"] == {"name": "assay-worker-token", "key": "token"}

    namespace = statefulset["metadata"]["namespace"]
    env = resolve_env(container, docs, pod_name=f"{statefulset['metadata']['name']}-0", namespace=namespace)
    monkeypatch.setenv(envvars["server"], env[envvars["server"]])
    monkeypatch.setenv(envvars["token"], "aw_test")
    context = command.make_context("worker", list(resolve_args(container, env)))
    assert context.params["containers"] == "kubernetes"
    workdir = Path(context.params["workdir"])

    # The claim the Jobs mount (ASSAY_KUBERNETES_PVC) is in their namespace, and the worker mounts it at
    # ASSAY_KUBERNETES_DATA_ROOT, with its workdir on it.
    claim = env["ASSAY_KUBERNETES_PVC"]
    assert env["ASSAY_KUBERNETES_NAMESPACE"] == namespace
    assert find(docs, "PersistentVolumeClaim", claim)["metadata"]["namespace"] == namespace
    assert "ReadWriteMany" in find(docs, "PersistentVolumeClaim", claim)["spec"]["accessModes"]
    data_root = Path(env["ASSAY_KUBERNETES_DATA_ROOT"])
    mount = next(m for m in container["volumeMounts"] if Path(m["mountPath"]) == data_root)
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    assert volume["persistentVolumeClaim"]["claimName"] == claim and not mount.get("readOnly")
    assert workdir.is_relative_to(data_root) and workdir != data_root

    # The runner built from that environment, with the volume's mount point moved under tmp_path.
    shared = tmp_path / "data"
    for name, value in env.items():
        if name.startswith("ASSAY_KUBERNETES_"):
            monkeypatch.setenv(name, value.replace(str(data_root), str(shared)))
    monkeypatch.setattr(KubernetesBackend, "_api", lambda self: (None, None, None))
    monkeypatch.setattr(DockerBackend, "client", property(lambda self: "docker-client"))
    runner = worker_containers._kubernetes_runner(shared / workdir.relative_to(data_root))
    backend = runner.backend
    assert isinstance(backend, KubernetesBackend)
    assert backend.namespace == namespace
    assert backend.data_volume.persistent_volume_claim.claim_name == claim
    assert backend.data_root == shared.resolve()
    assert runner.registry == find(docs, "ConfigMap", "assay-worker")["data"]["registry"]
    assert backend.runtime_class is None  # an empty runtime-class means none


def test_the_worker_runs_as_the_images_non_root_user() -> None:
    dockerfile = (DEPLOY / "worker.Dockerfile").read_text()
    user = re.findall(r"^USER (\d+):(\d+)$", dockerfile, re.MULTILINE)
    assert len(user) == 1 and user[0][0] != "0"
    entrypoint = json.loads(re.findall(r"^ENTRYPOINT (.+)$", dockerfile, re.MULTILINE)[-1])
    assert entrypoint[-2:] == ["assay", "worker"]
    assert re.search(r"^FROM python:3\.11-slim$", dockerfile, re.MULTILINE)
    assert "[containers]" in dockerfile

    docs = base_docs()
    sc = worker_container(docs)["securityContext"]
    assert sc["runAsNonRoot"] is True and (str(sc["runAsUser"]), str(sc["runAsGroup"])) == user[0]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]} and sc.get("privileged") is False
    assert pod_spec(docs)["securityContext"]["fsGroup"] == sc["runAsGroup"]
    assert f"--group={user[0][1]}" in next(c for c in pod_spec(docs)["initContainers"] if c["name"] == ENGINE)["args"]


def test_pod_security(tmp_path: Path) -> None:
    docs = base_docs()
    labels = find(docs, "Namespace", "assay-runs")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/warn"] == labels["pod-security.kubernetes.io/audit"] == "restricted"
    pod = pod_spec(docs)
    assert restricted_violations(pod, skip=frozenset({ENGINE})) == []
    assert all(v.startswith(f"{ENGINE}: ") for v in restricted_violations(pod))  # the documented exception

    # The Jobs the backend creates meet `restricted` (so the external-docker component may enforce it).
    backend = KubernetesBackend(
        "assay-runs", batch_api=object(), core_api=object(), networking_api=object(),
        data_volume=k8s.V1Volume(name="data", persistent_volume_claim=k8s.V1PersistentVolumeClaimVolumeSource(
            claim_name="assay-worker-data")),
        data_root=tmp_path, runtime_class="gvisor",
    )  # fmt: skip
    (tmp_path / "inputs").mkdir()
    runs = [
        ContainerRun(image="r/env@sha256:1", inputs={tmp_path / "inputs": "/input"}, output_dir=tmp_path / "out",
                     limits=LIMITS, network="internal", name="environment", user="1000:1000"),
        ContainerRun(image="r/agent@sha256:2", limits=LIMITS, network="internal", name="agent"),
    ]  # fmt: skip
    job, _ = backend.manifests(runs, "assay-run-test")
    assert restricted_violations(to_dict(job)["spec"]["template"]["spec"]) == []


def test_the_kustomize_builds(tmp_path: Path) -> None:
    built = kustomize(MANIFESTS)
    assert len(built) == len(base_docs())
    for doc in built:
        kubernetes_validate.validate(doc, "1.30", strict=True)
    kustomization = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    image = next(i for i in kustomization["images"] if i["name"] == "assay-worker")
    assert worker_container(built)["image"] == f"{image['newName']}:{image['newTag']}"

    external = kustomize(with_component(tmp_path))
    for doc in external:
        kubernetes_validate.validate(doc, "1.30", strict=True)
    assert (
        find(external, "Namespace", "assay-runs")["metadata"]["labels"]["pod-security.kubernetes.io/enforce"]
        == "restricted"
    )
    pod, container = pod_spec(external), worker_container(external)
    assert restricted_violations(pod) == []  # nothing privileged left: the namespace can enforce it
    assert undefined_references(container) == []
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["DOCKER_HOST"].startswith("tcp://$(POD_NAME).") and env["DOCKER_TLS_VERIFY"] == "1"
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["docker-tls"] == env["DOCKER_CERT_PATH"]
    assert {v["name"] for v in pod["volumes"]} == set(mounts)  # the sidecar's volumes went with it


def test_the_readme_names_real_commands_and_objects() -> None:
    readme = (MANIFESTS / "README.md").read_text()
    from typer.testing import CliRunner

    from assay.cli.main import app

    for command in re.findall(r"^\s*(assay admin [a-z-]+ [a-z-]+)", readme, re.MULTILINE):
        result = CliRunner().invoke(app, [*command.split()[1:], "--help"])
        assert result.exit_code == 0, f"{command}: {result.output}"
    assert "assay admin worker-token create" in readme
    for name in ("assay-worker-token", "assay-registry", "assay-docker-tls", "kubectl apply -k deploy/kubernetes"):
        assert name in readme


# -- helpers: the worker's command and environment as Kubernetes would make them ------------------------
def worker_command() -> Any:
    from typer.main import get_command

    from assay.cli.main import app

    return get_command(app).commands["worker"]


def resolve_env(container: dict[str, Any], docs: list[dict[str, Any]], *, pod_name: str, namespace: str) -> dict:
    fields = {"metadata.name": pod_name, "metadata.namespace": namespace}
    env: dict[str, str] = {}
    for entry in container["env"]:
        if "value" in entry:
            env[entry["name"]] = REFERENCE.sub(lambda m: env[m[1]], entry["value"])
            continue
        source = entry["valueFrom"]
        if "fieldRef" in source:
            env[entry["name"]] = fields[source["fieldRef"]["fieldPath"]]
        elif "configMapKeyRef" in source:
            ref = source["configMapKeyRef"]
            env[entry["name"]] = find(docs, "ConfigMap", ref["name"])["data"][ref["key"]]
        else:
            assert "secretKeyRef" in source  # created by the operator (README.md)
    return env


def resolve_args(container: dict[str, Any], env: dict[str, str]) -> list[str]:
    return [REFERENCE.sub(lambda m: env[m[1]], arg) for arg in container.get("args") or []]


# -- helpers: the backend's calls, through the real client, down to HTTP -------------------------------
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def recorded_calls(tmp_path: Path, namespace: str) -> list[tuple[str, tuple[str, str, str]]]:
    """Run a static-dataset and an environment job on the real client APIs over a fake HTTP layer;
    returns (namespace, (apiGroup, resource, verb)) per request, as RBAC sees them."""
    calls: list[tuple[str, tuple[str, str, str]]] = []
    polls: list[list[str]] = []

    def request(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        namespace_, group, resource, name, query = parse(url, kwargs.get("query_params"))
        verb = {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method)
        if method == "GET":
            verb = "get" if name else ("watch" if query.get("watch") in (["true"], ["1"]) else "list")
        if method == "DELETE":
            verb = "delete" if name else "deletecollection"
        calls.append((namespace_, (group, resource, verb)))
        body: Any = {"kind": "Status", "apiVersion": "v1", "status": "Success"}
        if method == "POST":
            body = kwargs.get("body")
        elif resource == "pods/log":
            return respond("the container's output\n", "text/plain")
        elif resource == "jobs/status":
            body = {"apiVersion": "batch/v1", "kind": "Job", "status": {}}
        elif resource == "pods":
            names = polls.pop(0) if len(polls) > 1 else polls[0]
            body = {"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": [pod(names)] if names else []}
        return respond(json.dumps(body), "application/json")

    api = k8s.ApiClient()
    api.rest_client.request = request  # type: ignore[method-assign]
    backend = KubernetesBackend(
        namespace, batch_api=k8s.BatchV1Api(api), core_api=k8s.CoreV1Api(api),
        networking_api=k8s.NetworkingV1Api(api),
        data_volume=k8s.V1Volume(name="data", persistent_volume_claim=k8s.V1PersistentVolumeClaimVolumeSource(
            claim_name="assay-worker-data")),
        data_root=tmp_path, sleep=lambda seconds: None,
    )  # fmt: skip

    (tmp_path / "inputs").mkdir()
    (tmp_path / "static" / "output").mkdir(parents=True)
    (tmp_path / "static" / "output" / "submission.csv").write_text("id,label\n")
    polls[:] = [[], ["submission"]]  # not scheduled yet (the Job's status is read), then done
    static = run_static_dataset(backend, "r/p@sha256:1", tmp_path / "inputs", tmp_path / "static", limits=LIMITS)
    assert static.ok, static.outcome.error
    polls[:] = [[], ["environment", "agent"]]
    environment = run_environment(backend, "r/env@sha256:1", "r/agent@sha256:2", tmp_path / "env", limits=LIMITS)
    assert environment.error != "stopped by the worker" and calls
    return calls


def parse(url: str, query_params: Any) -> tuple[str, str, str, str | None, dict[str, list[str]]]:
    """/api/v1/namespaces/NS/RES[/NAME[/SUB]] or /apis/GROUP/VERSION/namespaces/NS/RES[/NAME[/SUB]]."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    for key, value in query_params or []:
        query.setdefault(key, []).append(str(value).lower())
    segments = parts.path.strip("/").split("/")
    group, rest = ("", segments[2:]) if segments[0] == "api" else (segments[1], segments[3:])
    assert rest[0] == "namespaces", f"a cluster-wide request: {url}"
    resource, name, sub = rest[2], (rest[3:4] or [None])[0], rest[4:5]
    return rest[1], group, "/".join([resource, *sub]), name, query


def pod(containers: list[str]) -> dict[str, Any]:
    """The Job's pod with every container finished."""
    finished = {"exitCode": 0, "reason": "Completed", "startedAt": T0.isoformat(),
                "finishedAt": (T0 + dt.timedelta(seconds=3)).isoformat()}  # fmt: skip
    statuses = [
        {"name": name, "image": "img", "imageID": "img@sha256:1", "ready": False, "restartCount": 0,
         "state": {"terminated": finished}}
        for name in containers
    ]  # fmt: skip
    return {"metadata": {"name": "pod-1"}, "status": {"containerStatuses": statuses}}


def respond(body: str, content_type: str) -> Any:
    raw = urllib3.HTTPResponse(body=body.encode(), status=200, headers={"Content-Type": content_type})
    return rest.RESTResponse(raw)
