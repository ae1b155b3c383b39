# syntax=docker/dockerfile:1
#
# The Assay worker (`assay worker`), for Kubernetes (deploy/kubernetes/) or any container host.
#
# Build from the repository root, which is the build context (.dockerignore keeps venvs, var/ and
# .git out of it), and push it where your cluster pulls from:
#
#   docker build -f deploy/worker.Dockerfile -t REGISTRY/assay-worker:VERSION .
#   docker push REGISTRY/assay-worker:VERSION
#
# Then set that name in deploy/kubernetes/kustomization.yaml (images:). The image holds the worker
# and the Docker and Kubernetes SDKs (assay[containers]); it runs no Docker engine of its own.
#
# Run elsewhere: docker run -e ASSAY_SERVER=https://... -e ASSAY_WORKER_TOKEN=aw_... IMAGE --workdir /tmp/w
# (the root filesystem may be read-only: the worker writes only to --workdir and to /tmp.)

# Stage 1: a wheel of this source tree; setuptools and the sources stay out of the final image.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# Stage 2: the worker.
FROM python:3.11-slim

# tini as PID 1: forwards SIGTERM to the worker (which then hands its job back to the queue) and
# reaps the evaluation processes it starts. bubblewrap: the evaluation sandbox, used where the
# container may create user namespaces; elsewhere (Kubernetes' RuntimeDefault seccomp profile) the
# worker falls back to rlimits and says so in its log (deploy/kubernetes/README.md, "Security").
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini bubblewrap \
    && rm -rf /var/lib/apt/lists/*

# `pip install 'assay[containers]'`, from the wheel built above (never an "assay" from an index).
COPY --from=build /wheels /wheels
RUN set -- /wheels/assay-*.whl \
    && pip install --no-cache-dir "$1[containers]" \
    && rm -rf /wheels

# A numeric, non-root user: Kubernetes can verify runAsNonRoot only for a numeric USER, and the
# manifests (runAsUser/fsGroup 10001) and the Docker engine socket's group expect this one.
# /data belongs to it: a volume mounted there starts with that owner (the compose stack's shared workdir).
RUN groupadd --gid 10001 assay \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin assay \
    && mkdir /data && chown 10001:10001 /data
USER 10001:10001

# HOME=/tmp: pip (evaluation scripts' requirements) needs a writable home under a read-only root.
ENV HOME=/tmp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
WORKDIR /tmp

ENTRYPOINT ["tini", "--", "assay", "worker"]
