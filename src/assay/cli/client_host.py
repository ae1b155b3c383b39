"""The host's day: create and update challenges from bundles, test a bundle locally in the sandbox,
export submissions, re-run or cancel them, manage worker tokens."""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from pathlib import Path
from typing import Annotated

import typer

from . import bundle_commands
from .client_config import ApiError, client, fail
from .client_participant import JsonOpt, ServerOpt, _action, _table
from .output import console, emit_json, err_console, plain, print_problems, problem_line, severity_mark
from .phase_lookup import phase_id

app = typer.Typer(
    help="Host challenges: bundles, local tests, submissions, workers and their tokens.", no_args_is_help=True
)
challenge_app = typer.Typer(help="Create or update a challenge from a bundle (zip or folder).", no_args_is_help=True)
bundle_app = typer.Typer(help="Check a bundle before anything is uploaded.", no_args_is_help=True)
submissions_app = typer.Typer(help="Every submission of your challenge.", no_args_is_help=True)
tokens_app = typer.Typer(help="Worker tokens of a remote-evaluation challenge.", no_args_is_help=True)
app.add_typer(challenge_app, name="challenge")
app.add_typer(bundle_app, name="bundle")
app.add_typer(submissions_app, name="submissions")
app.add_typer(tokens_app, name="worker-token")
app.command("rerun")(_action("rerun"))
app.command("cancel")(_action("cancel"))
bundle_app.command("validate")(bundle_commands.validate)


def zipped(path: Path) -> bytes:
    """A bundle folder as a zip (``__pycache__``, ``.git`` and editor files left out); a zip as it is."""
    if path.is_file():
        return path.read_bytes()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for item in sorted(path.rglob("*")):
            rel = item.relative_to(path)
            if (
                item.is_file()
                and not ({".git", "__pycache__", "__MACOSX"} & set(rel.parts))
                and not item.name.endswith("~")
            ):
                zf.write(item, rel.as_posix())
    return buf.getvalue()


def _report(body: dict, as_json: bool) -> None:
    if as_json:
        emit_json(body)
        return
    c = body["challenge"]
    console.print(
        f"[green]✓ {'created' if body['created'] else 'updated'}[/green] challenge {plain(repr(c['title']))}"
        f" (id {c['id']})"
    )
    for change in body.get("changes", []):
        console.print(f"  • {plain(change)}")
    for w in body.get("warnings", []):
        line = problem_line(w.get("file") or "", w.get("line"), w.get("key"), w["message"], w.get("code") or "")
        console.print(f"  {severity_mark('warning')} {line}")


def _upload_bundle(method: str, path: str, bundle: Path, server: str | None, extra: dict) -> dict:
    api = client(server)
    files = {"bundle": ("bundle.zip", zipped(bundle), "application/zip")}
    try:
        return api.request(method, path, files=files, data=extra, timeout=600).json()
    except ApiError as exc:
        raise fail(exc) from None


