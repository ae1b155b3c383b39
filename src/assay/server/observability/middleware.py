"""The two middlewares in front of every request (first in ``MIDDLEWARE``, so they see every answer,
the API guard's refusals and static files included).

:class:`RequestId` gives the request its id — the caller's ``X-Request-ID`` when well-formed, else a fresh
one — for every log line written while it runs, and echoes it in the response's ``X-Request-ID``.
:class:`HttpMetrics` times the request into ``assay_http_request_duration_seconds`` under the URL *route*
that served it (``api/v1/submissions/<int:submission_id>``), never the raw path, so ids and probing
paths cannot grow the label set; an answer no route gave (a 404, a static file, a refused body) is
``<unrouted>``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from .context import accepted_request_id, bind_request_id
from .metrics import HTTP_LATENCY

HEADER = "X-Request-ID"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNROUTED = "<unrouted>"


class RequestId:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = accepted_request_id(request.headers.get(HEADER))
        request.request_id = request_id  # type: ignore[attr-defined]
        # kept until the response is closed (request_finished, :func:`.context.forget_request_id`), not just
        # until this returns: Django logs a 4xx/5xx answer ("Not Found: /x") after every middleware is done
        bind_request_id(request_id)
        response = self.get_response(request)
        response[HEADER] = request_id
        return response


class HttpMetrics:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        route = (match.route or UNROUTED) if match is not None else UNROUTED
        method = request.method if request.method in METHODS else "other"
        series = _series.get((route, method, response.status_code // 100))
        if series is None:
            series = _series_of(route, method, response.status_code // 100)
        series.observe(time.perf_counter() - started)
        return response


#: The histogram's series by (route, method, status class): the label lookup once per series, not per request.
#: Bounded as the label set is (routes are patterns, methods a fixed set, statuses 1xx-5xx).
_series: dict[tuple[str, str, int], object] = {}


def _series_of(route: str, method: str, status_class: int):
    series = HTTP_LATENCY.labels(route=route, method=method, status=f"{status_class}xx")
    _series[(route, method, status_class)] = series
    return series
