"""``assay worker``: the one worker program, for the platform's pool and for hosts' own clusters."""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from .output import err_console, plain


def worker(
    server: Annotated[
        str, typer.Option(envvar="ASSAY_SERVER", help="The Assay server, e.g. https://assay.example.org")
    ],
    token: Annotated[
        str, typer.Option(envvar="ASSAY_WORKER_TOKEN", help="Worker token (aw_…); prefer the environment variable.")
    ],
    workdir: Annotated[Path, typer.Option(help="Cache and evaluator folder.")] = Path("var/worker"),
    annotation: Annotated[
        list[str] | None,
        typer.Option(
            help="CODENAME=PATH: use this local annotation file for a phase (remote evaluation keeps labels home)."
        ),
    ] = None,
    evaluation_script: Annotated[
        Path | None, typer.Option(help="A local evaluation script (zip or folder) instead of the server's.")
    ] = None,
    sandbox: Annotated[str, typer.Option(help="auto, bwrap or none.")] = "auto",
    containers: Annotated[
        str,
        typer.Option(
            help="Container jobs (docker-based challenges): auto (when a Docker engine answers), docker "
            "(required), kubernetes (Jobs; ASSAY_KUBERNETES_* settings) or off (never claim them)."
        ),
    ] = "auto",
    slots: Annotated[
        int,
        typer.Option(
            min=1,
            max=16,
            help="Jobs evaluated at once: claimed in one request and reported together when they end together "
            "(the batched protocol; the server must know it). 1: one job at a time.",
        ),
    ] = 1,
    once: Annotated[bool, typer.Option(help="Exit after one job.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Claim jobs from the server's queue for this token and evaluate them in sandboxes.

    Stop it with Ctrl-C or SIGTERM: it exits within seconds whatever it is doing (waiting for work,
    retrying an unreachable server, downloading, evaluating), and a job in hand goes back to the queue.
    """
    from assay.evaluation.containers import ContainerUnavailable
    from assay.worker import Worker, WorkerClient
    from assay.worker.containers import MODES
    from assay.worker.loop import LocalFiles

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per long-poll is noise
    annotations: dict[str, Path] = {}
    for item in annotation or []:
        codename, sep, path = item.partition("=")
        if not sep or not codename or not Path(path).is_file():
            wanted = "--annotation wants CODENAME=PATH of an existing file"
            err_console.print(f"[red]{wanted}, got {plain(repr(item))}[/red]")
            raise typer.Exit(2)
        annotations[codename] = Path(path).resolve()
    if containers not in MODES:
        err_console.print(f"[red]--containers wants one of {', '.join(MODES)}, got {plain(repr(containers))}[/red]")
        raise typer.Exit(2)
    if evaluation_script is not None and not evaluation_script.exists():
        err_console.print(f"[red]no such evaluation script: {plain(evaluation_script)}[/red]")
        raise typer.Exit(2)
    os.environ.pop("ASSAY_WORKER_TOKEN", None)  # evaluators inherit nothing, but leave no copy around either
    client = WorkerClient(server, token)
    try:
        w = Worker(
            client,
            workdir.resolve(),
            local=LocalFiles(annotations=annotations, evaluation_script=evaluation_script),
            sandbox=sandbox,
            containers=containers,
            slots=1 if once else slots,
        )
    except ContainerUnavailable as exc:
        client.close()
        err_console.print(f"[red]--containers {plain(containers)}: {plain(exc)}[/red]")
        raise typer.Exit(2) from None

    try:
        _run_until_signalled(w, max_jobs=1 if once else None)
    finally:
        client.close()


def _run_until_signalled(w, max_jobs: int | None) -> None:
    """Run the worker on a thread; SIGTERM/SIGINT stop it, and the worker's own error is raised here.

    The handler only records the signal: it runs on the main thread between bytecodes, and calling
    ``w.stop()`` (which takes locks) from there could deadlock on a lock that thread already holds.
    """
    signalled: list[int] = []
    failure: list[BaseException] = []

    def _record(signum, frame) -> None:
        signalled.append(signum)

    def _serve() -> None:
        try:
            w.run(max_jobs=max_jobs)
        except BaseException as exc:  # noqa: BLE001 - re-raised on the main thread
            failure.append(exc)

    signal.signal(signal.SIGTERM, _record)
    signal.signal(signal.SIGINT, _record)
    thread = threading.Thread(target=_serve, name="assay-worker")
    thread.start()
    stopping = False
    while thread.is_alive():
        thread.join(0.1)
        if signalled and not stopping:
            stopping = True
            logging.getLogger("assay.worker").info("stopping (signal %s): returning any job in progress", signalled[0])
            w.stop()
    if failure:
        raise failure[0]
