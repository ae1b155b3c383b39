#!/usr/bin/env sh
# Start Assay's production stack (compose.yaml here): the one command of README "Running in production".
#
#   deploy/compose/up.sh [--workers N] [--containers] [--host NAME] [--write-env]
#
# First run: writes .env beside compose.yaml with generated secrets (database, object store, Django's
# secret key) and this host's address (--host, default: its first IP address), where browsers and
# workers reach the server (port 8000) and the object store (port 9000). Then builds the images from
# the repository, migrates, starts server, tasks, PostgreSQL and MinIO, creates the workers' token once
# (`assay admin worker-token create`, kept in .env) and starts N workers (default 2).
# Run it again after `git pull` to upgrade: it rebuilds, migrates and restarts what changed.
# --containers adds the Docker engine (profile `containers`) for container submissions.
# --write-env writes .env (if missing) and stops: to edit settings before the first start.
set -eu
cd "$(dirname "$0")"

workers=2
containers=""
host=""
write_env_only=""
while [ $# -gt 0 ]; do
  case "$1" in
    --workers) workers="$2"; shift 2 ;;
    --containers) containers=1; shift ;;
    --host) host="$2"; shift 2 ;;
    --write-env) write_env_only=1; shift ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "up.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$workers" in ''|*[!0-9]*) echo "up.sh: --workers takes a number" >&2; exit 2 ;; esac

if docker compose version >/dev/null 2>&1; then
  compose() { docker compose "$@"; }
elif command -v docker-compose >/dev/null 2>&1; then
  compose() { docker-compose "$@"; }
else
  echo "up.sh: needs docker compose (the Docker Compose plugin) or docker-compose" >&2; exit 1
fi

# 32 random bytes as hex: safe in URLs (the database password is part of ASSAY_DATABASE_URL) and in .env.
secret() { od -An -N32 -tx1 /dev/urandom | tr -d ' \n'; }

if [ ! -f .env ]; then
  [ -n "$host" ] || host=$(hostname -I 2>/dev/null | awk '{print $1}')
  [ -n "$host" ] || host=localhost
  umask 077
  cat >.env <<EOF
# Written by up.sh on $(date -u +%Y-%m-%dT%H:%MZ). Secrets: keep this file private. Any ASSAY_* setting
# (README "Running in production") may be added; apply with deploy/compose/up.sh.
COMPOSE_PROJECT_NAME=assay
POSTGRES_PASSWORD=$(secret)
MINIO_ROOT_USER=assay
MINIO_ROOT_PASSWORD=$(secret)
ASSAY_SECRET_KEY=$(secret)
# Where people and workers reach this machine (put your DNS name here, behind TLS for production).
ASSAY_ALLOWED_HOSTS=$host,localhost,127.0.0.1
ASSAY_CSRF_TRUSTED_ORIGINS=http://$host:8000
ASSAY_SITE_URL=http://$host:8000
ASSAY_S3_PUBLIC_ENDPOINT_URL=http://$host:9000
EOF
  echo "wrote $(pwd)/.env (generated secrets; public address $host)"
fi

[ -z "$write_env_only" ] || exit 0

if [ -n "$containers" ] && ! grep -q '^ASSAY_DOCKER_HOST=' .env; then
  echo "ASSAY_DOCKER_HOST=tcp://docker:2375" >>.env
fi
if grep -q '^ASSAY_DOCKER_HOST=.' .env; then
  export COMPOSE_PROFILES=containers
fi

compose build
compose up -d server tasks
if ! grep -q '^ASSAY_WORKER_TOKEN=.' .env; then
  token=$(compose exec -T server assay admin worker-token create --name compose-workers --json |
    sed -n 's/.*"token": *"\([^"]*\)".*/\1/p')
  [ -n "$token" ] || { echo "up.sh: could not create the workers' token (see: compose logs server)" >&2; exit 1; }
  echo "ASSAY_WORKER_TOKEN=$token" >>.env
  echo "created the workers' token (in .env; revoke with: assay admin worker-token revoke ID)"
fi
compose up -d --scale worker="$workers"
compose ps
echo "Assay: http://$(sed -n 's/^ASSAY_ALLOWED_HOSTS=\([^,]*\).*/\1/p' .env):8000/  (admin account:"
echo "  docker compose -p assay exec server assay manage createsuperuser)"
