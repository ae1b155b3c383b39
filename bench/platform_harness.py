"""A real Assay server (and workers) in subprocesses on loopback, for the benchmarks.

``Platform`` starts ``bench/_serve.py`` (migrate, seed a benchmark challenge, the embedded worker — in its
own process by default, ``embedded="thread"`` for a thread of the server —, Django's threaded server: what
``assay demo`` runs) against a fresh ``ASSAY_VAR_DIR``, and talks to it with
httpx exactly as a participant would (the throughput row sends the same submit request's bytes from its own
client processes: ``bench/submit_client.py``).
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from measure import TICKS, _proc_tree
from submit_client import submit_request

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = sys.executable
DEPS = ROOT / "var" / "bench-deps"  # gunicorn for the API row (make bench-deps), kept out of .venv


def deps_env(env: dict) -> dict:
    if DEPS.is_dir():
        env = dict(env)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(DEPS), env.get("PYTHONPATH", "")) if p)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stat_ticks(path: str) -> tuple[int, int]:
    """(own, reaped children's) user + system clock ticks of one ``/proc/.../stat`` file."""
    f = Path(path).read_text().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12]), int(f[13]) + int(f[14])


def tree_ticks(root: int) -> dict[int, tuple[int, int]]:
    """Every process of ``root``'s tree, read once: pid -> (own, reaped children's) clock ticks."""
    out = {}
    for pid in _proc_tree(root):
        try:
            out[pid] = _stat_ticks(f"/proc/{pid}/stat")
        except (OSError, IndexError, ValueError):
            continue  # ended meanwhile: its parent counts it once it reaps it
    return out


def thread_ticks(pid: int, tid: int) -> int:
    """One thread's user + system clock ticks (``threading.Thread.native_id``); 0 once it is gone."""
    try:
        return _stat_ticks(f"/proc/{pid}/task/{tid}/stat")[0]
    except (OSError, IndexError, ValueError):
        return 0


def _total(tree: dict[int, tuple[int, int]]) -> int:
    return sum(own + reaped for own, reaped in tree.values())


_template_dir: Path | None = None


def db_template() -> Path:
    """Where this benchmark run keeps its first platform's migrated database for the later ones to copy
    (``bench/_serve.py``); a directory of this process, removed when it exits."""
    global _template_dir
    if _template_dir is None:
        _template_dir = Path(tempfile.mkdtemp(prefix="assay-bench-template-"))
        atexit.register(shutil.rmtree, _template_dir, True)
    return _template_dir / "assay.sqlite3"


