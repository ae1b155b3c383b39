"""Where the assay CLI keeps its servers and tokens, and the HTTP client that talks to them.

``config.json`` in the user's config folder (``assay config-path`` prints it) holds several named
servers, each with its URL and token; ``--server NAME|URL`` picks one, ``ASSAY_TOKEN`` and
``ASSAY_SERVER`` override the file (for CI). The file is written with mode 600.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import typer
from platformdirs import user_config_dir

from .output import err_console, plain, problem_line, severity_mark

DEFAULT_URL = "http://127.0.0.1:8000"


def config_path() -> Path:
    override = os.environ.get("ASSAY_CONFIG")
    return Path(override) if override else Path(user_config_dir("assay")) / "config.json"


def load() -> dict[str, Any]:
    path = config_path()
    if not path.is_file():
        return {"default": None, "servers": {}}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        err_console.print(f"[red]{plain(path)} is not valid JSON; fix or delete it[/red]")
        raise typer.Exit(2) from None
    data.setdefault("servers", {})
    return data


def save(data: dict[str, Any]) -> None:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
    os.replace(tmp, path)


@dataclass
class Server:
    name: str
    url: str
    token: str | None


def resolve(server: str | None) -> Server:
    """``--server`` (a name or a URL), else ``ASSAY_SERVER``, else the default server of the file."""
    data = load()
    choice = server or os.environ.get("ASSAY_SERVER") or data.get("default")
    entry: dict[str, Any] = {}
    if choice and choice in data["servers"]:
        name, entry = choice, data["servers"][choice]
        url = entry["url"]
    elif choice and "://" in choice:
        name = next((n for n, e in data["servers"].items() if e.get("url") == choice.rstrip("/")), choice)
        entry = data["servers"].get(name, {})
        url = choice
    elif choice:
        err_console.print(
            f"[red]No server named {plain(repr(choice))}.[/red]"
            f" Log in first: assay login --server URL --name {plain(choice)}"
        )
        raise typer.Exit(2)
    else:
        name, url = "default", DEFAULT_URL
    return Server(name=name, url=url.rstrip("/"), token=os.environ.get("ASSAY_TOKEN") or entry.get("token"))


class ApiError(Exception):
    """A refusal or an unreachable server; ``problems`` holds every reason when the server gave several."""

    def __init__(self, status: int, code: str, message: str, problems: list[Any] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.problems = list(problems or [])


#: Hints by status, for the generic refusals only (:data:`GENERIC_CODES`): a specific code such as
#: ``limit_day`` already says what happened, and "check you are in the right team" after it misleads.
HINTS = {
    401: "log in again: assay login (or set ASSAY_TOKEN)",
    403: "you may not do this; check you are in the right team (assay whoami)",
    404: "check the id (assay challenges list, assay submissions --phase P)",
    429: "too many requests; wait a minute and try again",
}
#: Where the server's error code says more than its status (a 403 is not always the wrong team).
CODE_HINTS = {
    "terms_not_accepted": "accept them: assay participate CHALLENGE --team TEAM (or on the challenge's web page)",
    "not_participating": "register your team first: assay participate CHALLENGE --team TEAM",
    "team_not_approved": "the host approves teams by hand here; wait for it, or ask the host",
    "image_refused": "fix the image as the message says, rebuild it and push again",
}
#: The codes that say no more than their status (DRF's defaults and the server's generic ones).
GENERIC_CODES = frozenset(
    {"error", "forbidden", "permission_denied", "not_authenticated", "authentication_failed", "not_found",
     "throttled"}
)  # fmt: skip


def hint_for(exc: ApiError) -> str | None:
    """The next step a refusal calls for: its code's own hint, else its status's when the code is a generic one."""
    if exc.code in CODE_HINTS:
        return CODE_HINTS[exc.code]
    return HINTS.get(exc.status) if exc.code in GENERIC_CODES else None


def error_from(response: httpx.Response) -> ApiError:
    """The refusal a 4xx/5xx answer carries (a streamed response must be read first)."""
    code, message, problems = "error", response.text[:300] or response.reason_phrase, []
    try:
        body = response.json()
        err = body.get("error") if isinstance(body, dict) else None
        if isinstance(err, dict):
            code, message = err.get("code") or code, err.get("message") or message
        elif isinstance(err, str):
            message = err
        if isinstance(body, dict) and isinstance(body.get("problems"), list):
            problems = body["problems"]
    except ValueError:
        pass
    return ApiError(response.status_code, code, message, problems)


#: The HTTP clients not yet closed, held until then: a command's Client is freed when the command returns, but a
#: response's stream keeps the connection open in a reference cycle until the garbage collector runs.
_made: set[httpx.Client] = set()


def close_clients() -> None:
    """Close every :class:`Client` still open: the ``assay`` command calls it when a command ends, not only when its
    process does (tests run many commands in one process, and a live server keeps a thread and a database
    connection for each kept-alive HTTP connection)."""
    while _made:
        _made.pop().close()


class Client:
    """JSON over HTTP to one server; every failure becomes an :class:`ApiError` with a readable message."""

    def __init__(self, server: Server, timeout: float = 60.0) -> None:
        self.server = server
        headers = {"User-Agent": "assay-cli"}
        if server.token:
            headers["Authorization"] = f"Bearer {server.token}"
        self.http = httpx.Client(base_url=server.url + "/api/v1", headers=headers, timeout=timeout)
        _made.add(self.http)

    def close(self) -> None:
        """End the kept-alive connections: the server's thread for each keeps its database connection until then."""
        self.http.close()
        _made.discard(self.http)

    def request(self, method: str, path: str, **kwargs) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiError(0, "unreachable", f"cannot reach {self.server.url}: {exc}; check --server") from None
        if response.status_code >= 400:
            raise error_from(response)
        return response

    def ping(self) -> None:
        """Raise the "cannot reach" :class:`ApiError` when no server answers; any answer at all will do."""
        try:
            self.request("GET", "/challenges", params={"page_size": 1})
        except ApiError as exc:
            if exc.status == 0:
                raise

    def get(self, path: str, **params) -> Any:
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None}).json()

    def post(self, path: str, **kwargs) -> Any:
        response = self.request("POST", path, **kwargs)
        return response.json() if response.content else None

    def all_pages(self, path: str, **params) -> list:
        out, page = [], 1
        while True:
            body = self.get(path, page=page, page_size=200, **params)
            if not isinstance(body, dict) or "results" not in body:
                return body
            out.extend(body["results"])
            if not body.get("next"):
                return out
            page += 1


