"""The audit workflow's people and objects: an audited phase of the demo challenge, a questionnaire, two
teams with one submission each, a named auditor and a second one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.factories import make_user, verified

CODED = {"stage": "development", "requirement": "technical"}
#: A questionnaire as ``assay.bundle.questionnaire`` stores it (``audits.Questionnaire.schema``).
SCHEMA: dict[str, Any] = {
    "id": "test-v1",
    "version": "1.0",
    "title": "Test questionnaire",
    "sections": [
        {
            "id": "purpose",
            "title": "Purpose",
            "questions": [
                {"id": "intended_use", "text": "What is the model for?", "type": "text", "required": True, **CODED},
                {
                    "id": "risk_tier",
                    "text": "Risk tier?",
                    "type": "single_choice",
                    "options": ["low", "high"],
                    "required": True,
                    **CODED,
                },
                {"id": "notes", "text": "Anything else?", "type": "text", "required": False, **CODED},
            ],
        }
    ],
}
COMPLETE = {"intended_use": "Grading retinal photographs.", "risk_tier": "high"}


@dataclass
class Audit:
    challenge: Any
    host: Any
    auditor: Any
    second_auditor: Any
    alice: Any  # team A's member
    bob: Any  # team B's member
    sub_a: Any
    sub_b: Any
    questionnaire: Any


@pytest.fixture
def audit(world, host) -> Audit:
    from assay.server.audits.models import Questionnaire
    from assay.server.challenges.models import ChallengeAuditor, ChallengePhase

    ChallengePhase.objects.filter(challenge=world.challenge, codename="dev").update(
        audit={"task": "binary", "threshold": 0.5}
    )
    sub_a = world.result("A", 0.9, 0.8)
    sub_b = world.result("B", 0.8, 0.7)
    auditor, second = make_user("auditor1"), make_user("auditor2")
    for user in (auditor, second):
        ChallengeAuditor.objects.create(challenge=world.challenge, user=user, added_by=host)
    questionnaire = Questionnaire.objects.create(
        challenge=world.challenge, version="1.0", schema=SCHEMA, sha256="0" * 64
    )
    alice, bob = verified(world.users["A"]), verified(world.users["B"])  # API tokens need a verified address
    return Audit(world.challenge, host, auditor, second, alice, bob, sub_a, sub_b, questionnaire)
