"""The request guard of every API face (/api/v1 and the EvalAI-compatible /api/...): hostile input is refused
before any view runs, and every error under /api/ answers in that API's JSON shape, never Django's HTML.

A middleware, not a parser class: several views name their own parsers (multipart, octet-stream), and
unknown routes, 413s and malformed paths never reach DRF at all. One place, every view.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable

from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.http.multipartparser import MultiPartParserError

from assay.evaluation import contract
from assay.server.refusals import Refusal, for_status

from .errors import is_native, refusal_body

# nesting of a JSON body: a worker's report wraps an output the result contract allows MAX_DEPTH deep
MAX_DEPTH = contract.MAX_DEPTH + 4
INT64 = 2**63 - 1  # the widest integer column of every supported database
INTEGER = re.compile(r"[-+]?\d+")
# query parameters and body fields that name a row by id: a number no column can hold names nothing
ID_PARAMS = re.compile(r"(id|pk|.*_id|.*_pk|phase|challenge|team|submission|split|phase_split|host_team|attempt)")
JSON_TYPES = ("application/json",)
LOG_FIELDS = frozenset({"stdout", "stderr"})  # a worker's logs: saved as files, where NUL is harmless


class Refused(Refusal):
    """Bad input seen by the guard: answered with ``status`` in the path's error shape."""


def is_api(path: str) -> bool:
    return path == "/api" or path.startswith("/api/")


def missing(path: str, what: str) -> JsonResponse:
    return answer(path, Refusal("not_found", f"{what} does not exist", missing_status(path)))


def missing_status(path: str) -> int:
    """A row that cannot exist: 404 on /api/v1; 406 on EvalAI's paths, as EvalAI answers "does not exist"."""
    return 404 if is_native(path) else 406


def answer(path: str, refused: Refusal) -> JsonResponse:
    return JsonResponse(refusal_body(path, refused), status=refused.status)


class ApiGuard:
    """Checks path, query and body of each /api/ request; turns any non-JSON error answer into JSON."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path_info
        if not is_api(path):
            return self.get_response(request)
        try:
            check_request(request)
        except Refused as r:
            return answer(path, r)
        return as_json_error(path, self.get_response(request))

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs) -> HttpResponse | None:
        """An id in the URL beyond any column's range: 'not found', as for any other missing row."""
        if is_api(request.path_info) and any(_too_big(v) for v in (*view_args, *view_kwargs.values())):
            return missing(request.path_info, "the object")
        return None

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        """A multipart body that Django refuses while a view reads it (DRF re-raises these)."""
        if not is_api(request.path_info):
            return None
        try:
            _refuse_body_error(exc)
        except Refused as r:
            return answer(request.path_info, r)
        return None


def check_request(request: HttpRequest) -> None:
    """Raise :class:`Refused` for a malformed path, query or body; parse nothing twice that DRF needs raw."""
    if "\x00" in request.path_info:
        raise Refused("not_found", "no such path", 404)
    for key, values in request.GET.lists():
        for value in values:
            if "\x00" in key or "\x00" in value:
                raise Refused("invalid", "NUL characters are not allowed in the query", 400)
            if ID_PARAMS.fullmatch(key) and _too_big(value):
                raise Refused("not_found", f"{key} does not exist", missing_status(request.path_info))
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise Refused("invalid", "Content-Length is not a number", 400) from None
    if length <= 0:
        return
    try:
        if request.content_type in JSON_TYPES:
            check_json(request.body)
        elif request.content_type == "application/x-www-form-urlencoded":
            check_form(QueryDict(request.body, encoding=request.encoding).lists(), ())  # any method
        elif request.content_type == "multipart/form-data" and request.method == "POST":
            # Django parses it (files to disk); DRF reuses the parsed fields and files
            check_form(request.POST.lists(), (f.name or "" for f in request.FILES.values()))
    except Refused:
        raise
    except Exception as exc:  # noqa: BLE001 - only the body errors below are answered; others re-raise
        _refuse_body_error(exc)
        raise


