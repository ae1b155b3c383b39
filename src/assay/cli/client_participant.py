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
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn
from rich.table import Table

from .client_config import ApiError, Client, Server, client, config_path, fail, load, resolve, save
from .output import console, emit_json, err_console

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
        table.add_row(*["" if v is None else str(v) for v in r])
    console.print(table)


# --- accounts ---------------------------------------------------------------------------------------


def login(
    server: Annotated[str, typer.Option("--server", "-s", help="The server's URL.")] = "http://127.0.0.1:8000",
    name: Annotated[str | None, typer.Option(help="Remember the server under this name (default: its host).")] = None,
    username: Annotated[str | None, typer.Option("--username", "-u", prompt=True)] = None,
    password: Annotated[str | None, typer.Option(prompt=True, hide_input=True)] = None,
    days: Annotated[int, typer.Option(help="Days until the token expires (0: never).")] = 365,
) -> None:
    """Log in with your username and password; the token is saved for this server (and made the default)."""
    url = server.rstrip("/")
    if "://" not in url:
        existing = load()["servers"].get(url)
        if not existing:
            err_console.print(f"[red]{server!r} is neither a URL nor a saved server name[/red]")
            raise typer.Exit(2)
        name, url = name or url, existing["url"]
    anon = Client(Server(name=name or url, url=url, token=None))
    try:
        body = anon.post("/auth/login", json={"username": username, "password": password, "days": days})
    except ApiError as exc:
        raise fail(exc) from None
    key = name or re.sub(r"^https?://", "", url)
    data = load()
    data["servers"][key] = {"url": url, "token": body["token"], "username": body["user"]["username"]}
    data["default"] = key
    save(data)
    console.print(f"[green]✓ logged in to {url} as {body['user']['username']}[/green] (server name {key!r})")
    console.print(f"[dim]token saved in {config_path()}; expires {body.get('expires_at') or 'never'}[/dim]")


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
    console.print(f"logged out of {target.url}")


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
    console.print(f"[bold]{me['username']}[/bold] <{me['email']}> on {resolve(server).url}")
    if tok:
        console.print(f"token {tok['name']!r} ({tok['prefix']}…), expires {tok['expires_at'] or 'never'}")
    for kind in ("participant_teams", "host_teams"):
        teams = ", ".join(f"{t['name']} (#{t['id']})" for t in me[kind]) or "none"
        console.print(f"{kind.replace('_', ' ')}: {teams}")


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
        console.print(f"token {body['name']!r} (id {body['id']}), expires {body['expires_at'] or 'never'}:")
        console.print(body["token"], soft_wrap=True)


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
        f"[bold]{c['title']}[/bold] (#{c['id']}) by {c['host_team']}, {c['start_date'][:10]} → {c['end_date'][:10]}"
    )
    console.print(c["short_description"] or "")
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
    emit_json(team) if as_json else console.print(f"[green]✓ created team {team['name']!r} (id {team['id']})[/green]")


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
    console.print(f"[green]✓ invited {body['email']}[/green] (expires {body['expires_at'][:10]})")


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
            console.print(f"team {p['team_name']!r} already takes part ({p['status']})")
            return
        console.rule("Terms and conditions")
        console.print(_text(info["terms_and_conditions"]) or "(none)")
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
        f"[green]✓ team {p['team_name']!r} takes part[/green] (terms accepted {p['terms_accepted_at']}){extra}"
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
    with Progress(
        "[progress.description]{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(),
        console=err_console, disable=quiet,
    ) as bar:  # fmt: skip
        task = bar.add_task(f"uploading {path.name}", total=size, completed=size - _bytes(missing, chunk, size))
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
    phase: Annotated[int, typer.Option("--phase", "-p", help="Phase id (assay phases CHALLENGE).")],
    public: Annotated[
        bool | None, typer.Option("--public/--private", help="Show it on the public leaderboard?")
    ] = None,
    method_name: Annotated[str, typer.Option(help="Your method's name.")] = "",
    method_description: Annotated[str, typer.Option(help="A few words about it.")] = "",
    project_url: Annotated[str, typer.Option()] = "",
    publication_url: Annotated[str, typer.Option()] = "",
    meta: Annotated[list[str] | None, typer.Option(help="NAME=VALUE of a phase's meta attribute (repeat).")] = None,
    wait: Annotated[bool, typer.Option("--wait", "-w", help="Follow the evaluation live until its result.")] = False,
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
        sub = upload_file(api, phase, file, fields, quiet=as_json)
    except ApiError as exc:
        raise fail(exc) from None
    if not as_json:
        console.print(f"[green]✓ submitted {file.name}[/green] as submission {sub['id']} ({sub['status']})")
    if wait:
        sub = follow(api, sub["id"], quiet=as_json)
    if as_json:
        emit_json(sub)
    elif not wait:
        console.print(f"[dim]follow it: assay submission {sub['id']} --wait[/dim]")
    if wait and sub["status"] == "failed":
        raise typer.Exit(1)


