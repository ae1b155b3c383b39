"""``assay data list|show|push|request|requests|approve|deny|download|log``: data packages over /api/v1.

A data package is a host team's dataset: numbered, immutable versions of files stored by their SHA-256, with
a data card and an access policy the server applies (public; on request, approved by the data owner; the host
team only). ``push`` publishes a folder (or a .zip) whose top-level folders ``inputs/``, ``labels/`` and
``metadata/`` give each file's role; ``download`` streams the files you may read and checks each one's
SHA-256 before it appears under its name. The server decides who may do what and logs every download.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Annotated, Any
from urllib.parse import quote

import httpx
import typer
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress

from . import client_participant as participant
from .client_config import GENERIC_CODES, ApiError, Client, client, error_from, fail
from .output import RateColumn, console, emit_json, err_console, plain

app = typer.Typer(
    help="Data packages: versioned, hashed datasets with a data card and an access policy.", no_args_is_help=True
)
ROLES = ("inputs", "labels", "metadata")
#: Publishing waits this long for the server: it checks the archive and stores every file.
PUSH_TIMEOUT = 3600.0
CHUNK = 1024 * 1024
CARD_FIELDS = ("summary", "source", "collection_period", "population", "labelling", "licence", "limitations",
               "contact")  # fmt: skip

SlugArg = Annotated[str, typer.Argument(help="The package's name (its slug: assay data list).")]


def _package_path(slug: str) -> str:
    return f"/data-packages/{quote(slug, safe='')}"


def _call(action, slug: str = "NAME"):
    """Run ``action()``; a refusal or an unreachable server is printed for people and exits 1, with the next
    step for a data package (the generic hints speak of teams and challenge ids)."""
    try:
        return action()
    except ApiError as exc:
        hints = {
            404: "check the package's name: assay data list",
            403: f"your access and how to ask: assay data show {slug}",
        }
        raise fail(exc, hint=hints.get(exc.status) if exc.code in GENERIC_CODES else None) from None


# --- reading ------------------------------------------------------------------------------------------------


def _your_access(p: dict) -> str:
    if p.get("is_owner"):
        return "owner"
    if p.get("has_access"):
        return "inputs" if p["access"] != "public" else "inputs (public)"
    return p.get("request_status") or "—"


def list_packages(server: participant.ServerOpt = None, as_json: participant.JsonOpt = False) -> None:
    """The data packages you may see, with your access to each."""
    api = client(server)
    packages = _call(lambda: api.all_pages("/data-packages"))
    if as_json:
        emit_json(packages)
        return
    rows = [
        [p["slug"], p["title"], p["host_team_name"], p["access"],
         f"v{p['latest_version']}" if p.get("latest_version") else "—", _your_access(p)]
        for p in packages
    ]  # fmt: skip
    participant._table("Data packages", ["name", "title", "host team", "policy", "latest", "your access"], rows)


def _version(api: Client, slug: str, number: int | None) -> dict | None:
    """Version ``number`` (default: the newest) with the files you may see; None when none is published."""
    if number is None:
        versions = api.get(f"{_package_path(slug)}/versions", page_size=1)
        listed = versions["results"] if isinstance(versions, dict) else versions
        if not listed:
            return None
        number = listed[0]["number"]
    return api.get(f"{_package_path(slug)}/versions/{number}")


def show(
    slug: SlugArg,
    version: Annotated[int | None, typer.Option("--version", "-v", help="Default: the newest.")] = None,
    server: participant.ServerOpt = None,
    as_json: participant.JsonOpt = False,
) -> None:
    """A package's data card and policy, its versions, and one version's files (those you may see)."""
    api = client(server)

    def read() -> tuple[dict, list, dict | None]:
        package = api.get(_package_path(slug))
        return package, api.all_pages(f"{_package_path(slug)}/versions"), _version(api, slug, version)

    package, versions, shown = _call(read, slug)
    if as_json:
        emit_json({**package, "versions": versions, "version": shown})
        return
    console.print(
        f"[bold]{plain(package['title'])}[/bold] ({plain(package['slug'])}) of {plain(package['host_team_name'])}"
    )
    console.print(f"  policy: {plain(package['access'])} · your access: {plain(_your_access(package))}")
    for field in CARD_FIELDS:
        if package.get(field):
            console.print(f"  {field.replace('_', ' ')}: {plain(package[field])}")
    participant._table(
        "Versions", ["version", "published", "by", "notes"],
        [[f"v{v['number']}", v["created_at"], v["created_by"], v["notes"]] for v in versions],
    )  # fmt: skip
    if shown is not None:
        participant._table(
            f"Files of v{shown['number']}", ["path", "role", "size", "sha256"],
            [[f["path"], f["role"], f["size"], f["sha256"]] for f in shown["files"]],
        )  # fmt: skip
    if not package.get("has_access") and package["access"] == "on_request":
        console.print(f"[dim]ask for the inputs: assay data request {plain(slug)} --reason '…'[/dim]")


# --- publishing ---------------------------------------------------------------------------------------------


def _refuse(message: str) -> typer.Exit:
    err_console.print(f"[red]✗ {escape(message)}[/red]")
    return typer.Exit(2)


def zip_folder(folder: Path, out: IO[bytes]) -> int:
    """Write ``folder``'s ``inputs/``, ``labels/`` and ``metadata/`` into ``out`` as a zip; the number of files.

    Other top-level entries are left out (and named); a symbolic link is refused rather than followed, so a
    link cannot carry a file from elsewhere on this machine into the package.
    """
    present = [role for role in ROLES if (folder / role).is_dir()]
    if not present:
        raise _refuse(
            f"{folder} has none of the folders {', '.join(r + '/' for r in ROLES)} (a file's folder is its role)"
        )
    others = sorted(p.name for p in folder.iterdir() if p.name not in ROLES and not p.name.startswith("."))
    if others:
        err_console.print(f"[yellow]left out (not inputs/, labels/ or metadata/):[/yellow] {escape(', '.join(others))}")
    count = 0
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for role in present:
            for root, dirs, files in os.walk(folder / role, followlinks=False):
                dirs.sort()
                for name in sorted(files + [d for d in dirs if (Path(root) / d).is_symlink()]):
                    path = Path(root) / name
                    if path.is_symlink():
                        raise _refuse(f"{path} is a symbolic link; copy the file into the folder instead")
                    if not path.is_file():
                        continue
                    zf.write(path, path.relative_to(folder).as_posix())
                    count += 1
    if count == 0:
        raise _refuse(f"{folder}'s {', '.join(r + '/' for r in present)} hold no files")
    return count


@contextmanager
def _archive(source: Path) -> Iterator[Path]:
    """``source`` itself when it is a .zip; a folder zipped into a temporary file (removed afterwards)."""
    if source.is_file():
        if not zipfile.is_zipfile(source):
            raise _refuse(f"{source} is not a .zip; give a folder with inputs/, labels/, metadata/ or a .zip of them")
        yield source
        return
    if not source.is_dir():
        raise _refuse(f"{source} is neither a folder nor a .zip")
    fd, name = tempfile.mkstemp(prefix="assay-data-", suffix=".zip")
    try:
        with os.fdopen(fd, "wb") as out:
            zip_folder(source, out)
        yield Path(name)
    finally:
        os.unlink(name)


def _read_card(card: Path | None) -> dict[str, Any] | None:
    if card is None:
        return None
    try:
        fields = json.loads(card.read_text())
    except (OSError, ValueError) as exc:
        raise _refuse(f"cannot read the card {card}: {exc}") from None
    if not isinstance(fields, dict):
        raise _refuse(f"the card {card} must be a JSON object of its fields ({', '.join(CARD_FIELDS)})")
    return fields


def _existing(api: Client, slug: str) -> dict | None:
    try:
        return api.get(_package_path(slug))
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise


def push(
    source: Annotated[Path, typer.Argument(help="A folder with inputs/, labels/, metadata/ — or a .zip of them.")],
    slug: SlugArg,
    title: Annotated[str | None, typer.Option(help="The title (creates the package when it does not exist).")] = None,
    access: Annotated[
        str | None, typer.Option(help="public | on_request | hosts_only (a new package: on_request).")
    ] = None,
    host_team: Annotated[int | None, typer.Option(help="The owning host team's id (default: your only one).")] = None,
    card: Annotated[
        Path | None, typer.Option(help=f"The data card: a JSON file of its fields ({', '.join(CARD_FIELDS)}).")
    ] = None,
    notes: Annotated[str, typer.Option(help="What changed in this version.")] = "",
    server: participant.ServerOpt = None,
    as_json: participant.JsonOpt = False,
) -> None:
    """Publish a folder (or .zip) as the package's next version; creates the package first when --title is given."""
    fields = _read_card(card)
    api = client(server)
    with _archive(source) as archive:

        def send() -> dict:
            package = _existing(api, slug)
            if package is None:
                if not title:
                    raise _refuse(
                        f"there is no data package {slug!r} you may see; give --title (and --access) to create it"
                    )
                body = {"slug": slug, "title": title, "access": access or "on_request", "host_team": host_team,
                        "card": fields or {}}  # fmt: skip
                package = api.post("/data-packages", json=body)
            else:
                changes = {k: v for k, v in (("title", title), ("access", access)) if v is not None}
                if fields:
                    changes["card"] = fields
                if changes:
                    package = api.request("PATCH", _package_path(slug), json=changes).json()
            uploader = Client(api.server, timeout=PUSH_TIMEOUT)
            with archive.open("rb") as fh:
                version = uploader.post(
                    f"{_package_path(slug)}/versions",
                    data={"notes": notes},
                    files={"archive": (f"{slug}.zip", fh, "application/zip")},
                )
            return {**package, "pushed": version}

        result = _call(send, slug)
    if as_json:
        emit_json(result)
        return
    version = result["pushed"]
    by_role: dict[str, int] = {}
    for f in version["files"]:
        by_role[f["role"]] = by_role.get(f["role"], 0) + 1
    counts = ", ".join(f"{n} {role}" for role, n in sorted(by_role.items()))
    policy = plain(result["access"])
    console.print(f"[green]✓ {plain(slug)} v{version['number']}[/green] published ({plain(counts)}; policy {policy})")