def fail(exc: ApiError, hint: str | None = None) -> typer.Exit:
    """Print a refusal for people (every problem when there are several, a hint when one fits: ``hint`` when the
    command knows a better one than the status's); the exit to raise."""
    bundle_errors = [p for p in exc.problems if isinstance(p, dict) and "message" in p]
    if bundle_errors:  # the server's one-line summary names only the first; say how many, then each
        errors = [p for p in bundle_errors if p.get("severity", "error") == "error"]
        err_console.print(
            f"[red]✗ the bundle is invalid: {_count(len(errors), 'error')}[/red] [dim]({plain(exc.code)})[/dim]"
        )
        for p in bundle_errors:
            line = problem_line(p.get("file") or "", p.get("line"), p.get("key"), p["message"], p.get("code") or "")
            err_console.print(f"  {severity_mark(p.get('severity', 'error'))} {line}")
    else:
        err_console.print(
            f"[red]✗ {plain(exc.message)}[/red]" + (f" [dim]({plain(exc.code)})[/dim]" if exc.code else "")
        )
        for p in exc.problems:
            err_console.print(f"  • {plain(p)}")
    hint = hint or hint_for(exc)
    if hint:
        err_console.print(f"  [dim]→ {plain(hint)}[/dim]")
    return typer.Exit(1)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def client(server: str | None, need_token: bool = True) -> Client:
    target = resolve(server)
    if need_token and not target.token:
        err_console.print(
            f"[red]Not logged in to {plain(target.url)}.[/red] Run: assay login --server {plain(target.url)}"
        )
        raise typer.Exit(2)
    return Client(target)