def _refuse_body_error(exc: Exception) -> None:
    if isinstance(exc, RequestDataTooBig):
        raise Refused("too_large", "the request body is too large", 413) from exc
    if isinstance(exc, TooManyFieldsSent | TooManyFilesSent):
        raise Refused("too_large", "the request has too many fields or files", 413) from exc
    if isinstance(exc, MultiPartParserError):
        raise Refused("invalid", f"malformed multipart body: {exc}", 400) from exc


def check_json(body: bytes) -> None:
    """A JSON object, at most MAX_DEPTH deep, with no NUL in any string and every number storable."""
    try:
        data = json.loads(body, parse_constant=_no_constant)
    except RecursionError:
        raise Refused("invalid", f"JSON nested deeper than {MAX_DEPTH} levels", 400) from None
    except ValueError as exc:  # also a bad encoding and an integer of thousands of digits
        raise Refused("invalid", f"malformed JSON: {exc}", 400) from None
    if not isinstance(data, dict):
        raise Refused("invalid", "the body must be a JSON object", 400)
    _check_tree(data)


def _no_constant(name: str):
    raise Refused("invalid", f"{name} is not a number", 400)


def _check_tree(data: object) -> None:
    """Iterative (a recursive walk is what a deep body attacks)."""
    stack: list[tuple[str, object, int]] = [("", data, 1)]
    while stack:
        key, item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                raise Refused("invalid", f"JSON nested deeper than {MAX_DEPTH} levels", 400)
            if isinstance(item, dict):
                for name, value in item.items():
                    _check_scalar("", name)
                    stack.append((name, value, depth + 1))
            else:
                stack.extend((key, value, depth + 1) for value in item)
        else:
            _check_scalar(key, item)


def _check_scalar(key: str, value: object) -> None:
    """``key``: the field the value belongs to (a log field may hold any text: it is stored as a file)."""
    if isinstance(value, str):
        if key not in LOG_FIELDS:
            where = f" in {key}" if key else ""
            if "\x00" in value:
                raise Refused("invalid", f"NUL characters are not allowed{where}", 400)
            if not value.isascii() and not _encodable(value):
                raise Refused("invalid", f"lone surrogate characters are not allowed{where}", 400)
        if len(value) > 18 and _too_big(value) and ID_PARAMS.fullmatch(key):
            raise Refused("invalid", f"{key} is out of range", 400)
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int):
        if _too_big(value):
            raise Refused("invalid", f"{key or 'a number'} is out of range", 400)
    elif isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        raise Refused("invalid", f"{key or 'a number'} is out of range", 400)  # 1e400 parses as infinity


def _encodable(text: str) -> bool:
    """Valid Unicode text (a JSON escape like \\ud800 is not, and crashes whatever encodes it)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_form(fields: Iterable[tuple[str, list[str]]], file_names: Iterable[str]) -> None:
    for key, values in fields:
        _check_scalar("", key)
        for value in values:
            _check_scalar(key, value)
    for name in file_names:
        if "\x00" in name:
            raise Refused("invalid", "NUL characters are not allowed in file names", 400)


def _too_big(value: object) -> bool:
    """An integer (or integer text) beyond 64 bits: no database row can have it."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return not -INT64 - 1 <= value <= INT64
    if isinstance(value, str) and len(value) > 18 and INTEGER.fullmatch(value):
        # int() of over 4300 digits raises ValueError (a 500): look at the significant digits only
        digits = value.lstrip("+-").lstrip("0") or "0"
        if len(digits) > 19:
            return True
        number = -int(digits) if value.startswith("-") else int(digits)
        return not -INT64 - 1 <= number <= INT64
    return False


def as_json_error(path: str, response: HttpResponse) -> HttpResponse:
    """Django's own error pages (unknown route, 405, 400, 413, 500) become the API's JSON shape."""
    if response.status_code < 400 or response.get("Content-Type", "").startswith("application/json"):
        return response
    if response.get("Content-Type", "").startswith("application/octet-stream"):
        return response
    status = response.status_code
    message = "no such API path" if status == 404 else response.reason_phrase or "error"
    converted = answer(path, for_status(status, message))
    for header in ("Allow", "Retry-After", "WWW-Authenticate"):
        if header in response:
            converted[header] = response[header]
    return converted
