"""The data card's fields, their limits, and the checks every text a user gives a package goes through."""

from __future__ import annotations

from typing import Any

from assay.server import cards

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


def clean_text(field: str, value: Any, limit: int) -> str:
    """A string within ``limit`` characters without control characters, stripped (None is empty)."""
    return cards.clean_text(field, value, limit, DataPackageRefusal)


def clean_card(card: Any, *, partial: bool = False) -> dict[str, str]:
    """The card's fields checked; unknown fields are refused (a typo is not silently lost)."""
    return cards.clean_card(card, FIELDS, what="data card", refusal=DataPackageRefusal, partial=partial)
