"""Real public EvalAI configs, completed into full bundles, imported and re-imported."""

from __future__ import annotations

import shutil

import pytest
import yaml

from assay.bundle import BundleError, read_bundle
from assay.server.challenges.models import Challenge, ChallengePhase, ChallengePhaseSplit
from assay.server.challenges.services.bundle_import import import_bundle
from tests.factories import CORPUS
from tests.server.bundles import complete_bundle, zip_folder

pytestmark = pytest.mark.django_db

# Configs EvalAI itself would refuse; the bundle tests pin their errors.
BROKEN = {"samuki__EvalAI-Starters.yaml", "Bhaavya__analogyeval.yaml"}
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
    pairings = {ps.key for ps in config.challenge_phase_splits}  # a pairing listed twice is one leaderboard
    assert ChallengePhaseSplit.objects.filter(phase__challenge=challenge).count() == len(pairings)
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


@pytest.mark.skipif(not CONFIGS, reason=f"corpus not found at {CORPUS}")
def test_duplicate_phase_split_keeps_the_first_entry(media, host_team, tmp_path):
    """liushasha2021's config pairs phase 1 / leaderboard 1 / split 1 twice; EvalAI's zip upload runs it."""
    folder = complete_bundle(CORPUS / "liushasha2021__EvalAI-CoG.yaml", tmp_path / "bundle")
    raw = yaml.safe_load((folder / "challenge_config.yaml").read_bytes())
    raw["challenge_phase_splits"][1]["visibility"] = 3  # the second copy differs: its setting is the one lost
    (folder / "challenge_config.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    with read_bundle(folder) as bundle:
        (warning,) = [w for w in bundle.warnings if w.code == "duplicate_phase_split"]
        assert "visibility is ignored" in warning.message
        report = import_bundle(bundle, host_team=host_team)
    assert "duplicate_phase_split" in {w.code for w in report.warnings}
    (row,) = ChallengePhaseSplit.objects.filter(
        phase__challenge=report.challenge, phase__config_id=1, leaderboard__config_id=1, dataset_split__config_id=1
    )
    assert row.visibility == 1
    with read_bundle(folder) as bundle:  # importing again changes nothing
        again = import_bundle(bundle, host_team=host_team, challenge=report.challenge)
    assert not [c for c in again.changes if "phase-split" in c]
