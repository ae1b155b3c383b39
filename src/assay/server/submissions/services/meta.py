"""Validating the values of a phase's submission meta attributes (EvalAI's custom submission fields)."""

from __future__ import annotations

from typing import Any

from .errors import SubmissionError

MAX_TEXT = 5000


def _bad(message: str) -> SubmissionError:
    return SubmissionError("bad_meta_attribute", message, 400)


def normalise_meta(definitions: list[dict] | None, given: Any) -> list[dict] | None:
    """Check ``given`` against the phase's definitions; return EvalAI's stored list form.

    ``given`` may be a dict ``{name: value}`` or EvalAI's list ``[{name, value | values, ...}]``
    (what ``evalai`` CLI sends). Unknown names, missing required values, options outside the list
    and wrong types are refused with the attribute's name.
    """
    definitions = definitions or []
    if given in (None, "", [], {}):
        values: dict[str, Any] = {}
    elif isinstance(given, dict):
        values = dict(given)
    elif isinstance(given, list):
        values = {}
        for item in given:
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                raise _bad("each meta attribute needs a 'name'")
            values[item["name"]] = item.get("values", item.get("value"))
    else:
        raise _bad("meta attributes must be an object {name: value} or a list of {name, value}")
    known = {d["name"]: d for d in definitions}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise _bad(f"unknown meta attribute(s) {unknown}; this phase has {sorted(known) or 'none'}")
    out = []
    for name, definition in known.items():
        value = values.get(name)
        kind = definition.get("type")
        if value in (None, "", []):
            if definition.get("required"):
                raise _bad(f"meta attribute {name!r} is required")
            value = [] if kind == "checkbox" else None
        elif kind == "text":
            if not isinstance(value, str | int | float) or isinstance(value, bool):
                raise _bad(f"meta attribute {name!r} must be text")
            value = str(value)
            if len(value) > MAX_TEXT:
                raise _bad(f"meta attribute {name!r} is longer than {MAX_TEXT} characters")
        elif kind == "radio":
            if value not in definition.get("options", []):
                raise _bad(f"meta attribute {name!r} must be one of {definition.get('options')}")
        elif kind == "checkbox":
            value = value if isinstance(value, list) else [value]
            outside = [v for v in value if v not in definition.get("options", [])]
            if outside:
                raise _bad(f"meta attribute {name!r}: {outside} not among {definition.get('options')}")
        elif kind == "boolean":
            if isinstance(value, str) and value.strip().lower() in ("true", "false", "yes", "no", "1", "0"):
                value = value.strip().lower() in ("true", "yes", "1")
            if not isinstance(value, bool):
                raise _bad(f"meta attribute {name!r} must be true or false")
        entry = {k: definition.get(k) for k in ("name", "type", "description", "required")}
        if kind in ("radio", "checkbox"):
            entry["options"] = definition.get("options", [])
        entry["values" if kind == "checkbox" else "value"] = value
        out.append(entry)
    return out or None
