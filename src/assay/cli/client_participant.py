"""The participant's day: log in, find a challenge, form a team, take part, submit, follow, compare."""

from __future__ import annotations

import hashlib
import html
import json
import re
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress
from rich.table import Table
from rich.text import Text

from .client_config import ApiError, Client, Server, client, config_path, fail, load, resolve, save
from .output import RateColumn, console, emit_json, err_console, plain
from .phase_lookup import ChallengeOpt, PhaseOpt, phase_id

ServerOpt = Annotated[str | None, typer.Option("--server", "-s", help="A server name from `assay login`, or a URL.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
DONE = ("finished", "failed", "cancelled", "partially_evaluated")


def _text(html_text: str) -> str:
    text = re.sub(r"<(br|/p|/li|/h\d)[^>]*>", "\n", html_text or "", flags=re.I)
    return html.unescape(re.sub(r"<[^>]+>", "", text)).strip()


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    table = Table(title=title, title_justify="left")
    for c in columns:
        table.add_column(c)
    for r in rows:
        table.add_row(*[Text("" if v is None else str(v)) for v in r])  # cells are data, never markup
    console.print(table)


# --- accounts ---------------------------------------------------------------------------------------


def login(
    server: Annotated[str, typer.Option("--server", "-s", help="The server's URL.")] = "http://127.0.0.1:8000",
    name: Annotated[str | None, typer.Option(help="Remember the server under this name (default: its host).")] = None,
    username: Annotated[str | None, typer.Option("--username", "-u", help="Asked for when not given.")] = None,
    password: Annotated[str | None, typer.Option(help="Asked for (hidden) when not given.")] = None,
    days: Annotated[int, typer.Option(help="Days until the token expires (0: never).")] = 365,
    make_default: Annotated[
        bool, typer.Option("--default", help="Make this server the default even when another one is.")
    ] = False,
) -> None:
    """Log in with your username and password; the token is saved for this server. The first server saved
    becomes the default; logging in to another one keeps the default unless you pass --default."""
    url = server.rstrip("/")
    if "://" not in url:
        existing = load()["servers"].get(url)
        if not existing:
            err_console.print(f"[red]{plain(repr(server))} is neither a URL nor a saved server name[/red]")
            raise typer.Exit(2)
        name, url = name or url, existing["url"]
    anon = Client(Server(name=name or url, url=url, token=None))
    try:
        anon.ping()  # before asking for a password that cannot be used
        username = username or typer.prompt("Username")
        password = password or typer.prompt("Password", hide_input=True)
        body = anon.post("/auth/login", json={"username": username, "password": password, "days": days})
    except ApiError as exc:
        raise fail(exc) from None
    key = name or re.sub(r"^https?://", "", url)
    data = load()
    data["servers"][key] = {"url": url, "token": body["token"], "username": body["user"]["username"]}
    previous = data.get("default")
    keep = previous not in (None, key) and previous in data["servers"] and not make_default
    if not keep:
        data["default"] = key
    save(data)
    who = plain(body["user"]["username"])
    console.print(f"[green]✓ logged in to {plain(url)} as {who}[/green] (server name {plain(repr(key))})")
    if keep:
        console.print(
            f"the default server stays {plain(repr(previous))}: use --server {plain(key)} with each command,"
            f" or log in again with --default to switch"
        )
    elif previous not in (None, key):
        console.print(f"{plain(repr(key))} is now the default server (it was {plain(repr(previous))})")
    console.print(
        f"[dim]token saved in {plain(config_path())}; expires {plain(body.get('expires_at') or 'never')}[/dim]"
    )


def logout(server: ServerOpt = None) -> None:
    """Revoke this server's saved token and forget it."""
    target = resolve(server)
    data = load()
    if target.token:
        try:
            me = Client(target).get("/auth/whoami")
            token_id = (me.get("token") or {}).get("id")
            if token_id:
                Client(target).request("DELETE", f"/tokens/{token_id}")
        except ApiError:
            pass
    if target.name in data["servers"]:
        data["servers"][target.name].pop("token", None)
        save(data)
    console.print(f"logged out of {plain(target.url)}")


def whoami(server: ServerOpt = None, as_json: JsonOpt = False) -> None:
    """Who your token belongs to, its expiry, and your teams."""
    try:
        me = client(server).get("/auth/whoami")
    except ApiError as exc:
        raise fail(exc) from None
    if as_json:
        emit_json(me)
        return
    tok = me.get("token") or {}
    console.print(f"[bold]{plain(me['username'])}[/bold] <{plain(me['email'])}> on {plain(resolve(server).url)}")
    if tok:
        console.print(plain(f"token {tok['name']!r} ({tok['prefix']}…), expires {tok['expires_at'] or 'never'}"))
    for kind in ("participant_teams", "host_teams"):
        teams = ", ".join(f"{t['name']} (#{t['id']})" for t in me[kind]) or "none"
        console.print(f"{kind.replace('_', ' ')}: {plain(teams)}")


token_app = typer.Typer(help="Personal API tokens (for scripts and CI): create, list, revoke.", no_args_is_help=True)


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Argument(help="A name to recognise it by.")],
    days: Annotated[int, typer.Option(help="Days until it expires (0: never).")] = 90,
    server: ServerOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a token; it is printed once (use it as ASSAY_TOKEN, or with `evalai set_token`)."""
    try:
        body = client(server).post("/tokens", json={"name": name, "days": days})
    except ApiError as exc:
        raise fail(exc) from None
    if as_json:
        emit_json(body)
    else:
        console.print(plain(f"token {body['name']!r} (id {body['id']}), expires {body['expires_at'] or 'never'}:"))
        console.print(body["token"], soft_wrap=True, markup=False)


@token_app.command("list")
def token_list(server: ServerOpt = None, as_json: JsonOpt = False) -> None:
    """Your tokens (never the secrets themselves)."""
    try:
        rows = client(server).all_pages("/tokens")
    except ApiError as exc:
        raise fail(exc) from None
    if as_json:
        emit_json(rows)
        return
    _table("API tokens", ["id", "name", "prefix", "expires", "revoked", "last used"],
           [[t["id"], t["name"], t["prefix"] + "…", t["expires_at"], t["revoked_at"] or "", t["last_used_at"]]
            for t in rows])  # fmt: skip


@token_app.command("revoke")
def token_revoke(token_id: Annotated[int, typer.Argument(help="Its id (assay token list).")], server: ServerOpt = None):
    """Revoke a token at once."""
    try:
        client(server).request("DELETE", f"/tokens/{token_id}")
    except ApiError as exc:
        raise fail(exc) from None
    console.print(f"revoked token {token_id}")


# --- challenges -------------------------------------------------------------------------------------

challenges_app = typer.Typer(help="Find challenges and read their details.", no_args_is_help=True)


@challenges_app.command("list")
def challenges_list(
    status: Annotated[str, typer.Option(help="all, ongoing, past or future.")] = "ongoing",
    role: Annotated[str | None, typer.Option(help="Only yours: host or participant.")] = None,
    search: Annotated[str | None, typer.Option("--search", "-q", help="Words in the title or summary.")] = None,
    server: ServerOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List challenges (ongoing ones by default)."""
    try:
        rows = client(server, need_token=False).all_pages("/challenges", status=status, role=role, q=search)
    except ApiError as exc:
        raise fail(exc) from None
    if as_json:
        emit_json(rows)
        return
    if not rows:
        console.print(f"no {status} challenges")
        return
    _table(f"{status.capitalize()} challenges", ["id", "title", "host", "ends", "kind"],
           [[c["id"], c["title"], c["host_team"], c["end_date"][:10],
             "remote" if c["remote_evaluation"] else "platform"] for c in rows])  # fmt: skip


@challenges_app.command("show")
def challenges_show(challenge: Annotated[int, typer.Argument(help="Challenge id.")], server: ServerOpt = None,
                    as_json: JsonOpt = False) -> None:  # fmt: skip
    """A challenge's details, phases and leaderboards."""
    api = client(server, need_token=False)
    try:
        c = api.get(f"/challenges/{challenge}")
        phases = api.all_pages(f"/challenges/{challenge}/phases")
        splits = api.all_pages(f"/challenges/{challenge}/phase-splits")
    except ApiError as exc:
        raise fail(exc) from None
    if as_json:
        emit_json({**c, "phases": phases, "phase_splits": splits})
        return
    console.print(
        f"[bold]{plain(c['title'])}[/bold] (#{c['id']}) by {plain(c['host_team'])},"
        f" {c['start_date'][:10]} → {c['end_date'][:10]}"
    )
    console.print(c["short_description"] or "", markup=False)
    _print_phases(phases, bool(c.get("is_docker_based")), bool(c.get("is_static_dataset_code_upload")))
    _table("Leaderboards (use: assay leaderboard ID)", ["id", "phase", "split", "labels"],
           [[s["id"], s["phase_codename"], s["dataset_split_codename"], ", ".join(s["labels"])]
            for s in splits])  # fmt: skip


def _print_phases(phases: list[dict], docker: bool = False, code: bool = False) -> None:
    """Docker-based challenges take images (assay push), whatever file types their phases list; their
    static-dataset phases also take code bundles (a .zip sent with assay submit)."""
    columns = ["id", "codename", "name", "open", "per day", "total", "submit"]
    use = "assay push IMAGE:TAG --phase ID" if docker else "assay submit FILE --phase ID"
    use += " or assay submit CODE.zip --phase ID" if docker and code else ""
    takes = "a container image" + (" or a code bundle" if code else "")
    _table(f"Phases (use: {use})", columns,
           [[p["id"], p["codename"], p["name"], "yes" if p["is_active"] else "no", p["max_submissions_per_day"],
             p["max_submissions"], takes if docker else p["allowed_submission_file_types"]]
            for p in phases])  # fmt: skip


def phases(challenge: Annotated[int, typer.Argument(help="Challenge id.")], server: ServerOpt = None,
           as_json: JsonOpt = False) -> None:  # fmt: skip
    """A challenge's phases: ids to submit to, limits and file types."""
    api = client(server, need_token=False)
    try:
        rows = api.all_pages(f"/challenges/{challenge}/phases")
        c = {} if as_json else api.get(f"/challenges/{challenge}")
    except ApiError as exc:
        raise fail(exc) from None
    docker, code = bool(c.get("is_docker_based")), bool(c.get("is_static_dataset_code_upload"))
    emit_json(rows) if as_json else _print_phases(rows, docker, code)


# --- teams and taking part ------------------------------------------------------------------------------

teams_app = typer.Typer(help="Your participant teams (and host teams with --host).", no_args_is_help=True)


@teams_app.command("list")
def teams_list(host: Annotated[bool, typer.Option("--host", help="Host teams.")] = False, server: ServerOpt = None,
               as_json: JsonOpt = False) -> None:  # fmt: skip
    """Your teams and their members."""
    try:
        rows = client(server).all_pages("/host-teams" if host else "/teams")
    except ApiError as exc:
        raise fail(exc) from None
    if as_json:
        emit_json(rows)
        return
    _table("Host teams" if host else "Participant teams", ["id", "name", "members"],
           [[t["id"], t["name"], ", ".join(m["username"] for m in t["members"])] for t in rows])  # fmt: skip


@teams_app.command("create")
def teams_create(name: Annotated[str, typer.Argument(help="The team's name.")],
                 url: Annotated[str, typer.Option(help="The team's web page.")] = "",
                 host: Annotated[bool, typer.Option("--host", help="A host team.")] = False,
                 server: ServerOpt = None, as_json: JsonOpt = False) -> None:  # fmt: skip
    """Create a team with you as its first member."""
    try:
        team = client(server).post("/host-teams" if host else "/teams", json={"name": name, "team_url": url})
    except ApiError as exc:
        raise fail(exc) from None
    if as_json:
        emit_json(team)
    else:
        console.print(f"[green]✓ created team {plain(repr(team['name']))} (id {team['id']})[/green]")


@teams_app.command("invite")
def teams_invite(team: Annotated[int, typer.Argument(help="Team id.")],
                 email: Annotated[str, typer.Argument(help="The invitee's e-mail address.")],
                 host: Annotated[bool, typer.Option("--host", help="A host team.")] = False,
                 server: ServerOpt = None) -> None:  # fmt: skip
    """E-mail an invitation; the invitee joins by accepting it while signed in."""
    path = f"/host-teams/{team}/invitations" if host else f"/teams/{team}/invitations"
    try:
        body = client(server).post(path, json={"email": email})
    except ApiError as exc:
        raise fail(exc) from None
    console.print(f"[green]✓ invited {plain(body['email'])}[/green] (expires {body['expires_at'][:10]})")


def participate(
    challenge: Annotated[int, typer.Argument(help="Challenge id.")],
    team: Annotated[int, typer.Option("--team", "-t", help="Your participant team's id (assay teams list).")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Accept the terms without asking.")] = False,
    server: ServerOpt = None,
) -> None:
    """Show the challenge's terms and conditions, ask you to accept them, and register your team."""
    api = client(server)
    try:
        info = api.get(f"/challenges/{challenge}/participation")
        if info["participation"] and info["participation"]["terms_accepted_at"]:
            p = info["participation"]
            console.print(plain(f"team {p['team_name']!r} already takes part ({p['status']})"))
            return
        console.rule("Terms and conditions")
        console.print(_text(info["terms_and_conditions"]) or "(none)", markup=False)
        console.rule()
        if not yes and not typer.confirm("Do you accept these terms and conditions?"):
            err_console.print("[red]Not registered: accepting the terms is required to take part.[/red]")
            raise typer.Exit(1)
        body = api.post(f"/challenges/{challenge}/participation", json={"team": team, "accept_terms": True})
    except ApiError as exc:
        raise fail(exc) from None
    p = body["participation"]
    extra = " — waiting for the host's approval" if p["status"] == "pending" else ""
    console.print(
        f"[green]✓ team {plain(repr(p['team_name']))} takes part[/green]"
        f" (terms accepted {plain(p['terms_accepted_at'])}){extra}"
    )


# --- submitting -------------------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _resume_key(server: str, phase: int, digest: str) -> str:
    return f"{server}|{phase}|{digest}"


def upload_file(api: Client, phase: int, path: Path, fields: dict, quiet: bool = False) -> dict:
    """Resumable upload: parts already on the server (from an interrupted run) are not sent again."""
    size, digest = path.stat().st_size, _sha256(path)
    data = load()
    pending = data.setdefault("uploads", {})
    key = _resume_key(api.server.url, phase, digest)
    upload = None
    if key in pending:
        try:
            upload = api.get(f"/uploads/{pending[key]}")
            if upload["status"] != "open":
                upload = None
        except ApiError:
            upload = None
    if upload is None:
        upload = api.post(f"/phases/{phase}/uploads",
                          json={"file_name": path.name, "size": size, "sha256": digest, **fields})  # fmt: skip
        pending[key] = upload["id"]
        save(data)
    chunk = upload["chunk_size"]
    missing = upload["missing_parts"]
    already = size - _bytes(missing, chunk, size)
    with Progress(
        "[progress.description]{task.description}", BarColumn(), DownloadColumn(), RateColumn(),
        console=err_console, disable=quiet,
    ) as bar:  # fmt: skip
        task = bar.add_task(f"uploading {escape(path.name)}", total=size, completed=already, already=already)
        with path.open("rb") as fh:
            for part in missing:
                fh.seek((part - 1) * chunk)
                block = fh.read(chunk)
                for attempt in range(3):
                    try:
                        api.request("PUT", f"/uploads/{upload['id']}/parts/{part}", content=block,
                                    headers={"Content-Type": "application/octet-stream",
                                             "X-Checksum-Sha256": hashlib.sha256(block).hexdigest()})  # fmt: skip
                        break
                    except ApiError as exc:
                        if attempt == 2 or exc.status not in (0, 400, 500, 502, 503):
                            raise
                        time.sleep(1 + attempt)
                bar.advance(task, len(block))
    done = api.post(f"/uploads/{upload['id']}/complete")
    pending.pop(key, None)
    save(data)
    return done["submission"]


def _bytes(parts: list[int], chunk: int, size: int) -> int:
    last = max(1, -(-size // chunk))
    return sum(size - (p - 1) * chunk if p == last else chunk for p in parts)


def parse_meta(meta: list[str] | None) -> dict[str, Any]:
    """The ``--meta NAME=VALUE`` options as submission metadata ("true"/"false" as booleans); exit 2 on a bad one."""
    values: dict[str, Any] = {}
    for item in meta or []:
        name, sep, value = item.partition("=")
        if not sep:
            err_console.print(f"[red]--meta wants NAME=VALUE, got {escape(repr(item))}[/red]")
            raise typer.Exit(2)
        values[name] = json.loads(value) if value in ("true", "false") else value
    return values


def submit(
    file: Annotated[Path, typer.Argument(help="The file to submit.", exists=True, dir_okay=False, readable=True)],
    phase: PhaseOpt,
    public: Annotated[
        bool | None, typer.Option("--public/--private", help="Show it on the public leaderboard?")
    ] = None,
    method_name: Annotated[str, typer.Option(help="Your method's name.")] = "",
    method_description: Annotated[str, typer.Option(help="A few words about it.")] = "",
    project_url: Annotated[str, typer.Option()] = "",
    publication_url: Annotated[str, typer.Option()] = "",
    meta: Annotated[list[str] | None, typer.Option(help="NAME=VALUE of a phase's meta attribute (repeat).")] = None,
    wait: Annotated[bool, typer.Option("--wait", "-w", help="Follow the evaluation live until its result.")] = False,
    challenge: ChallengeOpt = None,
    server: ServerOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Upload FILE to a phase (resumable: run it again after an interruption) and queue its evaluation."""
    values = parse_meta(meta)
    fields = {"is_public": public, "method_name": method_name, "method_description": method_description,
              "project_url": project_url, "publication_url": publication_url,
              "submission_metadata": values or None}  # fmt: skip
    api = client(server)
    try:
        sub = upload_file(api, phase_id(api, phase, challenge), file, fields, quiet=as_json)
    except ApiError as exc:
        raise fail(exc) from None
    if not as_json:
        console.print(f"[green]✓ submitted {plain(file.name)}[/green] as submission {sub['id']} ({sub['status']})")
    if wait:
        sub = follow(api, sub["id"], quiet=as_json)
    if as_json:
        emit_json(sub)
    elif not wait:
        console.print(f"[dim]follow it: assay submission {sub['id']} --wait[/dim]")
    if wait and sub["status"] == "failed":
        raise typer.Exit(1)


#: ``--wait`` polls first after this many seconds (an evaluation may take a tenth of one), then backs off
#: by :data:`BACKOFF` per poll up to :data:`POLL_MAX`, so a long queue costs the server one request per 2 s.
POLL_FIRST, BACKOFF, POLL_MAX = 0.1, 1.5, 2.0


def poll_delays(first: float = POLL_FIRST, factor: float = BACKOFF, most: float = POLL_MAX):
    """The pauses between polls: ``first``, growing by ``factor``, never above ``most``."""
    delay = first
    while True:
        yield delay
        delay = min(delay * factor, most)


def follow(api: Client, submission_id: int, quiet: bool = False, timeout: float = 86400) -> dict:
    """Poll a submission until it is done (quickly at first, see :func:`poll_delays`), showing its status;
    then print its result."""
    deadline = time.monotonic() + timeout
    last = None
    delays = poll_delays()
    with console.status("waiting…", spinner="dots") as status:
        while True:
            sub = api.get(f"/submissions/{submission_id}")
            if sub["status"] != last and not quiet:
                why = f" ({sub['waiting_for']})" if sub.get("waiting_for") else ""
                status.update(plain(f"submission {submission_id}: {sub['status']}{why}"))
                last = sub["status"]
            if sub["status"] in DONE or time.monotonic() > deadline:
                break
            time.sleep(next(delays))
    if not quiet:
        _print_outcome(api, sub)
    return sub


def _print_outcome(api: Client, sub: dict) -> None:
    from assay.evaluation.contract import display_metric  # not at start-up: the package is heavy

    colour = "green" if sub["status"] == "finished" else "red" if sub["status"] == "failed" else "yellow"
    console.print(f"[{colour}]submission {sub['id']}: {sub['status']}[/{colour}]")
    if sub["status"] == "failed":
        console.print(f"reason: {plain(sub.get('failure_reason') or 'see assay stderr ' + str(sub['id']))}")
    for item in (sub.get("output") or {}).get("result", []):
        for split, metrics in item.items():
            shown = ", ".join(f"{k} {display_metric(v)}" for k, v in metrics.items())
            console.print(plain(f"  {split}: {shown}"))


def submissions(
    phase: PhaseOpt,
    challenge: ChallengeOpt = None,
    server: ServerOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Your team's submissions to a phase."""
    api = client(server)
    try:
        phase = str(phase_id(api, phase, challenge))
        rows = api.all_pages(f"/phases/{phase}/submissions")
    except ApiError as exc:
        raise fail(exc) from None
    if as_json:
        emit_json(rows)
        return
    _table(f"Submissions to phase {phase}", ["id", "#", "status", "submitted", "public", "method", "result"],
           [[s["id"], s["submission_number"], s["status"], s["submitted_at"][:19], "yes" if s["is_public"] else "no",
             s["method_name"], _short(s.get("output"))] for s in rows])  # fmt: skip


def _short(output) -> str:
    from assay.evaluation.contract import describe_result

    return describe_result((output or {}).get("result"))


def submission(
    submission_id: Annotated[int, typer.Argument(help="Submission id.")],
    wait: Annotated[bool, typer.Option("--wait", "-w", help="Follow it until it is done.")] = False,
    server: ServerOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One submission's status, times and result."""
    api = client(server)
    try:
        sub = follow(api, submission_id, quiet=as_json) if wait else api.get(f"/submissions/{submission_id}")
    except ApiError as exc:
        raise fail(exc) from None
    if as_json:
        emit_json(sub)
    elif not wait:
        console.print(
            plain(f"submission {sub['id']} of team {sub['participant_team_name']} to {sub['phase_codename']}")
        )
        console.print(
            f"submitted {sub['submitted_at']}, ran {sub['execution_time'] or '—'} s, attempt {sub['attempt']}"
        )
        _print_outcome(api, sub)


def _file_command(kind: str):
    def command(submission_id: Annotated[int, typer.Argument(help="Submission id.")], server: ServerOpt = None) -> None:
        try:
            text = client(server).request("GET", f"/submissions/{submission_id}/{kind}").text
        except ApiError as exc:
            raise fail(exc) from None
        # a file's own last newline ends the output; one is added when it has none (a JSON result has none)
        console.print(text, markup=False, highlight=False, soft_wrap=True, end="" if text.endswith("\n") else "\n")

    command.__doc__ = {"result": "Print a submission's result file.", "stdout": "Print what the evaluation printed.",
                       "stderr": "Print the evaluation's errors and warnings."}[kind]  # fmt: skip
    return command


def _action(kind: str):
    def command(submission_id: Annotated[int, typer.Argument(help="Submission id.")], server: ServerOpt = None,
                as_json: JsonOpt = False) -> None:  # fmt: skip
        try:
            sub = client(server).post(f"/submissions/{submission_id}/{kind}")
        except ApiError as exc:
            raise fail(exc) from None
        if as_json:
            emit_json(sub)
        elif kind == "cancel":
            console.print(f"[green]✓ submission {submission_id} cancelled[/green]")
        elif sub.get("rerun_in_place"):
            console.print(
                f"[green]✓ submission {submission_id} re-run in place: evaluation {plain(sub.get('evaluation'))} "
                "is queued (the earlier evaluation, its result and logs are kept)[/green]"
            )
        else:
            console.print(
                f"[green]✓ submission {submission_id} queued again as submission {plain(sub['id'])} "
                "(a new copy; the old one is cancelled)[/green]"
            )

    command.__doc__ = {
        "cancel": "Cancel a submission that has not finished.",
        "rerun": "Evaluate a submission again: a host's re-run evaluates the same submission again (a new "
        "evaluation, the earlier one kept); a participant's queues a new copy.",
    }[kind]
    return command


def leaderboard(
    phase_split: Annotated[int, typer.Argument(help="Leaderboard id (assay challenges show CHALLENGE).")],
    order_by: Annotated[str | None, typer.Option(help="Sort by this label.")] = None,
    page: Annotated[int, typer.Option(help="Page number.")] = 1,
    server: ServerOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A leaderboard as a table (what you may see of it)."""
    try:
        api = client(server, need_token=False)
        board = api.get(f"/phase-splits/{phase_split}/leaderboard", order_by=order_by, page=page)
    except ApiError as exc:
        raise fail(exc) from None
    if as_json:
        emit_json(board)
        return
    _table(
        f"Leaderboard {phase_split}: {board.get('phase_split', {}).get('phase', '')}"
        f"/{board.get('phase_split', {}).get('split', '')}",
        *leaderboard_rows(board),
    )
    if any(r.get("intervals") for r in [*board.get("results", []), *_own_extra(board)]):
        console.print(Text(f"[low–high]: confidence interval; (tied): statistically tied with the leader on "
                           f"{board.get('order_by')} (the intervals overlap)", style="dim"))  # fmt: skip
    if not board.get("results") and not board.get("own"):
        console.print("no entries yet")
    elif any(not (r.get("submission") or {}).get("is_public", True) for r in _own_extra(board)):
        console.print("[dim](private): your team's best entry, not on the public leaderboard; the rank is where it"
                      " would stand[/dim]")  # fmt: skip
    if board.get("pages", 1) > 1:
        console.print(f"[dim]page {board['page']} of {board['pages']} (--page N)[/dim]")


def leaderboard_rows(board: dict) -> tuple[list[str], list[list[Any]]]:
    """Columns and rows of a leaderboard page as the server formatted its scores (the split's decimal precision),
    with each entry's method, run time (when the split shows it) and submission time, the reader's team's rows marked
    "(yours)"; the reader's own best entry follows when the page does not hold it (a private one: the API answers it
    apart, as ``own``)."""
    from assay.evaluation.contract import display_metric

    labels = board.get("labels", [])
    ps = board.get("phase_split", {})
    results, extra = board.get("results", []), _own_extra(board)
    timed = any("execution_time" in r for r in [*results, *extra])
    columns = ["rank", "team", *labels, "method", *(["run time"] if timed else []), "submitted (UTC)"]
    rows = []
    for r, own in [(r, False) for r in results] + [(r, True) for r in extra]:
        scores, shown = r.get("scores") or {}, r.get("display") or {}
        sub = r.get("submission") or {}
        rank = "" if r.get("rank") is None else str(r["rank"])
        team = (r.get("team") or {}).get("name", "")
        if own:
            rank = f"({rank})" if rank else ""
            team += " (yours, private)" if not sub.get("is_public", True) else " (yours)"
        elif r.get("is_baseline"):
            team += " (baseline)"
        elif r.get("is_own"):
            team += " (yours)"
        run = r.get("execution_time")
        cells = [
            _score_cell(r, x, shown.get(x) or display_metric(scores.get(x), ps.get("precision")), board) for x in labels
        ]
        rows.append([rank, team, *cells,
                     sub.get("method_name") or "", *([f"{run:.2f} s" if run is not None else "—"] if timed else []),
                     _when(sub.get("submitted_at"))])  # fmt: skip
    return columns, rows


def _score_cell(row: dict, label: str, shown: str, board: dict) -> str:
    """A score with its confidence interval (``0.81 [0.76–0.85]``) and, on the sort label, ``(tied)`` when
    the server says the row is statistically tied with the leader."""
    from assay.evaluation.contract import display_metric

    pair = (row.get("intervals") or {}).get(label)
    if isinstance(pair, list) and len(pair) == 2:
        precision = (board.get("phase_split") or {}).get("precision")
        shown += f" [{display_metric(pair[0], precision)}–{display_metric(pair[1], precision)}]"
    if label == board.get("order_by") and row.get("tied_with_leader") is True:
        shown += " (tied)"
    return shown


def _own_extra(board: dict) -> list[dict]:
    """The reader's own rows the page does not already show."""
    shown = {(r.get("submission") or {}).get("id") for r in board.get("results", [])}
    return [r for r in board.get("own") or [] if (r.get("submission") or {}).get("id") not in shown]


def _when(stamp: str | None) -> str:
    """An API time stamp as ``YYYY-MM-DD HH:MM`` in UTC (the column says so)."""
    if not stamp:
        return ""
    from datetime import UTC, datetime

    try:
        return datetime.fromisoformat(stamp).astimezone(UTC).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return stamp[:16]
