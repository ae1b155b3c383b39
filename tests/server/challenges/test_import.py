"""Importing bundles into the database, and updating challenges in place."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
import yaml

from assay.bundle import BundleError, read_bundle
from assay.server.challenges.models import (
    Challenge,
    ChallengePhase,
    ChallengePhaseSplit,
    DatasetSplit,
    Leaderboard,
)
from assay.server.challenges.services.bundle_import import ImportRefused, import_bundle
from assay.server.leaderboards.models import LeaderboardEntry
from assay.server.submissions.models import Submission
from assay.server.teams.models import ParticipantTeam
from tests.factories import DEMO_BUNDLE, stored_files
from tests.server.bundles import zip_folder

pytestmark = pytest.mark.django_db


def do_import(path, host_team, **kw):
    with read_bundle(path) as bundle:
        return import_bundle(bundle, host_team=host_team, **kw)


@pytest.fixture
def demo_copy(tmp_path) -> Path:
    return Path(shutil.copytree(DEMO_BUNDLE, tmp_path / "bundle"))


def edit_config(folder: Path, change) -> None:
    path = folder / "challenge_config.yaml"
    config = yaml.safe_load(path.read_text())
    change(config)
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def counts() -> dict[str, int]:
    return {
        m.__name__: m.objects.count()
        for m in (Challenge, ChallengePhase, DatasetSplit, Leaderboard, ChallengePhaseSplit, Submission)
    }


def snapshot(media: Path) -> tuple:
    rows = list(ChallengePhase.objects.order_by("pk").values_list("pk", "codename", "name", "test_annotation_sha256"))
    return counts(), rows, stored_files(media)


def add_result(phase_codename: str, split_codename: str, user) -> Submission:
    """A finished submission with one leaderboard entry (behaviour belongs to later issues)."""
    phase = ChallengePhase.objects.get(codename=phase_codename)
    team, _ = ParticipantTeam.objects.get_or_create(name="team a", defaults={"created_by": user})
    sub = Submission.objects.create(phase=phase, participant_team=team, created_by=user, status="finished")
    ps = ChallengePhaseSplit.objects.get(phase=phase, dataset_split__codename=split_codename)
    LeaderboardEntry.objects.create(
        phase_split=ps, submission=sub, participant_team=team, result={"Accuracy": 0.5, "F1": 0.4}
    )
    return sub


def test_import_demo_folder_creates_every_row_and_file(media, host_team, host):
    report = do_import(DEMO_BUNDLE, host_team, user=host)
    c = report.challenge
    assert report.created
    assert c.title.startswith("Assay Demo")
    assert c.slug == f"assay-demo-spot-the-even-numbers-{c.pk}"
    assert "<h2>Spot the even numbers</h2>" in c.description
    assert c.tags == ["demo", "classification"] and c.domain == "TAB"
    assert [(p.rank, p.amount) for p in c.prizes.all()] == [(1, "100USD")]
    assert [s.name for s in c.sponsors.all()] == ["Assay"]
    phases = {p.codename: p for p in c.phases.all()}
    assert set(phases) == {"dev", "test"}
    dev = phases["dev"]
    assert dev.max_submissions_per_day == 50 and dev.allowed_submission_file_types == ".json"
    assert dev.submission_meta_attributes[0]["name"] == "uses_modulo"
    assert phases["test"].max_submissions_per_month == 100  # copied from max_submissions, as EvalAI does
    assert phases["test"].max_concurrent_submissions_allowed == 3
    annotation = media / dev.test_annotation.name
    expected = (DEMO_BUNDLE / "annotations" / "dev_annotations.json").read_bytes()
    assert annotation.read_bytes() == expected
    assert dev.test_annotation_sha256 == hashlib.sha256(expected).hexdigest()
    assert dev.test_annotation_size == len(expected)
    assert (media / c.evaluation_script.name).read_bytes()[:2] == b"PK"
    assert c.evaluation_script_sha256 in c.evaluation_script.name
    assert (media / c.image.name).read_bytes().startswith(b"\x89PNG")
    splits = ChallengePhaseSplit.objects.filter(phase__challenge=c)
    assert splits.count() == 3
    dev_public = splits.get(phase=dev)
    assert dev_public.show_execution_time is True  # honoured from YAML (EvalAI drops it)
    assert dev_public.leaderboard_decimal_precision == 3
    assert splits.get(phase=phases["test"], dataset_split__codename="private").visibility == 1
    assert Leaderboard.objects.get(challenge=c).schema["default_order_by"] == "Accuracy"


def test_zip_and_folder_import_alike(media, host_team, tmp_path):
    zipped = zip_folder(DEMO_BUNDLE, tmp_path / "demo.zip")
    a = do_import(DEMO_BUNDLE, host_team).challenge
    b = do_import(zipped, host_team).challenge
    assert a.pk != b.pk
    assert a.evaluation_script_sha256 == b.evaluation_script_sha256
    assert [p.test_annotation_sha256 for p in a.phases.all()] == [p.test_annotation_sha256 for p in b.phases.all()]


def test_reimport_unchanged_is_a_no_op(media, host_team):
    first = do_import(DEMO_BUNDLE, host_team).challenge
    before = snapshot(media)
    report = do_import(DEMO_BUNDLE, host_team, challenge=first)
    assert not report.created and report.changes == []
    assert snapshot(media) == before


def test_reimport_adds_phases_splits_leaderboards(media, host_team, demo_copy):
    challenge = do_import(demo_copy, host_team).challenge

    def grow(config):
        config["leaderboard"].append({"id": 2, "schema": {"labels": ["Loss"], "default_order_by": "Loss"}})
        config["dataset_splits"].append({"id": 3, "name": "Hard", "codename": "hard"})
        phase = dict(config["challenge_phases"][0], id=3, codename="extra", name="Extra")
        config["challenge_phases"].append(phase)
        config["challenge_phase_splits"] += [
            {"challenge_phase_id": 3, "leaderboard_id": 2, "dataset_split_id": 3, "visibility": 3,
             "leaderboard_decimal_precision": 2, "is_leaderboard_order_descending": False},
            {"challenge_phase_id": 1, "leaderboard_id": 1, "dataset_split_id": 3, "visibility": 2,
             "leaderboard_decimal_precision": 2, "is_leaderboard_order_descending": True},
        ]  # fmt: skip
        config["title"] = "Renamed demo"

    edit_config(demo_copy, grow)
    report = do_import(demo_copy, host_team, challenge=challenge)
    assert not report.created
    assert "added phase 3" in report.changes and "added dataset split 3" in report.changes
    assert "added leaderboard 2" in report.changes
    challenge.refresh_from_db()
    assert challenge.title == "Renamed demo"
    assert challenge.phases.count() == 3 and challenge.dataset_splits.count() == 3
    assert ChallengePhaseSplit.objects.filter(phase__challenge=challenge).count() == 5
    assert Challenge.objects.count() == 1


def test_changed_annotation_replaces_file_and_hash(media, host_team, demo_copy):
    challenge = do_import(demo_copy, host_team).challenge
    old = ChallengePhase.objects.get(codename="dev").test_annotation_sha256
    (demo_copy / "annotations" / "dev_annotations.json").write_text('{"public": {}, "private": {}}')
    report = do_import(demo_copy, host_team, challenge=challenge)
    dev = ChallengePhase.objects.get(codename="dev")
    assert dev.test_annotation_sha256 != old
    assert any(c.startswith("updated phase 1") and "test_annotation" in c for c in report.changes)


def test_removing_unused_phase_is_allowed(media, host_team, demo_copy):
    challenge = do_import(demo_copy, host_team).challenge

    def drop_test(config):
        config["challenge_phases"] = [p for p in config["challenge_phases"] if p["codename"] != "test"]
        config["challenge_phase_splits"] = [s for s in config["challenge_phase_splits"] if s["challenge_phase_id"] != 2]

    edit_config(demo_copy, drop_test)
    report = do_import(demo_copy, host_team, challenge=challenge)
    assert "removed phase 2" in report.changes
    assert list(challenge.phases.values_list("codename", flat=True)) == ["dev"]


def _drop_phase_dev(config):
    config["challenge_phases"] = [p for p in config["challenge_phases"] if p["codename"] != "dev"]
    config["challenge_phase_splits"] = [s for s in config["challenge_phase_splits"] if s["challenge_phase_id"] != 1]


def _rename_dev(config):
    config["challenge_phases"][0]["codename"] = "development"


def _drop_public_split(config):
    config["dataset_splits"] = [s for s in config["dataset_splits"] if s["codename"] != "public"]
    config["challenge_phase_splits"] = [s for s in config["challenge_phase_splits"] if s["dataset_split_id"] != 1]
    config["challenge_phases"] = [p for p in config["challenge_phases"] if p["codename"] != "dev"]


def _rename_public_split(config):
    config["dataset_splits"][0]["codename"] = "pub"


def _drop_label(config):
    config["leaderboard"][0]["schema"]["labels"] = ["Accuracy"]
    config["leaderboard"][0]["schema"]["metadata"].pop("F1")


def _drop_dev_phase_split(config):
    config["challenge_phase_splits"] = [s for s in config["challenge_phase_splits"] if s["challenge_phase_id"] != 1]


def _new_file_and_removal(config):
    """A refused update that would also have written a new annotation file."""
    config["challenge_phases"][1]["test_annotation_file"] = "annotations/new.json"
    _drop_phase_dev(config)


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (_drop_phase_dev, "phase_has_submissions"),
        (_rename_dev, "phase_has_submissions"),
        (_drop_public_split, "phase_has_submissions"),
        (_rename_public_split, "split_has_results"),
        (_drop_label, "leaderboard_has_results"),
        (_drop_dev_phase_split, "phase_split_has_results"),
        (_new_file_and_removal, "phase_has_submissions"),
    ],
)
def test_destructive_update_is_refused_and_changes_nothing(media, host_team, host, demo_copy, change, code):
    challenge = do_import(demo_copy, host_team).challenge
    add_result("dev", "public", host)
    (demo_copy / "annotations" / "new.json").write_text("{}")
    before = snapshot(media)
    edit_config(demo_copy, change)
    with pytest.raises(ImportRefused) as err:
        do_import(demo_copy, host_team, challenge=challenge)
    assert err.value.code == code
    assert err.value.message  # a sentence a host can act on
    assert snapshot(media) == before


def test_config_only_bundle_cannot_be_imported(media, host_team):
    with pytest.raises(ImportRefused, match="whole bundle"):
        do_import(DEMO_BUNDLE / "challenge_config.yaml", host_team)
    assert stored_files(media) == set() and Challenge.objects.count() == 0


def test_other_host_teams_challenge_is_refused(media, host_team, django_user_model):
    from assay.server.teams.services import create_host_team

    challenge = do_import(DEMO_BUNDLE, host_team).challenge
    from tests.factories import verified

    other = create_host_team("Others", verified(django_user_model.objects.create_user("o", "o@example.org", "pw")))
    with pytest.raises(ImportRefused) as err:
        do_import(DEMO_BUNDLE, other, challenge=challenge)
    assert err.value.code == "not_your_challenge"


def test_github_repository_finds_the_challenge_to_update(media, host_team, demo_copy):
    edit_config(demo_copy, lambda c: c.update(github_repository="org/repo"))
    first = do_import(demo_copy, host_team).challenge
    edit_config(demo_copy, lambda c: c.update(title="Second title"))
    report = do_import(demo_copy, host_team)
    assert report.challenge.pk == first.pk and not report.created
    assert Challenge.objects.get().title == "Second title"


def test_failure_mid_import_removes_files_it_wrote(media, host_team, monkeypatch):
    from assay.server.challenges.services import bundle_import

    def boom(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(bundle_import, "_sync", boom)
    with pytest.raises(RuntimeError):
        do_import(DEMO_BUNDLE, host_team)
    assert stored_files(media) == set()
    assert Challenge.objects.count() == 0


def test_invalid_bundle_never_reaches_the_database(media, host_team, demo_copy):
    edit_config(demo_copy, lambda c: c["leaderboard"][0]["schema"].update(default_order_by="nope"))
    with pytest.raises(BundleError) as err:
        do_import(demo_copy, host_team)
    assert err.value.errors[0].code == "incorrect_default_order_by"
    assert counts()["Challenge"] == 0 and stored_files(media) == set()


def test_api_refusal_of_a_broken_yaml_names_file_and_line_in_plain_words(media, host, host_team):
    """The /api/v1 message is the bundle reader's own summary: no `None` key, no PyYAML wording."""
    import io
    import zipfile

    from django.core.files.uploadedfile import SimpleUploadedFile
    from rest_framework.test import APIClient

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("challenge_config.yaml", 'title: "never closed\ndescription: x\n')
    api = APIClient()
    api.force_authenticate(host)
    bundle = SimpleUploadedFile("broken.zip", buffer.getvalue(), content_type="application/zip")
    response = api.post("/api/v1/challenges", {"host_team": host_team.pk, "bundle": bundle}, format="multipart")
    assert response.status_code == 400, response.content[:500]
    error = response.json()["error"]
    assert error["code"] == "invalid_bundle", error
    assert error["message"].startswith("the bundle is invalid: challenge_config.yaml:1: "), error["message"]
    assert "None" not in error["message"] and "never closed" in error["message"], error["message"]
