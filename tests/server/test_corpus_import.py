"""Real public EvalAI configs, completed into full bundles, imported and re-imported."""

from __future__ import annotations

import shutil

import pytest
import yaml

from assay.bundle import BundleError, read_bundle
from assay.server.challenges.models import Challenge, ChallengePhase, ChallengePhaseSplit
from assay.server.challenges.services.bundle_import import import_bundle

from .bundles import complete_bundle, zip_folder
from .conftest import CORPUS

pytestmark = pytest.mark.django_db

# Configs EvalAI itself would refuse; the bundle tests pin their errors.
BROKEN = {"samuki__EvalAI-Starters.yaml", "liushasha2021__EvalAI-CoG.yaml"}
CONFIGS = sorted(p.name for p in CORPUS.glob("*.yaml")) if CORPUS.is_dir() else []


@pytest.mark.skipif(not CONFIGS, reason=f"corpus not found at {CORPUS}")
@pytest.mark.parametrize("name", [n for n in CONFIGS if n not in BROKEN])
def test_corpus_config_imports_and_reimports(name, media, host_team, tmp_path):
    folder = complete_bundle(CORPUS / name, tmp_path / "bundle")
    bundle_zip = zip_folder(folder, tmp_path / "bundle.zip")
    with read_bundle(bundle_zip) as bundle:
        report = import_bundle(bundle, host_team=host_team)
        config = bundle.config
    challenge = report.challenge
    assert challenge.phases.count() == len(config.challenge_phases)
    assert challenge.dataset_splits.count() == len(config.dataset_splits)
    assert ChallengePhaseSplit.objects.filter(phase__challenge=challenge).count() == len(config.challenge_phase_splits)
    for phase in config.challenge_phases:
        row = ChallengePhase.objects.get(challenge=challenge, config_id=phase.id)
        assert row.codename == phase.codename
        if phase.test_annotation_file:
            assert len(row.test_annotation_sha256) == 64

    # A changed version: a new phase and a new dataset split with its leaderboard, a new title.
    raw = yaml.safe_load((folder / "challenge_config.yaml").read_bytes())
    raw["title"] = "Changed " + str(raw["title"])[:80]
    new_phase = dict(raw["challenge_phases"][0])
    new_phase.update(id=9999, codename="assay-added-phase", name="Added phase")
    raw["challenge_phases"].append(new_phase)
    raw.setdefault("dataset_splits", []).append({"id": 9999, "name": "Added split", "codename": "assay-added"})
    raw.setdefault("challenge_phase_splits", []).append(
        {"challenge_phase_id": 9999, "leaderboard_id": raw["leaderboard"][0]["id"], "dataset_split_id": 9999,
         "visibility": 3, "leaderboard_decimal_precision": 2, "is_leaderboard_order_descending": True}
    )  # fmt: skip
    (folder / "challenge_config.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    with read_bundle(folder) as bundle:
        update = import_bundle(bundle, host_team=host_team, challenge=challenge)
    assert not update.created and update.challenge.pk == challenge.pk
    assert "added phase 9999" in update.changes and "added dataset split 9999" in update.changes
    assert Challenge.objects.get(pk=challenge.pk).title.startswith("Changed ")
    assert Challenge.objects.count() == 1


@pytest.mark.skipif(not CONFIGS, reason=f"corpus not found at {CORPUS}")
@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_corpus_configs_stay_out_of_the_database(name, media, host_team, tmp_path):
    folder = complete_bundle(CORPUS / name, tmp_path / "bundle")
    with pytest.raises(BundleError):
        read_bundle(folder)
    shutil.rmtree(folder)
    assert Challenge.objects.count() == 0
