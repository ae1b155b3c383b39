"""On SQLite a commit of new work in one process wakes a claim waiting in another through the waiting
process's wake-up socket (``wakeup._poke``), not the ``data_version`` watch: here the watch is off and the
claim's own re-check is a minute away, so only the poke can wake it in time. Also: a dead process's socket
is removed by the next poke, and hostile or malformed files in the folder are passed over."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap

import pytest
from django.db import connection

from assay.server.submissions.models import Submission
from assay.server.submissions.services import wakeup
from assay.server.worker_process import child_environment

from .test_claim_wakeup import Waiting, new_submission, token  # noqa: F401  (the fixture)

pytestmark = pytest.mark.django_db(transaction=True)


def _other_process_queues(pk: int, queue_name: str) -> None:
    script = textwrap.dedent(
        f"""
        import django
        django.setup()
        from django.db import transaction
        from assay.server.submissions.models import Submission
        from assay.server.submissions.services import wakeup
        with transaction.atomic():
            Submission.objects.filter(pk={pk}).update(status="submitted")
            wakeup.announce({queue_name!r})
        """
    )
    subprocess.run([sys.executable, "-c", script], env=child_environment(), check=True, timeout=120)


def test_a_commit_in_another_process_pokes_the_waiting_claim(token, team, participant, demo_challenge, settings):  # noqa: F811
    if connection.vendor != "sqlite":
        pytest.skip("the sockets are SQLite's cross-process signal (PostgreSQL has NOTIFY)")
    settings.WORKER_QUEUE_WATCH_SECONDS = 0  # no data_version watch: the poke is the only signal
    settings.WORKER_CLAIM_RECHECK_SECONDS = 60
    sub = new_submission(participant, demo_challenge)
    Submission.objects.filter(pk=sub.pk).update(status="submitting")  # not claimable yet
    waiting = Waiting(token, "w1", wait=60)
    folder = wakeup.wake_folder(connection.settings_dict["NAME"])
    own = folder / f"{os.getpid()}.sock"
    for _ in range(200):  # the watcher binds this process's socket once the claim waits
        if own.exists():
            break
        waiting.thread.join(0.05)
    assert own.exists()
    (folder / "not-a-socket.sock").write_text("x")  # a stray file, and a name that is no socket
    (folder / "README").write_text("x")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    stale.bind(str(folder / "999999999.sock"))
    stale.close()  # bound then closed: the file stays, nobody reads it (a process killed with SIGKILL)
    _other_process_queues(sub.pk, sub.queue_name)
    claimed = waiting.join(30)
    assert claimed is not None and claimed.pk == sub.pk
    wakeup._poke(connection.settings_dict["NAME"])  # never raises for what it meets in the folder
    assert not (folder / "999999999.sock").exists()  # refused: its process is gone, the file removed
    assert (folder / "README").exists()


def test_no_poke_without_sockets(settings, tmp_path):
    settings.WORKER_QUEUE_WAKE_SOCKETS = False
    assert not wakeup._sockets()
    wakeup._poke(str(tmp_path / "no-such.sqlite3"))  # a folder nobody made: nothing to do, no error