# --- access requests ----------------------------------------------------------------------------------------


def request(
    slug: SlugArg,
    reason: Annotated[str, typer.Option("--reason", "-r", help="What you will use the data for (the owner reads it).")],
    server: participant.ServerOpt = None,
    as_json: participant.JsonOpt = False,
) -> None:
    """Ask the data owner for an on-request package's inputs."""
    api = client(server)
    req = _call(lambda: api.post(f"{_package_path(slug)}/access-requests", json={"reason": reason}), slug)
    if as_json:
        emit_json(req)
        return
    console.print(f"[green]✓ access to {plain(slug)} requested[/green] (request {req['id']}, {plain(req['status'])})")
    console.print(f"[dim]see the answer: assay data requests {plain(slug)}[/dim]")


def requests(slug: SlugArg, server: participant.ServerOpt = None, as_json: participant.JsonOpt = False) -> None:
    """The package's access requests: every one for its host team, your own for anyone else."""
    api = client(server)
    rows = _call(lambda: api.all_pages(f"{_package_path(slug)}/access-requests"), slug)
    if as_json:
        emit_json(rows)
        return
    participant._table(
        f"Access requests to {slug}", ["id", "user", "status", "asked", "reason", "decided by", "note"],
        [[r["id"], r["user"], r["status"], r["created_at"], r["reason"], r["decided_by"], r["decision_note"]]
         for r in rows],
    )  # fmt: skip


