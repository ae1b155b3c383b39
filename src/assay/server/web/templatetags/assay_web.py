"""Template helpers of the web pages: sanitised host HTML, score formatting, status badges."""

from __future__ import annotations

import math
from typing import Any

from django import template
from django.utils.safestring import SafeString, mark_safe

from ..sanitize import clean_html

register = template.Library()


@register.filter(name="host_html")
def host_html(value: str | None) -> SafeString:
    """Render HTML that came from a bundle, after the allow-list sanitizer."""
    return mark_safe(clean_html(value))  # noqa: S308 — cleaned by nh3 just above


@register.filter
def score(value: Any, precision: int = 2) -> str:
    """A metric with the phase-split's decimal precision; '—' for a missing one (EvalAI shows '#')."""
    if value is None or value == "#":
        return "—"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "∞" if number > 0 else "−∞"
    return f"{number:.{max(0, min(int(precision), 20))}f}"


@register.filter
def get_item(mapping: Any, key: Any) -> Any:
    if isinstance(mapping, dict):
        return mapping.get(key)
    return None


STATUS_CLASSES = {
    "finished": "ok",
    "partially_evaluated": "ok",
    "failed": "bad",
    "cancelled": "muted",
    "running": "busy",
    "queued": "busy",
    "submitted": "wait",
    "submitting": "wait",
    "resuming": "wait",
}


@register.filter
def status_class(status: str) -> str:
    return STATUS_CLASSES.get(status, "muted")
