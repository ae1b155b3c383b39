# syntax=docker/dockerfile:1
#
# The Assay server: the web UI, the API and the admin under gunicorn (deploy/gunicorn.conf.py), for the
# compose stack (deploy/compose/) and Kubernetes (deploy/kubernetes/server.yaml). The same image runs
# the one-shot `assay manage migrate --noinput` and the background-task process `assay admin run-tasks`.
#
# Build from the repository root, which is the build context (.dockerignore keeps venvs, var/ and .git
# out of it); nothing but the base image and PyPI packages is fetched:
#
#   docker build -f deploy/server.Dockerfile -t REGISTRY/assay-server:VERSION .
#
# Settings are environment variables (README "Running in production"); the container keeps nothing
# worth keeping: the database is PostgreSQL (ASSAY_DATABASE_URL) and files live in an S3-compatible
# bucket (ASSAY_STORAGE_URL=s3://...). Without a bucket, mount a volume at /var/lib/assay/media.

# Stage 1: a wheel of this source tree; setuptools and the sources stay out of the final image.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# Stage 2: the server.
FROM python:3.11-slim

# tini as PID 1 (forwards SIGTERM to gunicorn, which then finishes its requests); Pango, HarfBuzz's
# subsetter and a font for WeasyPrint, which renders the audit report as PDF.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 \
       fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*

# `pip install 'assay[server,audit]'` from the wheel built above (never an "assay" from an index):
# server brings Django, gunicorn, psycopg and django-storages; audit the report's metrics and plots.
COPY --from=build /wheels /wheels
RUN set -- /wheels/assay-*.whl \
    && pip install --no-cache-dir "$1[server,audit]" \
    && rm -rf /wheels

COPY deploy/gunicorn.conf.py /etc/assay/gunicorn.conf.py

# A numeric, non-root user (Kubernetes checks runAsNonRoot only for a numeric USER); /var/lib/assay is
# ASSAY_VAR_DIR: the static files collected below, and local media when no bucket is configured.
RUN groupadd --gid 10001 assay \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin assay \
    && mkdir -p /var/lib/assay/media \
    && chown -R 10001:10001 /var/lib/assay

ENV HOME=/tmp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=assay.server.settings \
    ASSAY_VAR_DIR=/var/lib/assay \
    ASSAY_COMPRESS_STATIC=1

# Static files collected and compressed once, at build time: WhiteNoise serves them from here.
USER 10001:10001
RUN ASSAY_SECRET_KEY=build-only assay manage collectstatic --noinput --verbosity 0

WORKDIR /tmp
EXPOSE 8000
ENTRYPOINT ["tini", "--"]
CMD ["gunicorn", "--config", "/etc/assay/gunicorn.conf.py", "assay.server.wsgi"]