def _request_id(api: Client, slug: str, who: str) -> int:
    """A request's id, given as the id or as the requester's user name."""
    if who.isdigit():
        return int(who)
    for r in api.all_pages(f"{_package_path(slug)}/access-requests"):
        if r["user"] == who:
            return r["id"]
    raise _refuse(f"no access request from {who!r} to {slug} (assay data requests {slug})")


def _decision(approve: bool):
    def command(
        slug: SlugArg,
        who: Annotated[str, typer.Argument(help="The request's id, or the requester's user name.")],
        note: Annotated[str, typer.Option(help="A note the requester reads.")] = "",
        server: participant.ServerOpt = None,
        as_json: participant.JsonOpt = False,
    ) -> None:
        api = client(server)

        def decide() -> dict:
            number = _request_id(api, slug, who)
            return api.post(f"{_package_path(slug)}/access-requests/{number}", json={"approve": approve, "note": note})

        req = _call(decide, slug)
        if as_json:
            emit_json(req)
            return
        console.print(f"[green]✓ {plain(req['user'])}'s request to {plain(slug)}: {plain(req['status'])}[/green]")

    command.__doc__ = (
        "Approve an access request (the package's host team): the user may then download the inputs."
        if approve
        else "Deny a pending access request, or revoke an approved one (the package's host team)."
    )
    return command


# --- downloading --------------------------------------------------------------------------------------------


def _target(folder: Path, path: str) -> Path:
    """Where the package's ``path`` goes under ``folder``; a path that would leave it is refused."""
    parts = path.split("/")
    if "\\" in path or "\x00" in path or any(p in ("", ".", "..") for p in parts):
        raise _refuse(f"the server named a file {path!r} that cannot be written safely")
    return folder.joinpath(*parts)


