"""Audit answers per model (issue 16): a submission made from a model starts its questionnaire draft from the
model card and from the answers its team last submitted for the same model to the same questionnaire version,
in any phase of any challenge; the team may change the draft before submitting; another team's answers never
come in, the prefill is shown to the team only, and a submission not made from a model starts empty as before.

Two audited phases (``dev``, ``test``) of the demo challenge and a second challenge share one questionnaire
(equal sha256); the submissions are the queue's own rows (``World.result``) linked to a model version as
``submit_model`` links them (``ModelSubmission``).
"""

from __future__ import annotations

import copy
import io
from typing import Any

import pytest

from assay.bundle.questionnaire import Questionnaire as QuestionnaireSchema
from tests.factories import World, client_for, import_published, verified
from tests.server.submissions.test_code_bundles import GOOD, zipped

pytestmark = pytest.mark.django_db

CODED = {"stage": "development", "requirement": "technical"}
SCHEMA: dict[str, Any] = {
    "id": "model-audit",
    "version": "1.0",
    "title": "Model questionnaire",
    "sections": [
        {
            "id": "purpose",
            "title": "Purpose",
            "questions": [
                {"id": "intended_use", "text": "What is it for?", "type": "text", "required": True, **CODED},
                {
                    "id": "output_significance",  # options the card's value is not among: never prefilled
                    "text": "Significance?",
                    "type": "single_choice",
                    "options": ["low", "high"],
                    "required": False,
                    **CODED,
                },
                {
                    "id": "risk_tier",
                    "text": "Risk tier?",
                    "type": "single_choice",
                    "options": ["low", "high"],
                    "required": True,
                    **CODED,
                },  # fmt: skip
                {"id": "model_version", "text": "Which version?", "type": "text", "required": True, **CODED},
            ],
        }
    ],
}
CARD = {"intended_use": "Screening support.", "output_significance": "Informs clinical management"}


def _questionnaire(challenge, schema: dict[str, Any] = SCHEMA):
    from assay.server.audits.models import Questionnaire

    parsed = QuestionnaireSchema.model_validate(schema)
    return Questionnaire.objects.create(
        challenge=challenge, version=parsed.version, schema=parsed.as_json(), sha256=parsed.sha256()
    )


def _audited(challenge) -> None:
    challenge.phases.update(audit={"task": "binary", "threshold": 0.5})


def _model(user, team, name: str, card: dict[str, str] = CARD):
    from assay.server.models_zoo.services import registry

    model = registry.register(
        user, team=team, name=name, kind="code_bundle", file=io.BytesIO(zipped({**GOOD, "id.txt": name})),
        file_name="model.zip", card=card, label="1.0",
    )  # fmt: skip
    return model.versions.get()


def _from(version, sub):
    from assay.server.models_zoo.models import ModelSubmission

    ModelSubmission.objects.create(version=version, submission=sub)
    return sub


def _draft(user, sub) -> dict[str, Any]:
    answer = client_for(user).get(f"/api/v1/submissions/{sub.pk}/audit/answers")
    assert answer.status_code == 200, answer.content
    return answer.json()


@pytest.fixture
def setup(world, host):
    """Team A with model ``screener`` (v1), its submissions to both audited phases, and team B with its own."""
    _audited(world.challenge)
    _questionnaire(world.challenge)
    world.team("A"), world.team("B")
    alice, bob = verified(world.users["A"]), verified(world.users["B"])
    version = _model(alice, world.teams["A"], "screener")
    return {
        "world": world,
        "alice": alice,
        "bob": bob,
        "version": version,
        "dev": _from(version, world.result("A", 0.9, 0.8, phase="dev")),
        "test": _from(version, world.result("A", 0.8, 0.7, phase="test")),
    }


def _pinned(version) -> str:
    return f"screener v1 (1.0), sha256:{version.file_sha256}"


def test_the_draft_starts_from_the_model_card_for_the_team_only(setup, host, client):
    alice, sub = setup["alice"], setup["dev"]
    draft = _draft(alice, sub)
    assert draft["state"] == "not_started"
    # the card's intended use and this version, pinned; the card's significance is no option here: dropped
    assert draft["answers"] == {"intended_use": CARD["intended_use"], "model_version": _pinned(setup["version"])}
    assert draft["prefilled_from"] == ["the model card of screener v1"]
    seen = _draft(host, sub)  # the challenge's hosts see no answers until the team saves some
    assert seen["state"] == "not_started" and seen["answers"] == {} and seen["prefilled_from"] == []
    assert client_for(setup["bob"]).get(f"/api/v1/submissions/{sub.pk}/audit/answers").status_code == 404

    client.force_login(alice)
    page = client.get(f"/submissions/{sub.pk}/audit").content.decode()
    assert 'id="prefilled-from"' in page and CARD["intended_use"] in page and _pinned(setup["version"]) in page
    client.force_login(host)
    page = client.get(f"/submissions/{sub.pk}/audit").content.decode()
    assert 'id="prefilled-from"' not in page and CARD["intended_use"] not in page


