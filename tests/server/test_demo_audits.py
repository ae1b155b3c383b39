"""The demo's audit templates: ``demo.seed`` builds them into VAR_DIR, imports them beside the two demo
challenges without either overwriting another, and names the demo user ``auditor`` auditor of both."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.factories import DEMO_BUNDLE, REPO

CONTAINER_BUNDLE = REPO / "examples" / "demo-container-challenge"
AUDIT_TEMPLATES = [str(REPO / "examples" / "audit-dr-grading"), str(REPO / "examples" / "audit-breast-cancer")]
DR_TITLE = "Assay Audit Template — Diabetic Retinopathy Grading"
BC_TITLE = "Assay Audit Template — Breast Cancer Classification"


@pytest.fixture
def demo_var(settings, media, tmp_path: Path) -> Path:
    settings.VAR_DIR = tmp_path / "var"
    return settings.VAR_DIR


def _seed(**kwargs) -> list[str]:
    from assay.server import demo

    return list(demo.seed("pw", str(DEMO_BUNDLE), str(CONTAINER_BUNDLE), site="http://testserver", **kwargs))


@pytest.mark.django_db
def test_seed_builds_imports_and_staffs_both_audit_templates(demo_var: Path, monkeypatch) -> None:
    from assay.server import demo
    from assay.server.audits.models import Questionnaire
    from assay.server.challenges.models import Challenge, ChallengeAuditor, Participation
    from assay.server.challenges.services.roles import is_auditor

    monkeypatch.setattr(demo, "engine", lambda timeout=10: None)
    lines = _seed(audit_bundle_paths=AUDIT_TEMPLATES)
    challenges = list(Challenge.objects.filter(host_team__name=demo.DEMO_HOST_TEAM).order_by("pk"))
    assert [c.title for c in challenges][2:] == [DR_TITLE, BC_TITLE]
    assert [c.is_docker_based for c in challenges] == [False, True, False, False]
    dr, bc = challenges[2:]
    auditor = ChallengeAuditor.objects.get(challenge=dr).user
    assert auditor.username == "auditor" and auditor.check_password("pw")
    assert [a.user for a in ChallengeAuditor.objects.filter(challenge=bc)] == [auditor]
    assert is_auditor(auditor, dr) and is_auditor(auditor, bc) and not is_auditor(auditor, challenges[0])
    for c in (dr, bc):
        assert c.published and c.approved_by_admin
        assert Participation.objects.filter(challenge=c, team__name=demo.DEMO_PARTICIPANT_TEAM).exists()
    phase = dr.phases.get()
    assert phase.audit["task"] == "ordinal" and phase.audit["referable_from"] == 2 and phase.case_metadata
    assert bc.phases.get().audit["task"] == "binary"
    for c in (dr, bc):  # the bundle's questionnaire is stored for the teams to answer
        assert list(Questionnaire.objects.filter(challenge=c).values_list("version", flat=True)) == ["1.0"]

    built = demo_var / "demo" / "audit-dr-grading"
    assert len(json.loads((built / "sample" / "submission.json").read_text())) == 600
    assert (built / "sample" / "answers.yaml").is_file() and (built / "audit" / "questionnaire.yaml").is_file()
    assert not [p for p in built.parent.iterdir() if p.name.startswith(".")]  # no half-built folder left
    text = "\n".join(lines)
    assert "Demo users: admin, host, participant, auditor" in text
    assert f"Demo audit challenge {DR_TITLE!r} (id {dr.pk})" in text
    assert f"Demo audit challenge {BC_TITLE!r} (id {bc.pk})" in text
    assert text.count("auditor audits it") == 2 and f"http://testserver/challenges/{dr.pk}/" in text

    again = _seed(audit_bundle_paths=AUDIT_TEMPLATES)  # idempotent: each challenge updated in place
    assert list(Challenge.objects.filter(host_team__name=demo.DEMO_HOST_TEAM).order_by("pk")) == challenges
    assert [c.title for c in Challenge.objects.order_by("pk")][-2:] == [DR_TITLE, BC_TITLE]
    assert ChallengeAuditor.objects.filter(user=auditor).count() == 2
    assert len(again) == len(lines)


@pytest.mark.django_db
def test_seed_matches_each_bundle_to_its_own_challenge_whatever_the_order(demo_var: Path, monkeypatch) -> None:
    """The breast-cancer template imported before the DR one, the container bundle only on a later run: every
    bundle finds its own challenge again (the key is file or container, and the audit task)."""
    from assay.server import demo
    from assay.server.challenges.models import Challenge

    monkeypatch.setattr(demo, "engine", lambda timeout=10: None)
    list(demo.seed("pw", str(DEMO_BUNDLE), None, audit_bundle_paths=AUDIT_TEMPLATES[::-1]))
    first = {c.title: c.pk for c in Challenge.objects.all()}
    list(demo.seed("pw", str(DEMO_BUNDLE), str(CONTAINER_BUNDLE), audit_bundle_paths=AUDIT_TEMPLATES))
    after = {c.title: c.pk for c in Challenge.objects.all()}
    assert len(after) == 4 and {t: after[t] for t in first} == first


@pytest.mark.django_db
def test_a_template_that_cannot_be_built_is_skipped_with_the_reason(demo_var: Path, tmp_path: Path) -> None:
    from assay.server import demo
    from assay.server.challenges.models import Challenge

    broken = tmp_path / "audit-broken"
    broken.mkdir()
    (broken / "build.py").write_text("def build(target):\n    raise RuntimeError('no data here')\n")
    lines = list(demo.seed("pw", str(DEMO_BUNDLE), None, audit_bundle_paths=[str(broken), str(tmp_path / "nowhere")]))
    assert f"No audit template from {broken}: building it failed (RuntimeError: no data here)" in lines
    assert f"No audit template from {tmp_path / 'nowhere'}: its build.py is missing" in lines
    assert Challenge.objects.count() == 1
    assert not (demo_var / "demo" / "audit-broken").exists()


def test_the_demo_signs_its_audit_manifests_with_a_key_it_makes_once(demo_var: Path, settings) -> None:
    from assay.evidence import signing
    from assay.server import demo

    settings.AUDIT_SIGNING_KEY = ""
    line = demo.use_demo_signing_key()
    private = demo_var / demo.AUDIT_KEY
    public = private.with_suffix(".pub.pem")
    assert settings.AUDIT_SIGNING_KEY == str(private)
    assert private.stat().st_mode & 0o777 == 0o600
    assert "assay audit verify --public-key" in line and str(public.name) in line
    document = signing.signed({"kind": "probe"}, signing.load_private_key(private))
    assert signing.verify(document, signing.load_public_key(public)) == []
    # a second start keeps the key (manifests signed before stay verifiable)
    settings.AUDIT_SIGNING_KEY = ""
    before = private.read_bytes()
    demo.use_demo_signing_key()
    assert private.read_bytes() == before


def test_an_operators_key_is_kept(demo_var: Path, tmp_path: Path, settings) -> None:
    from assay.server import demo

    settings.AUDIT_SIGNING_KEY = str(tmp_path / "operator.pem")
    assert "ASSAY_AUDIT_SIGNING_KEY" in demo.use_demo_signing_key()
    assert settings.AUDIT_SIGNING_KEY == str(tmp_path / "operator.pem")
    assert not (demo_var / demo.AUDIT_KEY).exists()
