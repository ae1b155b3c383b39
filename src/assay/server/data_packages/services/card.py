"""The data card's fields, their limits, and the checks every text a user gives a package goes through."""

from __future__ import annotations

import re
from typing import Any

from .access import DataPackageRefusal

TEXT_MAX = 20_000
#: card field → its longest value (the model's CharFields' max_length; TextFields get TEXT_MAX)
FIELDS = {
    "summary": TEXT_MAX,
    "source": TEXT_MAX,
    "collection_period": 200,
    "population": TEXT_MAX,
    "labelling": TEXT_MAX,
    "licence": 200,
    "limitations": TEXT_MAX,
    "contact": 300,
}
TITLE_MAX = 200
# control characters other than tab, newline and carriage return (NUL among them) are refused
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_text(field: str, value: Any, limit: int) -> str:
    """A string within ``limit`` characters without control characters, stripped (None is empty)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise DataPackageRefusal("invalid", f"{field} must be text", 400)
    if len(value) > limit:
        raise DataPackageRefusal("too_large", f"{field} is {len(value)} characters; at most {limit}", 400)
    if _CONTROL.search(value):
        raise DataPackageRefusal("invalid", f"{field} holds a control character (NUL or similar)", 400)
    return value.strip()


def clean_card(card: Any, *, partial: bool = False) -> dict[str, str]:
    """The card's fields checked; unknown fields are refused (a typo is not silently lost)."""
    if card is None:
        card = {}
    if not isinstance(card, dict):
        raise DataPackageRefusal("invalid", "the data card must be an object of its fields", 400)
    unknown = sorted(set(card) - set(FIELDS))
    if unknown:
        raise DataPackageRefusal("invalid", f"unknown card fields: {', '.join(map(str, unknown))[:300]}", 400)
    wanted = [name for name in FIELDS if not partial or name in card]
    return {name: clean_text(name, card.get(name), FIELDS[name]) for name in wanted}