def test_answers_submitted_once_carry_over_to_the_models_other_phases_and_challenges(setup, host_team):
    from assay.server.audits.models import AnswerSet, TrailRecord
    from assay.server.audits.services import answers
    from assay.server.challenges.models import Participation

    alice, version = setup["alice"], setup["version"]
    given = {"intended_use": "Screening support, adults only.", "risk_tier": "high", "model_version": "old text"}
    answers.save_draft(alice, setup["dev"], given)
    answers.submit_answers(alice, setup["dev"])

    # the other phase: the team's answers win over the card; model_version is always this version's
    draft = _draft(alice, setup["test"])
    assert draft["answers"] == {**given, "model_version": _pinned(version)}
    assert draft["prefilled_from"][0] == "the model card of screener v1"
    assert f"for submission {setup['dev'].pk} of screener" in draft["prefilled_from"][1]
    submitted = client_for(alice).post(f"/api/v1/submissions/{setup['test'].pk}/audit/answers/submit")
    assert submitted.status_code == 200, submitted.content  # nothing saved: the prefilled draft is submitted
    assert submitted.json()["state"] == "submitted" and submitted.json()["answers"] == draft["answers"]
    record = TrailRecord.objects.filter(submission=setup["test"], kind="answered").get()
    assert record.payload["prefilled_from"] == ["model_card", "model_answers"]  # kinds: no other challenge named

    # another challenge with the same questionnaire version: carried over; the team changes one before submitting
    other = import_published(host_team)
    _audited(other)
    _questionnaire(other)
    Participation.objects.create(challenge=other, team=setup["world"].teams["A"])
    third = World(other, setup["world"].host)
    third.users, third.teams = setup["world"].users, setup["world"].teams
    sub = _from(version, third.result("A", 0.7, 0.6, phase="dev"))
    draft = _draft(alice, sub)
    assert draft["answers"] == {**given, "model_version": _pinned(version)}
    answers.save_draft(alice, sub, {**draft["answers"], "risk_tier": "low"})
    assert answers.submit_answers(alice, sub).answers["risk_tier"] == "low"
    assert AnswerSet.objects.get(submission=setup["test"]).answers["risk_tier"] == "high"  # submitted: unchanged

    # a new questionnaire version there: nothing carries over (its questions may differ), the card still does
    changed = copy.deepcopy(SCHEMA)
    changed["version"] = "2.0"
    _questionnaire(other, changed)
    later = _from(version, third.result("A", 0.7, 0.6, phase="test"))
    assert _draft(alice, later)["answers"] == {"intended_use": CARD["intended_use"], "model_version": _pinned(version)}


def test_another_teams_model_answers_never_come_in(setup):
    from assay.server.audits.services import answers

    world, alice, bob = setup["world"], setup["alice"], setup["bob"]
    secret = {"intended_use": "Team B's secret use.", "risk_tier": "low", "model_version": "B's"}
    theirs = _model(bob, world.teams["B"], "screener", card={"intended_use": "B's card."})  # the same name
    b_sub = _from(theirs, world.result("B", 0.5, 0.5, phase="dev"))
    assert _draft(bob, b_sub)["answers"]["intended_use"] == "B's card."
    answers.save_draft(bob, b_sub, secret)
    answers.submit_answers(bob, b_sub)

    draft = _draft(alice, setup["test"])
    assert draft["answers"] == {"intended_use": CARD["intended_use"], "model_version": _pinned(setup["version"])}
    assert "secret" not in str(draft) and "B's" not in str(draft)
    answers.save_draft(alice, setup["dev"], {"intended_use": "A's own.", "risk_tier": "high", "model_version": "x"})
    answers.submit_answers(alice, setup["dev"])
    b_next = _from(theirs, world.result("B", 0.6, 0.5, phase="test"))
    assert _draft(bob, b_next)["answers"]["intended_use"] == "Team B's secret use."  # its own, never A's


def test_a_submission_not_from_a_model_starts_empty(setup):
    from assay.server.audits.services import answers
    from assay.server.audits.services.access import AuditRefusal

    alice = setup["alice"]
    answers.save_draft(alice, setup["dev"], {"intended_use": "x", "risk_tier": "high", "model_version": "y"})
    answers.submit_answers(alice, setup["dev"])
    plain = setup["world"].result("A", 0.5, 0.5, phase="test")  # an upload: not made from the model
    draft = _draft(alice, plain)
    assert draft == {**draft, "state": "not_started", "answers": {}, "prefilled_from": []}
    with pytest.raises(AuditRefusal) as refused:
        answers.submit_answers(alice, plain)
    assert refused.value.code == "incomplete"


def test_the_models_results_link_its_audit_then_the_report_once_released(setup, host, client):
    from assay.server.audits.services import answers, release, reviews
    from assay.server.challenges.models import ChallengeAuditor
    from tests.factories import make_user

    alice, sub, model = setup["alice"], setup["dev"], setup["version"].model
    auditor = make_user("auditor9")
    ChallengeAuditor.objects.create(challenge=setup["world"].challenge, user=auditor, added_by=host)

    def links() -> dict[int, str]:
        rows = client_for(alice).get(f"/api/v1/models/{model.pk}/results").json()["results"]
        return {r["submission"]: r["audit_url"] for r in rows}

    assert links() == {s.pk: f"/submissions/{s.pk}/audit" for s in (setup["dev"], setup["test"])}  # not released
    answers.save_draft(alice, sub, {"intended_use": "x", "risk_tier": "high", "model_version": "y"})
    answers.submit_answers(alice, sub)
    reviews.start_review(auditor, sub)
    reviews.decide(auditor, sub, 1, "approve", "Complete.")
    release.release(host, sub)
    assert links()[sub.pk] == f"/submissions/{sub.pk}/audit/report"
    client.force_login(alice)
    html = client.get(f"/models/{model.pk}/").content.decode()
    assert f'href="/submissions/{sub.pk}/audit/report">Audit report</a>' in html
    assert f'href="/submissions/{setup["test"].pk}/audit">Audit</a>' in html
