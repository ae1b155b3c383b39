"""The model card: its fields, their limits, and how an audit questionnaire is prefilled from it.

The intended-use fields carry the ``fg-ai4h-v1`` questionnaire's question ids, so the mapping is by name:

================================  ========================================================
card field                        questionnaire question (``fg-ai4h-v1``)
================================  ========================================================
``intended_use``                  ``purpose.intended_use``
``output_significance``           ``purpose.output_significance`` (one of its options)
``data_sources``                  ``purpose.data_sources`` (the training data summary)
version ``label`` + digest        ``engineering.model_version``
``licence``                       ``engineering.licence``: not prefilled (the card names the
                                  licence; the question asks its kind)
``summary``, ``contact``          no question
================================  ========================================================
"""

from __future__ import annotations

from typing import Any

from assay.server import cards

from ..models import ModelVersion
from .access import ModelRefusal

#: The questionnaire's options for ``output_significance`` (or blank).
OUTPUT_SIGNIFICANCE = (
    "Informs clinical management",
    "Drives clinical management",
    "Treats or diagnoses",
    "Not used for patient care (research only)",
)
TEXT_MAX = 20_000
#: card field → its longest value
FIELDS = {
    "summary": TEXT_MAX,
    "intended_use": TEXT_MAX,
    "output_significance": 100,
    "data_sources": TEXT_MAX,
    "licence": 200,
    "contact": 300,
}
#: the questionnaire question each card field answers (see the module's table)
QUESTIONNAIRE = {
    "intended_use": "intended_use",
    "output_significance": "output_significance",
    "data_sources": "data_sources",
}


def clean_text(field: str, value: Any, limit: int) -> str:
    """A card or name value: a string within ``limit`` characters, without control characters."""
    return cards.clean_text(field, value, limit, ModelRefusal)


def clean_card(card: Any, *, partial: bool = False) -> dict[str, str]:
    """The card's fields checked (unknown fields refused, so a typo is not silently lost)."""
    out = cards.clean_card(card, FIELDS, what="model card", refusal=ModelRefusal, partial=partial)
    if out.get("output_significance") and out["output_significance"] not in OUTPUT_SIGNIFICANCE:
        raise ModelRefusal(
            "invalid", f"output_significance must be one of: {'; '.join(OUTPUT_SIGNIFICANCE)} (or empty)", 400
        )
    return out


def questionnaire_prefill(version: ModelVersion) -> dict[str, str]:
    """Answers of the ``fg-ai4h-v1`` questionnaire the card gives for a submission of ``version``."""
    model = version.model
    answers = {question: getattr(model, field) for field, question in QUESTIONNAIRE.items() if getattr(model, field)}
    pinned = version.image_digest or f"sha256:{version.file_sha256}"
    answers["model_version"] = f"{model.name} v{version.number}" + (f" ({version.label})" if version.label else "")
    answers["model_version"] += f", {pinned}"
    return answers
