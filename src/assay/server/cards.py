"""The checks every card's texts go through (a model's card, a data package's): one rule for both.

A card is an object of known text fields, each with its longest value; unknown fields are refused (a typo
is not silently lost), control characters other than tab, newline and carriage return (NUL among them)
are refused, and values are stripped. Each app raises its own :class:`~assay.server.refusals.Refusal`.
"""

from __future__ import annotations

import re
from typing import Any

from assay.server.refusals import Refusal

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_text(field: str, value: Any, limit: int, refusal: type[Refusal]) -> str:
    """A string within ``limit`` characters without control characters, stripped (None is empty)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise refusal("invalid", f"{field} must be text", 400)
    if len(value) > limit:
        raise refusal("too_large", f"{field} is {len(value)} characters; at most {limit}", 400)
    if _CONTROL.search(value):
        raise refusal("invalid", f"{field} holds a control character (NUL or similar)", 400)
    return value.strip()


def clean_card(
    card: Any, fields: dict[str, int], *, what: str, refusal: type[Refusal], partial: bool = False
) -> dict[str, str]:
    """``card``'s fields (``fields``: name → longest value) checked; with ``partial``, only those given."""
    if card is None:
        card = {}
    if not isinstance(card, dict):
        raise refusal("invalid", f"the {what} must be an object of its fields", 400)
    unknown = sorted(set(card) - set(fields))
    if unknown:
        raise refusal("invalid", f"unknown card fields: {', '.join(map(str, unknown))[:300]}", 400)
    return {
        name: clean_text(name, card.get(name), limit, refusal)
        for name, limit in fields.items()
        if not partial or name in card
    }