def base_env(var_dir: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    for name in ("ASSAY_INPROCESS_WORKER_SLOTS", "ASSAY_QUEUE_WAKE_SOCKETS"):  # A/Bs: the batched protocol, the pokes
        if name in os.environ:
            env[name] = os.environ[name]
    env.update(
        ASSAY_VAR_DIR=str(var_dir),
        ASSAY_BENCH_DB_TEMPLATE=str(db_template()),  # read by bench/_serve.py only: migrate once per benchmark run
        ASSAY_SUBMIT_RATE="1000000/min",
        ASSAY_LOGIN_RATE="1000000/min",
        ASSAY_LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
        DJANGO_SETTINGS_MODULE="bench_settings",  # the product's settings plus the baseline endpoints
        PYTHONPATH=os.pathsep.join(p for p in (str(HERE), env.get("PYTHONPATH", "")) if p),
    )
    return env


class Platform:
    def __init__(self, *, worker: bool = True, external_workers: int = 0, extra_challenges: int = 0,
                 teams: int = 0, server: str = "runserver", embedded: str = "process") -> None:  # fmt: skip
        self.worker = worker
        self.embedded = embedded
        self.external_workers = external_workers
        self.extra_challenges = extra_challenges
        self.teams = teams
        self.server_kind = server
        self.procs: list[subprocess.Popen] = []
        self._cpu_seen: dict[str, float] = {}  # each part's highest reading (cpu())

    def __enter__(self) -> Platform:
        t_start = time.monotonic()
        self.dir = Path(tempfile.mkdtemp(prefix="assay-bench-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        info = self.dir / "info.json"
        env = base_env(self.dir)
        env["ASSAY_EMBEDDED_WORKER"] = self.embedded
        cmd = [PY, str(HERE / "_serve.py"), "--port", str(self.port), "--info", str(info),
               "--extra-challenges", str(self.extra_challenges), "--teams", str(self.teams)]  # fmt: skip
        if not self.worker:
            cmd.append("--no-worker")
        self.log = open(self.dir / "server.log", "wb")  # noqa: SIM115
        if self.server_kind == "gunicorn":
            subprocess.run([*cmd, "--wsgi-only"], env=env, check=True, stdout=self.log, stderr=self.log)
            gunicorn = [PY, "-m", "gunicorn", "assay.server.wsgi:application", "-b", f"127.0.0.1:{self.port}",
                        "-w", str(os.cpu_count() or 2), "--threads", "4", "--log-level", "warning"]  # fmt: skip
            self.server = subprocess.Popen(
                gunicorn, env=deps_env(env), stdout=self.log, stderr=self.log, start_new_session=True
            )
        else:
            self.server = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=self.log, start_new_session=True)
        self.procs.append(self.server)
        try:
            self._wait_until_serving(info)
        except BaseException:
            self.api = None
            self.__exit__()  # no server left behind when it never came up
            raise
        self.start_s = round(time.monotonic() - t_start, 2)  # process start, migrate, seed, until it answers
        self.info = json.loads(info.read_text())
        thread_file = self.dir / "worker-thread"  # _serve.py writes the in-process worker thread's id there
        self.worker_thread = int(thread_file.read_text()) if thread_file.exists() else None
        process_file = self.dir / "worker-process"  # or the embedded worker process's id
        self.worker_process = int(process_file.read_text()) if process_file.exists() else None
        tasks_file = self.dir / "tasks-thread"  # and the background-task thread's, once the server started it
        for _ in range(40):
            if tasks_file.exists() or self.server_kind == "gunicorn" or self.worker_process:
                break
            time.sleep(0.05)
        self.tasks_thread = int(tasks_file.read_text()) if tasks_file.exists() else None
        self.api = httpx.Client(base_url=self.url + "/api/v1", timeout=60,
                                headers={"Authorization": f"Bearer {self.info['token']}"})  # fmt: skip
        for n in range(self.external_workers):
            wenv = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
            wenv["ASSAY_WORKER_TOKEN"] = self.info["worker_token"]
            wenv["ASSAY_LOG_LEVEL"] = "WARNING"
            self.procs.append(subprocess.Popen(
                [PY, "-m", "assay.cli.main", "worker", "--server", self.url, "--workdir", str(self.dir / f"w{n}")],
                env=wenv, stdout=self.log, stderr=self.log, start_new_session=True))  # fmt: skip
        return self

    def _wait_until_serving(self, info: Path) -> None:
        """Until the seeded server answers; a 5xx (say, a broken import in the checkout) ends the wait at once."""
        deadline = time.monotonic() + 180
        while True:
            if self.server.poll() is not None:
                raise RuntimeError(f"the server stopped: {(self.dir / 'server.log').read_text()[-2000:]}")
            if info.exists() and info.stat().st_size:
                try:
                    status = httpx.get(self.url + "/api/v1/challenges", timeout=2).status_code
                except httpx.HTTPError:
                    status = None
                if status == 200:
                    return
                if status is not None and status >= 500:
                    raise RuntimeError(f"the server answered {status}: {(self.dir / 'server.log').read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not start in 180 s")
            time.sleep(0.1)

    def __exit__(self, *exc) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for proc in self.procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if self.api is not None:
            self.api.close()
        self.log.close()
        # removed when the run ends, not now: deleting a platform's thousands of files just before the next
        # platform starts made that one's file creations slow (ext4's inode allocator skips recently deleted
        # inodes, reading each one's block: up to 4 ms of kernel CPU per result in the next round)
        atexit.register(shutil.rmtree, self.dir, True)

    def submit(self, content: bytes, name: str = "preds.json", api: httpx.Client | None = None) -> int:
        client = api or self.api
        response = client.send(submit_request(client, self.info["phase"], content, name))
        if response.status_code != 201:
            raise RuntimeError(f"submit answered {response.status_code}: {response.text[:300]}")
        return response.json()["id"]

    def client(self, token: str | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.url + "/api/v1", timeout=60,
                            headers={"Authorization": f"Bearer {token or self.info['token']}"})  # fmt: skip

    def cpu(self) -> dict[str, float]:
        """Cumulative CPU seconds so far, by part: ``server`` (the server process's own threads; for
        gunicorn its whole process tree), ``embedded_worker`` (the embedded worker's process, with its
        background-task thread; or, in thread mode, its thread, taken out of ``server``), ``task_thread``
        (thread mode: the server's background-task thread, e-mails and webhooks; taken out too),
        ``evaluators`` (the other descendant processes: sandboxed evaluators) and ``workers`` (external
        ``assay worker`` processes with their evaluators).

        A part is whole clock ticks of one reading of each process (the threads first, then the process that
        holds them), never seconds of two readings subtracted: those made ``evaluators`` -0.0 (0.3 - 0.1 -
        0.2 < 0 in floats; the worker read after the tree). And a part never falls below an earlier call's
        figure (a descendant that leaves the tree unreaped takes its ticks along), so what a
        :class:`measure.CpuMeter` subtracts is never negative."""
        if self.server_kind == "gunicorn":
            ticks = {"server": _total(tree_ticks(self.server.pid))}
        else:
            ticks = self._embedded_ticks()
        if self.external_workers:
            ticks["workers"] = sum(_total(tree_ticks(p.pid)) for p in self.procs[1:])
        out = {}
        for name, n in ticks.items():
            out[name] = self._cpu_seen[name] = max(max(n, 0) / TICKS, self._cpu_seen.get(name, 0.0))
        return out

    def _embedded_ticks(self) -> dict[str, int]:
        """``cpu()``'s parts for the server of ``bench/_serve.py``, in clock ticks."""
        pid = self.server.pid
        threads = {}  # read before their process: a thread's ticks then never pass its share of the process's
        if self.worker_thread:
            threads["embedded_worker"] = thread_ticks(pid, self.worker_thread)
        if self.tasks_thread:  # the results' e-mails and webhooks, run after them
            threads["task_thread"] = thread_ticks(pid, self.tasks_thread)
        tree = tree_ticks(pid)
        own = tree.get(pid, (0, 0))[0]
        child = tree.get(self.worker_process, (0, 0))[0] if self.worker_process else 0
        parts = {"server": own - sum(threads.values()), "evaluators": _total(tree) - own - child}
        if self.worker_process:
            parts["embedded_worker"] = child
        parts.update(threads)
        return parts

    def settle(self, *, window_s: float = 0.25, busy_share: float = 0.08, timeout_s: float = 15.0) -> float:
        """Until the platform's processes are idle (under ``busy_share`` of a core, all parts together, over two
        windows in a row) or ``timeout_s``: what a freshly started or just-drained platform still does (a child
        finishing its imports, a last task) ends before a measured stretch starts. Returns the seconds waited."""
        t0 = time.monotonic()
        before, quiet = sum(self.cpu().values()), 0
        while quiet < 2 and time.monotonic() - t0 < timeout_s:
            time.sleep(window_s)
            now = sum(self.cpu().values())
            quiet = quiet + 1 if now - before <= busy_share * window_s else 0
            before = now
        return round(time.monotonic() - t0, 2)

    def rss(self) -> tuple[int, int]:
        """(current, peak) resident memory of the server process, bytes."""
        values = {}
        for line in Path(f"/proc/{self.server.pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) * 1024
        return values["VmRSS"], values["VmHWM"]
