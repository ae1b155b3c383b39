"""gunicorn's settings for the Assay server: the image (deploy/server.Dockerfile), the compose stack,
Kubernetes, and tests/server/test_native_stack.py all start ``gunicorn -c deploy/gunicorn.conf.py
assay.server.wsgi`` with this file, so what CI runs is what production runs.

Tuned from the environment:
  ASSAY_BIND           where to listen (default 0.0.0.0:8000)
  ASSAY_WEB_PROCESSES  worker processes (default 2; about one per CPU core)
  ASSAY_WEB_THREADS    threads per process (default 16). A worker's claim is a long poll that holds a
                       thread for up to ASSAY_LONG_POLL_SECONDS (20 s), so keep processes × threads well
                       above the number of `assay worker` processes plus the users you expect at once.
  PROMETHEUS_MULTIPROC_DIR  the folder where each process keeps its metrics (/metrics sums them); emptied
                       here before the processes start, as prometheus_client requires. Unset: a folder
                       of this server's own under the temporary folder, removed when it stops.
"""

import os
import shutil
import tempfile
from pathlib import Path

# Set here, in the arbiter, so that every process imports prometheus_client in multi-process mode; only
# the server's processes get it (`assay admin run-tasks` and `migrate` count alone, as they should).
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR", "").strip():
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(Path(tempfile.gettempdir()) / f"assay-prometheus-{os.getpid()}")
    _made_metrics_dir = True

bind = os.environ.get("ASSAY_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("ASSAY_WEB_PROCESSES", "2"))
threads = int(os.environ.get("ASSAY_WEB_THREADS", "16"))
worker_class = "gthread"
# A process that does not report to the arbiter for this long is restarted (a request may take longer:
# with threads, the heartbeat runs beside them). Uploads stream to storage, so no request needs minutes.
timeout = 60
graceful_timeout = 30
keepalive = 5
# Each process imports the app itself (no preload): nothing opened by the arbiter (metric files, database
# connections) is shared by the forked processes, and on_starting below runs before any of them write.
preload_app = False
accesslog = "-"
errorlog = "-"
# The request's own id is logged by the app (X-Request-ID); this line keeps the proxy-facing facts.
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'
forwarded_allow_ips = os.environ.get("ASSAY_FORWARDED_ALLOW_IPS", "127.0.0.1")


def on_starting(server) -> None:
    """prometheus_client's multi-process mode needs an empty folder before any process writes to it."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "").strip()
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
        Path(folder).mkdir(parents=True, exist_ok=True)


def child_exit(server, worker) -> None:
    """A process that exits takes its live gauges with it (its counters stay summed)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR", "").strip():
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    """The folder made above for this server goes with it (one set by the operator stays)."""
    if globals().get("_made_metrics_dir"):
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
