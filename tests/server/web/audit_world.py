"""An audited submission with real figures, for the audit pages and the report: the audit workflow's people
and objects (tests/server/audits/conftest.py) plus a summary computed by ``assay.audit.summarise`` from
seeded per-case rows, with a small subgroup that is suppressed."""

from __future__ import annotations

import random

from django.test import Client

from tests.server.audits.conftest import COMPLETE, SCHEMA, Audit

SETTINGS = {
    "task": "binary",
    "threshold": 0.5,
    "subgroups": ["sex"],
    "min_group_size": 10,
    "bootstrap": {"resamples": 50, "seed": 20261202, "level": 0.95},
}


def case_rows(n: int = 80, seed: int = 7) -> list[dict]:
    """Binary cases: the probability leans to the reference; 3 cases of sex "X" (below min_group_size)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        reference = i % 3 == 0
        probability = min(1.0, max(0.0, (0.7 if reference else 0.3) + rng.uniform(-0.35, 0.35)))
        sex = "X" if i < 3 else ("F" if i % 2 else "M")
        rows.append(
            {"case_id": f"c{i:03d}", "reference": int(reference), "probability": round(probability, 3), "sex": sex}
        )
    return rows


def summarise_into(sub, settings: dict = SETTINGS, rows: list[dict] | None = None):
    from assay.audit.summary import summarise
    from assay.server.audits.models import AuditSummary
    from assay.server.challenges.models import ChallengePhase

    ChallengePhase.objects.filter(pk=sub.phase_id).update(audit=settings)
    sub.phase.refresh_from_db()
    document = summarise(settings, rows or case_rows())
    return AuditSummary.objects.create(
        submission=sub, document=document, settings_sha256="1" * 64, cases_sha256="2" * 64
    )


def client_for(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def approved(a: Audit, ratings: dict | None = None):
    """Team A's answers submitted, reviewed (rated) and approved by the first auditor."""
    from assay.server.audits.services import answers, reviews

    answers.save_draft(a.alice, a.sub_a, {**COMPLETE, "notes": "Known limitation: few cases over 80."})
    answers.submit_answers(a.alice, a.sub_a)
    reviews.start_review(a.auditor, a.sub_a)
    reviews.rate(
        a.auditor,
        a.sub_a,
        1,
        ratings
        or {
            "intended_use": {"rating": 4, "comment": "Clear purpose."},
            "risk_tier": {"rating": 2, "comment": "Justify the tier."},
        },
        "Sound overall.",
    )
    reviews.decide(a.auditor, a.sub_a, 1, "approve", "Sound overall.")


def released(a: Audit):
    from assay.server.audits.services import release

    approved(a)
    release.release(a.host, a.sub_a)


__all__ = ["COMPLETE", "SCHEMA", "SETTINGS", "approved", "client_for", "released", "summarise_into"]