@contextmanager
def _stream(api: Client, url: str) -> Iterator[httpx.Response]:
    """The response carrying the file: the server's own, or the object store's when the server redirects to a
    presigned URL (fetched without your token: the URL's signature is the credential)."""
    with api.http.stream("GET", url) as response:
        location = response.headers.get("location", "")
        if response.status_code in (301, 302, 303, 307, 308) and location:
            response.read()
            target = response.url.join(location)
        else:
            if response.status_code >= 400:
                response.read()
                raise error_from(response)
            yield response
            return
    with httpx.stream("GET", target, timeout=api.http.timeout, headers={"User-Agent": "assay-cli"}) as stored:
        if stored.status_code >= 400:
            stored.read()
            raise ApiError(stored.status_code, "store_error", f"the file store answered HTTP {stored.status_code}")
        yield stored


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def fetch(api: Client, slug: str, number: int, file: dict, folder: Path, bar: Progress) -> Path:
    """Download one file to ``folder``/its path, checking its size and SHA-256 before it takes that name."""
    target = _target(folder, file["path"])
    target.parent.mkdir(parents=True, exist_ok=True)
    url = f"{_package_path(slug)}/versions/{number}/files/{quote(file['path'])}"
    task = bar.add_task(escape(file["path"]), total=file["size"])
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".part-")
    digest, size = hashlib.sha256(), 0
    try:
        with os.fdopen(fd, "wb") as out:
            with _stream(api, url) as response:
                for block in response.iter_bytes(CHUNK):
                    digest.update(block)
                    out.write(block)
                    size += len(block)
                    bar.update(task, completed=size)
        if size != file["size"] or digest.hexdigest() != file["sha256"]:
            raise ApiError(0, "hash_mismatch", f"{file['path']}: the bytes received ({size} bytes, sha256"
                           f" {digest.hexdigest()}) are not the file the server lists ({file['size']} bytes,"
                           f" sha256 {file['sha256']}); nothing was written")  # fmt: skip
        os.chmod(tmp, 0o666 & ~_umask())  # as a file the user creates (mkstemp's is private)
        os.replace(tmp, target)
        return target
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def download(
    slug: SlugArg,
    paths: Annotated[
        list[str] | None, typer.Argument(help="Files to fetch (default: every file of the version you may read).")
    ] = None,
    version: Annotated[int | None, typer.Option("--version", "-v", help="Default: the newest.")] = None,
    to: Annotated[
        Path, typer.Option("--to", "-o", help="The folder the files go to, under their package paths.")
    ] = Path("."),
    server: participant.ServerOpt = None,
    as_json: participant.JsonOpt = False,
) -> None:
    """Download a version's files you may read (inputs, for participants), each checked against its SHA-256."""
    api = client(server)
    listed = _call(lambda: _version(api, slug, version), slug)
    if listed is None:
        raise _refuse(f"{slug} has no published version yet")
    files = listed["files"]
    if paths:
        by_path = {f["path"]: f for f in files}
        unknown = [p for p in paths if p not in by_path]
        if unknown:
            raise _refuse(f"not in v{listed['number']} of {slug} (or not yours to read): {', '.join(unknown)}")
        files = [by_path[p] for p in paths]
    if not files:
        raise _refuse(f"v{listed['number']} of {slug} lists no file you may read")
    columns = ("[progress.description]{task.description}", BarColumn(), DownloadColumn(), RateColumn())
    written = []
    with Progress(*columns, console=err_console, disable=as_json) as bar:
        for file in files:
            target = _call(lambda file=file: fetch(api, slug, listed["number"], file, to, bar), slug)
            written.append({"path": file["path"], "file": str(target), "sha256": file["sha256"], "size": file["size"]})
    if as_json:
        emit_json({"package": slug, "version": listed["number"], "files": written})
        return
    for w in written:
        console.print(f"[green]✓[/green] {plain(w['file'])} [dim](sha256 {w['sha256'][:12]}… checked)[/dim]")


def log(slug: SlugArg, server: participant.ServerOpt = None, as_json: participant.JsonOpt = False) -> None:
    """The package's access log: every download, who made it and when (its host team only)."""
    api = client(server)
    rows = _call(lambda: api.all_pages(f"{_package_path(slug)}/downloads"), slug)
    if as_json:
        emit_json(rows)
        return
    participant._table(
        f"Downloads of {slug}", ["when", "who", "version", "file", "role", "via", "from"],
        [[r["at"], r["user"] or "anonymous", f"v{r['version']}", r["path"], r["role"], r["via"], r["client_address"]]
         for r in rows],
    )  # fmt: skip


app.command("list")(list_packages)
app.command("show")(show)
app.command("push")(push)
app.command("request")(request)
app.command("requests")(requests)
app.command("approve")(_decision(True))
app.command("deny")(_decision(False))
app.command("download")(download)
app.command("log")(log)
