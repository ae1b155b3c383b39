"""The project's URL configuration as a list of routes with their HTTP methods, and concrete paths for them.

One walker for every test that sweeps routes (hostile input, the route × role authorization table), so a route
added to a URL conf reaches all of them at once."""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from typing import Any

#: Methods every view answers by itself (Django/DRF): not part of a route's contract.
IMPLICIT = {"options", "head"}


@dataclass(frozen=True)
class Route:
    """One URL pattern: its full pattern text (as Django spells it) and the methods its view handles."""

    pattern: str
    methods: tuple[str, ...]


def _function_methods(callback: Any) -> tuple[str, ...]:
    """The methods a function view accepts: Django's require_http_methods keeps the list in its closure;
    an undecorated view answers any method alike, so GET stands for it."""
    fn = callback
    while fn is not None:
        if fn.__closure__:
            allowed = inspect.getclosurevars(fn).nonlocals.get("request_method_list")
            if allowed:
                return tuple(sorted(m.lower() for m in allowed))
        fn = getattr(fn, "__wrapped__", None)
    return ("get",)


def _methods(callback: Any) -> tuple[str, ...]:
    view = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
    if view is None:
        return _function_methods(callback)
    return tuple(m for m in view.http_method_names if m not in IMPLICIT and hasattr(view, m))


def url_routes(prefix: str = "") -> list[Route]:
    """Every URL pattern whose full text starts with ``prefix``, in URL-conf order (first match wins)."""
    from django.urls import URLPattern, URLResolver, get_resolver

    routes: list[Route] = []

    def walk(patterns, head: str) -> None:
        for p in patterns:
            text = head + str(p.pattern)
            if isinstance(p, URLResolver):
                if text.startswith(prefix) or prefix.startswith(text):
                    walk(p.url_patterns, text)
            elif isinstance(p, URLPattern) and text.startswith(prefix):
                routes.append(Route(text, _methods(p.callback)))

    walk(get_resolver().url_patterns, "")
    return routes


def sample_path(pattern: str, values: dict[str, Any] | None = None) -> str:
    """A concrete path for a URL pattern (``path()`` routes and ``re_path()`` regexes alike): a parameter
    named in ``values`` takes that value, others a harmless sample (1, "x", a regex's first alternative)."""
    values = values or {}

    def group(m: re.Match) -> str:
        name, body = m.group(1), m.group(2)
        if name in values:
            return str(values[name])
        if body == r"\d+":
            return "1"
        if "|" in body:
            return body.split("|")[0]
        return "all"

    pattern = re.sub(r"\(\?P<(\w+)>([^()]*)\)", group, pattern)
    while re.search(r"\(\?:[^()]*\)\?", pattern):  # optional tails of a regex route: left out
        pattern = re.sub(r"\(\?:[^()]*\)\?", "", pattern)

    def converter(m: re.Match) -> str:
        kind, name = m.group(1), m.group(2)
        if name in values:
            return str(values[name])
        return {"int": "1", "uuid": "00000000-0000-0000-0000-000000000000"}.get(kind, "x")

    pattern = re.sub(r"<(?:(\w+):)?(\w+)>", converter, pattern)
    return "/" + pattern.replace("^", "").replace("/?$", "/").rstrip("$")
