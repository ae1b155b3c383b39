"""The production stack's files, checked offline: deploy/compose (by ``docker compose config`` and by
reading it) and the server's Kubernetes manifests (deploy/kubernetes/server.yaml; the worker's are
tests/containers/test_deploy_manifests.py). No engine, cluster or network is needed.

What is held: every environment variable handed to an Assay process is one Assay (or gunicorn's
config, or a library it configures) reads; kustomization resources and images exist and are used;
selectors match labels; the Service reaches the container port; the workers' server URL is that
Service and the server accepts its host name; the migration Job and the web pods run the same image
with the same settings; server pods meet Pod Security ``restricted``; images are built from the
repository's Dockerfiles; up.sh writes a private .env with real secrets that the compose file accepts.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose"
MANIFESTS = DEPLOY / "kubernetes"
# Read by what Assay's processes configure, not by Assay's own code.
THIRD_PARTY = {"DJANGO_SETTINGS_MODULE", "PROMETHEUS_MULTIPROC_DIR", "DOCKER_HOST", "DOCKER_CONFIG", "HOME"}


def settings_read() -> set[str]:
    """Every ASSAY_* name in Assay's source and in the gunicorn config (a name built from a prefix,
    ASSAY_OIDC_<NAME>_…, counts by its prefix)."""
    names: set[str] = set()
    for path in [*(ROOT / "src" / "assay").rglob("*.py"), DEPLOY / "gunicorn.conf.py"]:
        names |= set(re.findall(r"ASSAY_[A-Z0-9_]+", path.read_text()))
    return names


def unknown(names: set[str]) -> set[str]:
    read = settings_read()
    return {n for n in names if n not in read and n not in THIRD_PARTY}


# -- docker compose ------------------------------------------------------------------------------------
def compose_command() -> list[str]:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.skip("neither `docker compose` nor docker-compose is installed (make docker-engine installs docker-compose)")


@pytest.fixture
def stack_dir(tmp_path: Path) -> Path:
    """deploy/compose copied with the .env up.sh writes on a first run (--write-env: nothing started)."""
    copy = tmp_path / "deploy" / "compose"
    shutil.copytree(COMPOSE, copy, ignore=shutil.ignore_patterns(".env"))
    done = subprocess.run(
        ["sh", str(copy / "up.sh"), "--write-env", "--host", "assay.example.org"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return copy


def env_file(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if line and not line.startswith("#"))


def test_up_sh_writes_private_generated_secrets(stack_dir: Path) -> None:
    env_path = stack_dir / ".env"
    assert stat.S_IMODE(env_path.stat().st_mode) == 0o600
    env = env_file(env_path)
    secrets = [env[k] for k in ("POSTGRES_PASSWORD", "MINIO_ROOT_PASSWORD", "ASSAY_SECRET_KEY")]
    assert all(len(s) >= 40 for s in secrets) and len(set(secrets)) == 3
    assert env["ASSAY_S3_PUBLIC_ENDPOINT_URL"] == "http://assay.example.org:9000"
    assert env["ASSAY_SITE_URL"] == "http://assay.example.org:8000"
    assert env["ASSAY_ALLOWED_HOSTS"].split(",")[0] == "assay.example.org"
    assert unknown({k for k in env if k.startswith("ASSAY_")}) == set()
    # A second run keeps them: secrets are made once.
    subprocess.run(["sh", str(stack_dir / "up.sh"), "--write-env"], check=True, capture_output=True, timeout=30)
    assert env_file(env_path) == env


def test_docker_compose_accepts_the_stack(stack_dir: Path) -> None:
    compose = compose_command()
    done = subprocess.run([*compose, "config"], cwd=stack_dir, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    config = yaml.safe_load(done.stdout)
    services = config["services"]
    # (docker-compose 1.x lists profiled services too; the plugin only with --profile)
    assert set(services) - {"docker"} == {"postgres", "minio", "storage-init", "migrate", "server", "tasks", "worker"}
    env = env_file(stack_dir / ".env")
    server = services["server"]["environment"]
    assert server["ASSAY_DATABASE_URL"] == f"postgres://assay:{env['POSTGRES_PASSWORD']}@postgres:5432/assay"
    assert server["ASSAY_SECRET_KEY"] == env["ASSAY_SECRET_KEY"]  # from env_file
    assert server["ASSAY_S3_SECRET_KEY"] == env["MINIO_ROOT_PASSWORD"]
    assert "server" in server["ASSAY_ALLOWED_HOSTS"].split(",")  # the workers' ASSAY_SERVER host
    worker = services["worker"]["environment"]
    assert urlsplit(worker["ASSAY_SERVER"]).hostname == "server"
    # The Docker engine is only in its profile.
    done = subprocess.run(
        [*compose, "--profile", "containers", "config", "--services"], cwd=stack_dir, capture_output=True, text=True
    )
    assert done.returncode == 0 and "docker" in done.stdout.split(), done.stderr


def test_the_compose_file_holds_together() -> None:
    compose = yaml.safe_load((COMPOSE / "compose.yaml").read_text())
    services = compose["services"]
    for name, service in services.items():
        if "build" in service:
            assert (COMPOSE / service["build"]["context"] / service["build"]["dockerfile"]).is_file(), name
        for dependency in service.get("depends_on", {}):
            assert dependency in services, (name, dependency)
        for volume in service.get("volumes", []):
            assert volume.split(":")[0] in compose["volumes"], (name, volume)
        assert unknown({k for k in service.get("environment", {}) if k.startswith("ASSAY_")}) == set(), name
    # migrate, server and tasks are one image with one set of settings; migrations run before the others.
    assert services["server"]["image"] == services["migrate"]["image"] == services["tasks"]["image"]
    assert services["migrate"]["command"] == ["assay", "manage", "migrate", "--noinput"]
    for name in ("server", "tasks"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["tasks"]["command"] == ["assay", "admin", "run-tasks"]
    assert services["server"]["environment"]["ASSAY_TASKS_INPROCESS"] == "0"
    assert services["docker"]["profiles"] == ["containers"]
    # Scalable: no fixed container name or host port on the workers.
    assert "container_name" not in services["worker"] and "ports" not in services["worker"]
    assert "/readyz?skip=workers" in " ".join(services["server"]["healthcheck"]["test"])


def test_the_server_image_runs_gunicorn_with_the_repositorys_config() -> None:
    dockerfile = (DEPLOY / "server.Dockerfile").read_text()
    copied = re.search(r"^COPY deploy/gunicorn\.conf\.py (\S+)$", dockerfile, re.MULTILINE)
    assert copied
    cmd = re.findall(r"^CMD (.+)$", dockerfile, re.MULTILINE)[-1]
    assert cmd == f'["gunicorn", "--config", "{copied[1]}", "assay.server.wsgi"]'
    assert re.search(r"^USER 10001:10001$", dockerfile, re.MULTILINE)
    assert re.search(r"^FROM python:3\.11-slim$", dockerfile, re.MULTILINE)
    assert "[server,audit]" in dockerfile
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(requirement.startswith("gunicorn") for requirement in extras["server"])


# -- Kubernetes: the server ----------------------------------------------------------------------------
def docs() -> list[dict[str, Any]]:
    out = []
    for resource in yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())["resources"]:
        assert (MANIFESTS / resource).is_file(), f"kustomization lists {resource}, which does not exist"
        out += [d for d in yaml.safe_load_all((MANIFESTS / resource).read_text()) if d]
    return out


def find(all_docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in all_docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def pods(all_docs: list[dict[str, Any]], namespace: str) -> dict[str, dict[str, Any]]:
    return {
        f"{d['kind']}/{d['metadata']['name']}": d["spec"]["template"]["spec"]
        for d in all_docs
        if d["kind"] in ("Deployment", "Job") and d["metadata"]["namespace"] == namespace
    }


def test_the_server_manifests_hold_together() -> None:
    all_docs = docs()
    server = find(all_docs, "Deployment", "assay-server")
    namespace = server["metadata"]["namespace"]
    assert find(all_docs, "Namespace", namespace)["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == (
        "restricted"
    )
    for kind, name in (("Deployment", "assay-server"), ("Deployment", "assay-tasks")):
        deployment = find(all_docs, kind, name)
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items(), name

    # The Service selects the web pods only and reaches their named port.
    service = find(all_docs, "Service", "assay-server")
    template = server["spec"]["template"]
    assert service["spec"]["selector"].items() <= template["metadata"]["labels"].items()
    tasks_labels = find(all_docs, "Deployment", "assay-tasks")["spec"]["template"]["metadata"]["labels"]
    assert not service["spec"]["selector"].items() <= tasks_labels.items()
    web = next(c for c in template["spec"]["containers"] if c["name"] == "server")
    (port,) = service["spec"]["ports"]
    assert port["targetPort"] in {p["name"] for p in web["ports"]}
    assert web["readinessProbe"]["httpGet"]["port"] == port["targetPort"]
    # Liveness asks only that the process answers; readiness holds the checks (workers left out: they
    # reach the server through this Service, so they would wait for each other).
    assert web["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert web["readinessProbe"]["httpGet"]["path"] == "/readyz?skip=workers"

    # The workers poll that Service, and the server accepts its name as a host.
    config = find(all_docs, "ConfigMap", "assay-server")["data"]
    url = urlsplit(find(all_docs, "ConfigMap", "assay-worker")["data"]["server"])
    assert url.hostname == f"assay-server.{namespace}.svc.cluster.local" and url.port == port["port"]
    assert url.hostname in config["ASSAY_ALLOWED_HOSTS"].split(",")

    # Every pod of the namespace: the server image, the same settings, restricted-compatible.
    images = {i["name"] for i in yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())["images"]}
    for where, pod in pods(all_docs, namespace).items():
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["automountServiceAccountToken"] is False
        for container in [*pod.get("initContainers", []), *pod["containers"]]:
            assert container["image"] == "assay-server" and "assay-server" in images, where
            assert container["envFrom"] == [
                {"configMapRef": {"name": "assay-server"}},
                {"secretRef": {"name": "assay-server"}},
            ], where
            sc = container["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"] == {"drop": ["ALL"]}, where
            assert sc["readOnlyRootFilesystem"] is True, where
            mounts = {m["name"] for m in container.get("volumeMounts", [])}
            assert mounts <= {v["name"] for v in pod.get("volumes", [])}, where
    assert unknown(set(config)) == set()
    job = find(all_docs, "Job", "assay-migrate")["spec"]["template"]["spec"]["containers"][0]
    assert job["command"] == ["assay", "manage", "migrate", "--noinput"]
    assert config["ASSAY_TASKS_INPROCESS"] == "0"
    tasks = find(all_docs, "Deployment", "assay-tasks")["spec"]["template"]["spec"]["containers"][0]
    assert tasks["command"] == ["assay", "admin", "run-tasks"]


def test_the_readme_names_the_secret_keys_assay_reads() -> None:
    readme = (MANIFESTS / "README.md").read_text()
    block = readme.split("create secret generic assay-server", 1)[1].split("```", 1)[0]
    keys = set(re.findall(r"--from-literal=(\w+)=", block))
    assert keys == {"ASSAY_SECRET_KEY", "ASSAY_DATABASE_URL", "ASSAY_S3_ACCESS_KEY", "ASSAY_S3_SECRET_KEY"}
    assert unknown(keys) == set()
    assert os.path.basename(str(DEPLOY / "server.Dockerfile")) in readme