@challenge_app.command("create")
def challenge_create(
    bundle: Annotated[Path, typer.Argument(help="Bundle zip or folder.", exists=True)],
    host_team: Annotated[int, typer.Option("--host-team", help="Id of your host team (assay teams list --host).")],
    server: ServerOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a challenge from a bundle (a folder is zipped first). An admin approves it before it is listed
    and before the platform's workers evaluate its submissions (test it meanwhile with ``host bundle test``)."""
    _report(_upload_bundle("POST", "/challenges", bundle, server, {"host_team": host_team}), as_json)


@challenge_app.command("update")
def challenge_update(
    challenge: Annotated[int, typer.Argument(help="Challenge id.")],
    bundle: Annotated[Path, typer.Argument(help="Bundle zip or folder.", exists=True)],
    server: ServerOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Update a challenge in place: phases, splits and leaderboards may be added; destroying results is refused."""
    _report(_upload_bundle("PUT", f"/challenges/{challenge}/bundle", bundle, server, {}), as_json)


@bundle_app.command("test")
def bundle_test(
    bundle: Annotated[Path, typer.Argument(help="Bundle zip or folder.", exists=True)],
    submission: Annotated[Path, typer.Argument(help="A submission file to evaluate.", exists=True, dir_okay=False)],
    phase: Annotated[str | None, typer.Option(help="Phase codename (default: the first phase).")] = None,
    sandbox: Annotated[str, typer.Option(help="auto, bwrap or none — as the worker's.")] = "auto",
    as_json: JsonOpt = False,
) -> None:
    """Evaluate SUBMISSION with the bundle's script in the same sandbox as the worker, before uploading anything."""
    with tempfile.TemporaryDirectory(prefix="assay-bundle-test-", ignore_cleanup_errors=True) as tmp:
        _bundle_test(Path(tmp), bundle, submission, phase, sandbox, as_json)


def _prepare_environment(name: str) -> None:
    """Build the script's evaluation environment the first time on this machine, with progress on stderr."""
    from assay.evaluation.venvs import SetupError, ensure_stack

    try:  # a built one returns at once, silently
        ensure_stack(name, echo=lambda line: err_console.print(line, style="dim", markup=False, highlight=False))
    except SetupError:
        pass  # the evaluation reports it as a setup error, with pip's output


def _bundle_test(work: Path, bundle: Path, submission: Path, phase: str | None, sandbox: str, as_json: bool) -> None:
    """``host bundle test`` inside WORK, a temporary folder removed afterwards (script, annotation, evaluator pool)."""
    from assay.bundle import BundleError, read_bundle

    try:
        from assay.evaluation import EvaluationJob, EvaluationLimits, EvaluatorPool
    except ImportError as exc:  # pragma: no cover - the evaluation engine ships with assay
        err_console.print(f"[red]the evaluation engine is not available: {exc}[/red]")
        raise typer.Exit(2) from None
    try:
        with read_bundle(bundle) as b:
            phases = {p.codename: p for p in b.config.challenge_phases}
            chosen = phase or next(iter(phases), None)
            if chosen not in phases:
                err_console.print(f"[red]{plain(f'no phase {chosen!r}; the bundle has {sorted(phases)}')}[/red]")
                raise typer.Exit(2)
            if not b.evaluation_script:
                err_console.print("[red]this bundle has no evaluation script (remote or container evaluation)[/red]")
                raise typer.Exit(2)
            script = work / "evaluation_script.zip"
            script.write_bytes(b.evaluation_script.data)
            config_phase = phases[chosen]
            annotation = work / "annotation"
            if config_phase.id in b.annotations:
                with b.open_annotation(config_phase.id) as src:
                    annotation = work / Path(b.annotations[config_phase.id]).name
                    annotation.write_bytes(src.read())
            else:
                annotation.write_bytes(b"")
            limits = b.config.evaluation_limits
            environment = b.config.environment()
    except BundleError as exc:
        print_problems(exc.problems, str(bundle))
        raise typer.Exit(1) from None
    kwargs = {}
    if limits is not None:
        kwargs = {k: v for k, v in limits.model_dump(exclude_none=True).items() if k}
    job = EvaluationJob(
        key=f"bundle-test-{chosen}",
        script_zip=script,
        annotation_file=annotation,
        submission_file=submission.resolve(),
        phase_codename=chosen,
        submission_metadata={"id": 0, "status": "running", "method_name": "local test"},
        limits=_limits(EvaluationLimits, kwargs),
        environment=environment,
    )
    _prepare_environment(environment)
    console.print(f"evaluating {submission.name} on phase {chosen!r} …", style="dim", markup=False)
    with EvaluatorPool(workdir=work / "pool", sandbox=sandbox) as pool:
        outcome = pool.evaluate(job)
    if as_json:
        emit_json({"ok": outcome.ok, "output": outcome.output, "error": outcome.error,
                   "error_kind": str(outcome.error_kind),
                   "stdout": outcome.stdout, "stderr": outcome.stderr, "duration": outcome.duration,
                   "sandbox": outcome.sandbox})  # fmt: skip
    else:
        colour = "green" if outcome.ok else "red"
        console.print(f"[{colour}]{'✓ finished' if outcome.ok else '✗ failed'}[/{colour}] in {outcome.duration:.2f} s"
                      f" (sandbox: {outcome.sandbox})")  # fmt: skip
        if outcome.ok:
            console.print_json(json.dumps(outcome.output, default=str))
        else:
            console.print(f"[red]{plain(outcome.error)}[/red]")
        if outcome.stderr.strip():
            console.rule("stderr")
            console.print(outcome.stderr, markup=False, highlight=False)
    raise typer.Exit(0 if outcome.ok else 1)


def _limits(cls, own: dict):
    """The bundle's evaluation_limits in the engine's terms (the server's defaults for the rest)."""
    mapping = {"memory_mb": ("memory_bytes", 2**20), "max_output_kb": ("max_output_bytes", 1024)}
    values = {}
    for key, value in own.items():
        name, factor = mapping.get(key, (key, 1))
        values[name] = value * factor
    fields = getattr(cls, "__dataclass_fields__", None) or getattr(cls, "model_fields", {})
    return cls(**{k: v for k, v in values.items() if k in fields})


@submissions_app.command("export")
def submissions_export(
    challenge: Annotated[int, typer.Argument(help="Challenge id.")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="File to write: CSV, or JSON when it ends in .json.")
    ] = Path("submissions.csv"),
    phase: Annotated[str | None, typer.Option(help="Only this phase (id, codename or name).")] = None,
    status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
    server: ServerOpt = None,
) -> None:
    """Every submission of a challenge as CSV (team, members, status, times, method, result as one readable line)
    or, for a file ending in .json, as a JSON list whose results keep their structure (numbers, null when undefined)."""
    api = client(server)
    try:
        chosen = phase_id(api, phase, challenge, role="host") if phase else None
        params = {**({"phase": chosen} if chosen else {}), **({"status": status} if status else {})}
        if output.suffix.lower() == ".json":
            rows = api.all_pages(f"/challenges/{challenge}/submissions", **params)
            output.write_text(json.dumps(rows, indent=2, ensure_ascii=False) + "\n")
            count = len(rows)
        else:
            response = api.request("GET", f"/challenges/{challenge}/submissions", params={"export": "csv", **params})
            output.write_bytes(response.content)
            count = max(response.text.count(chr(10)) - 1, 0)
    except ApiError as exc:
        raise fail(exc) from None
    console.print(f"wrote {plain(output)} ({count} submissions)")


@submissions_app.command("list")
def submissions_list(
    challenge: Annotated[int, typer.Argument(help="Challenge id.")],
    status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
    server: ServerOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Every submission of a challenge."""
    try:
        rows = client(server).all_pages(f"/challenges/{challenge}/submissions", status=status)
    except ApiError as exc:
        raise fail(exc) from None
    if as_json:
        emit_json(rows)
        return
    _table(f"Submissions of challenge {challenge}", ["id", "phase", "team", "status", "submitted", "reason"],
           [[r["id"], r["phase_codename"], r["participant_team_name"], r["status"], r["submitted_at"][:19],
             (r["failure_reason"] or "")[:60]]
            for r in rows])  # fmt: skip


@app.command("workers")
def workers(
    challenge: Annotated[int, typer.Argument(help="Challenge id.")],
    server: ServerOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The workers seen lately on your challenge's queue, and what each is evaluating; says so when none was."""
    try:
        body = client(server).get(f"/challenges/{challenge}/workers")
    except ApiError as exc:
        raise fail(exc) from None
    if as_json:
        emit_json(body)
        return
    whose = "the platform's workers" if body["platform"] else "your own workers"
    waiting = body["waiting"]
    console.print(
        f"queue [bold]{plain(body['queue_name'])}[/bold] ({whose})"
        + (f"; {waiting} submission{'s' if waiting != 1 else ''} of this challenge waiting" if waiting else "")
    )
    if not body["online"]:
        then = (
            "the platform's administrators run these workers"
            if body["platform"]
            else f"start one: assay host worker-token create {challenge}, then assay worker with that token"
        )
        console.print(
            f"[yellow]no worker has been seen on this queue for {body['minutes']} minutes, so submissions wait"
            f" until one connects[/yellow]; {plain(then)}"
        )
        return
    _table(f"Workers seen in the last {body['minutes']} minutes", ["worker", "last seen (UTC)", "running"],
           [[w["name"], _utc(w["last_seen_at"]), _running(w)] for w in body["workers"]])  # fmt: skip


def _running(worker: dict) -> str:
    jobs = [
        f"submission {j['submission_id']} ({j['phase_name']}) on {j['worker_id']}"
        + (f", attempt {j['attempt']}" if j["attempt"] > 1 else "")
        for j in worker["jobs"]
    ]
    if worker["other_jobs"]:
        jobs.append(f"{worker['other_jobs']} job{'s' if worker['other_jobs'] != 1 else ''} of other challenges")
    return "; ".join(jobs) or "idle, waiting for work"


def _utc(stamp: str) -> str:
    from datetime import UTC, datetime

    try:
        return datetime.fromisoformat(stamp).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return stamp


@tokens_app.command("create")
def worker_token_create(
    challenge: Annotated[int, typer.Argument(help="A remote-evaluation challenge's id.")],
    name: Annotated[str, typer.Option(help="A name to recognise the worker by.")] = "worker",
    server: ServerOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a worker token for your challenge's queue (shown once)."""
    try:
        body = client(server).post(f"/challenges/{challenge}/worker-tokens", json={"name": name})
    except ApiError as exc:
        raise fail(exc) from None
    if as_json:
        emit_json(body)
        return
    console.print(f"worker token for queue [bold]{plain(body['queue_name'])}[/bold] (id {body['id']}), shown only now:")
    console.print(body["token"], soft_wrap=True, markup=False)
    console.print("[dim]run: ASSAY_WORKER_TOKEN=<token> assay worker --server URL[/dim]")


@tokens_app.command("list")
def worker_token_list(challenge: Annotated[int, typer.Argument(help="Challenge id.")], server: ServerOpt = None,
                      as_json: JsonOpt = False) -> None:  # fmt: skip
    """Your challenge's worker tokens."""
    try:
        rows = client(server).all_pages(f"/challenges/{challenge}/worker-tokens")
    except ApiError as exc:
        raise fail(exc) from None
    if as_json:
        emit_json(rows)
        return
    _table("Worker tokens", ["id", "name", "prefix", "queue", "revoked", "last used"],
           [[t["id"], t["name"], t["prefix"] + "…", t["queue_name"], t["revoked_at"] or "", t["last_used_at"]]
            for t in rows])  # fmt: skip


@tokens_app.command("revoke")
def worker_token_revoke(token_id: Annotated[int, typer.Argument(help="Token id.")], server: ServerOpt = None) -> None:
    """Revoke a worker token: its worker is refused from its next request on."""
    try:
        client(server).request("DELETE", f"/worker-tokens/{token_id}")
    except ApiError as exc:
        raise fail(exc) from None
    console.print(f"revoked worker token {token_id}")