def follow(api: Client, submission_id: int, quiet: bool = False, poll: float = 2.0, timeout: float = 86400) -> dict:
    """Poll a submission until it is done, showing its status; then print its result."""
    deadline = time.monotonic() + timeout
    last = None
    with console.status("waiting…", spinner="dots") as status:
        while True:
            sub = api.get(f"/submissions/{submission_id}")
            if sub["status"] != last and not quiet:
                why = f" ({sub['waiting_for']})" if sub.get("waiting_for") else ""
                status.update(f"submission {submission_id}: {sub['status']}{why}")
                last = sub["status"]
            if sub["status"] in DONE or time.monotonic() > deadline:
                break
            time.sleep(poll)
    if not quiet:
        _print_outcome(api, sub)
    return sub


def _print_outcome(api: Client, sub: dict) -> None:
    from assay.evaluation.contract import display_metric  # not at start-up: the package is heavy

    colour = "green" if sub["status"] == "finished" else "red" if sub["status"] == "failed" else "yellow"
    console.print(f"[{colour}]submission {sub['id']}: {sub['status']}[/{colour}]")
    if sub["status"] == "failed":
        console.print(f"reason: {sub.get('failure_reason') or 'see assay stderr ' + str(sub['id'])}")
    for item in (sub.get("output") or {}).get("result", []):
        for split, metrics in item.items():
            console.print(f"  {split}: " + ", ".join(f"{k} {display_metric(v)}" for k, v in metrics.items()))


def submissions(
    phase: Annotated[int, typer.Option("--phase", "-p", help="Phase id.")],
    server: ServerOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Your team's submissions to a phase."""
    try:
        rows = client(server).all_pages(f"/phases/{phase}/submissions")
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
        console.print(f"submission {sub['id']} of team {sub['participant_team_name']} to {sub['phase_codename']}")
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
        console.print(text, markup=False, highlight=False, soft_wrap=True, end="")

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
        else:
            what = "cancelled" if kind == "cancel" else f"queued again as submission {sub['id']}"
            console.print(f"[green]✓ submission {submission_id} {what}[/green]")

    command.__doc__ = {"cancel": "Cancel a submission that has not finished.",
                       "rerun": "Evaluate a submission again (a new copy is queued)."}[kind]  # fmt: skip
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
    from assay.evaluation.contract import display_metric

    labels = board.get("labels", [])
    ps = board.get("phase_split", {})
    rows = []
    for r in board.get("results", []):
        scores = r.get("scores") or {}
        rows.append([r.get("rank") or "", (r.get("team") or {}).get("name", ""),
                     *[display_metric(scores.get(x), ps.get("precision")) for x in labels],
                     (r.get("submission") or {}).get("submitted_at", "")[:10]])  # fmt: skip
    _table(
        f"Leaderboard {phase_split}: {ps.get('phase', '')}/{ps.get('split', '')}",
        ["rank", "team", *labels, "date"],
        rows,
    )
    if board.get("pages", 1) > 1:
        console.print(f"[dim]page {board['page']} of {board['pages']} (--page N)[/dim]")
