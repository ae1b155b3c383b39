"""Log lines as JSON (``ASSAY_LOG_FORMAT=json``), one object per line, or human text (the default, for
``make demo``).

A JSON line holds ``timestamp`` (UTC, ISO 8601), ``level``, ``logger``, ``message`` and ``request_id``;
``event``, ``submission_id``, ``challenge_id`` and ``phase_id`` when the line is about a submission
(:mod:`.receivers`), ``attempt`` on a worker's lines about one job, ``exception`` with a traceback. A line
about a submission names the request that
*submitted* it as ``request_id``, so one id finds the submission's whole journey; the request serving the
line (a worker's claim, say) is then ``via_request_id``. Settings build the config before Django is set up,
so nothing here reads settings or models.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from .context import current_request_id

#: Fields a log call may pass in ``extra`` (strings or numbers), copied when present.
FIELDS = ("event", "submission_id", "attempt", "challenge_id", "phase_id")
FORMATS = ("text", "json")


class JsonFormatter(logging.Formatter):
    """One JSON object per record; newlines in messages and tracebacks stay inside the object."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds")
        doc: dict[str, Any] = {
            "timestamp": stamp.replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        serving = current_request_id()
        about = getattr(record, "request_id", None)  # a submission's own, passed by the line's writer
        doc["request_id"] = about or serving or None
        if about and serving and about != serving:
            doc["via_request_id"] = serving
        for key in FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                doc[key] = value
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            doc["stack"] = self.formatStack(record.stack_info)
        return json.dumps(doc, default=str, ensure_ascii=False)


def logging_settings(environ: Mapping[str, str]) -> dict[str, Any]:
    """Django's ``LOGGING``: everything to standard error at ``ASSAY_LOG_LEVEL`` (INFO), as text or JSON."""
    form = (environ.get("ASSAY_LOG_FORMAT") or "text").strip().lower()
    if form not in FORMATS:
        raise ImproperlyConfigured(f"ASSAY_LOG_FORMAT: {form!r} is neither 'text' nor 'json'")
    level = (environ.get("ASSAY_LOG_LEVEL") or "INFO").strip().upper()
    config: dict[str, Any] = {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"console": {"class": "logging.StreamHandler"}},
        "root": {"handlers": ["console"], "level": level},
    }
    if form == "json":
        config["formatters"] = {"json": {"()": f"{__name__}.JsonFormatter"}}
        config["handlers"]["console"]["formatter"] = "json"
        # runserver's access lines (`assay serve`) have a text handler of their own: JSON too, once
        config["loggers"] = {"django.server": {"handlers": ["console"], "level": "INFO", "propagate": False}}
    return config
