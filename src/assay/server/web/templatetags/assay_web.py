"""Template helpers of the web pages: sanitised host HTML, score formatting, status badges."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.safestring import SafeString, mark_safe

from assay.evaluation.contract import display_metric
from assay.server.submissions.services import queue

from ..sanitize import clean_html

register = template.Library()


@register.filter(name="host_html")
def host_html(value: str | None) -> SafeString:
    """Render HTML that came from a bundle, after the allow-list sanitizer."""
    return mark_safe(clean_html(value))  # noqa: S308 — cleaned by nh3 just above


@register.filter
def score(value: Any, precision: int = 2) -> str:
    """A metric with the phase-split's decimal precision; '—' for a missing or undefined (NaN) one, as
    every face shows it (:func:`assay.evaluation.contract.display_metric`; EvalAI shows '#')."""
    if isinstance(value, str) and value != "#":
        try:
            value = float(value)
        except ValueError:
            return value
    return display_metric(value, precision)


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


@register.filter
def waiting_for(sub) -> str | None:
    """Why a waiting submission is not evaluated yet (the queue's own rule), or None."""
    return queue.waiting_for(sub)
