"""A bundle's questionnaire on import: one ``audits.Questionnaire`` row per version, published versions immutable."""

from __future__ import annotations

import io
import shutil
import zipfile
from pathlib import Path

import pytest
import yaml

from assay.bundle import read_bundle
from assay.bundle.questionnaire import Questionnaire as Schema
from assay.bundle.questionnaire import load_questionnaire, template_text
from assay.server.audits.models import Questionnaire
from assay.server.audits.services.questionnaires import current_questionnaire
from assay.server.challenges.models import Challenge
from assay.server.challenges.services.bundle_import import ImportRefused, import_bundle
from tests.factories import DEMO_BUNDLE, client_for

pytestmark = pytest.mark.django_db

TEXT = template_text("fg-ai4h-v1")


@pytest.fixture
def bundle_dir(tmp_path) -> Path:
    """The demo bundle with the FG-AI4H template as its questionnaire."""
    folder = Path(shutil.copytree(DEMO_BUNDLE, tmp_path / "bundle"))
    set_config(folder, questionnaire="audit/questionnaire.yaml")
    write_questionnaire(folder, TEXT)
    return folder


def set_config(folder: Path, **values) -> None:
    path = folder / "challenge_config.yaml"
    config = yaml.safe_load(path.read_text())
    config.update(values)
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def write_questionnaire(folder: Path, text: str) -> None:
    (folder / "audit").mkdir(exist_ok=True)
    (folder / "audit" / "questionnaire.yaml").write_text(text)


def do_import(folder: Path, host_team, **kw):
    with read_bundle(folder) as bundle:
        return import_bundle(bundle, host_team=host_team, **kw)


def test_a_new_questionnaire_version_is_stored_with_its_schema_and_hash(media, host_team, bundle_dir):
    report = do_import(bundle_dir, host_team)
    row = Questionnaire.objects.get()
    expected = load_questionnaire(TEXT)
    assert (row.challenge, row.version, row.sha256) == (report.challenge, "1.0", expected.sha256())
    assert row.schema == expected.as_json()
    row.refresh_from_db()  # read back from the database (PostgreSQL's jsonb reorders keys): the same hash
    assert Schema.model_validate(row.schema).sha256() == row.sha256
    assert current_questionnaire(report.challenge) == row
    assert f"added questionnaire 'fg-ai4h-v1' version '1.0' ({expected.sha256()[:12]})" in report.changes


def test_reimporting_the_same_version_with_the_same_content_changes_nothing(media, host_team, bundle_dir):
    challenge = do_import(bundle_dir, host_team).challenge
    # the same questions laid out differently: the canonical hash is the same
    write_questionnaire(bundle_dir, yaml.safe_dump(yaml.safe_load(TEXT), sort_keys=True))
    report = do_import(bundle_dir, host_team, challenge=challenge)
    assert Questionnaire.objects.count() == 1
    assert not any("questionnaire" in change for change in report.changes)


def test_a_changed_questionnaire_under_a_published_version_is_refused_and_nothing_is_applied(
    media, host_team, bundle_dir
):
    challenge = do_import(bundle_dir, host_team).challenge
    title = challenge.title
    write_questionnaire(bundle_dir, TEXT.replace("How many annotators", "How many readers"))
    set_config(bundle_dir, title="A renamed challenge")
    with pytest.raises(ImportRefused) as caught:
        do_import(bundle_dir, host_team, challenge=challenge)
    refusal = caught.value
    assert (refusal.code, refusal.status) == ("questionnaire_version_exists", 409)
    assert refusal.message.startswith("questionnaire version '1.0' is already published with different content")
    assert "give the changed questionnaire a new version" in refusal.message
    assert Challenge.objects.get(pk=challenge.pk).title == title  # the whole import was undone
    assert Questionnaire.objects.count() == 1


def test_a_bumped_version_is_stored_beside_the_old_one_and_becomes_current(media, host_team, bundle_dir):
    challenge = do_import(bundle_dir, host_team).challenge
    first = Questionnaire.objects.get()
    changed = TEXT.replace('version: "1.0"', 'version: "1.1"').replace("How many annotators", "How many readers")
    write_questionnaire(bundle_dir, changed)
    report = do_import(bundle_dir, host_team, challenge=challenge)
    assert sorted(Questionnaire.objects.values_list("version", flat=True)) == ["1.0", "1.1"]
    current = current_questionnaire(challenge)
    assert current.version == "1.1" and current.pk != first.pk
    assert "How many readers" in str(current.schema)
    assert any("version '1.1'" in change for change in report.changes)


def test_going_back_to_an_older_version_is_refused(media, host_team, bundle_dir):
    challenge = do_import(bundle_dir, host_team).challenge
    write_questionnaire(bundle_dir, TEXT.replace('version: "1.0"', 'version: "2.0"'))
    do_import(bundle_dir, host_team, challenge=challenge)
    write_questionnaire(bundle_dir, TEXT)
    with pytest.raises(ImportRefused) as caught:
        do_import(bundle_dir, host_team, challenge=challenge)
    assert (caught.value.code, caught.value.status) == ("questionnaire_version_outdated", 409)
    assert "'1.0' is older than the current version '2.0'" in caught.value.message
    assert current_questionnaire(challenge).version == "2.0"


def test_each_challenge_keeps_its_own_versions(media, host_team, bundle_dir):
    first = do_import(bundle_dir, host_team).challenge
    set_config(bundle_dir, title="A second challenge")
    write_questionnaire(bundle_dir, TEXT.replace("How many annotators", "How many readers"))
    second = do_import(bundle_dir, host_team).challenge
    assert first.pk != second.pk
    assert current_questionnaire(first).sha256 != current_questionnaire(second).sha256


def test_a_bundle_without_a_questionnaire_stores_none(media, host_team):
    challenge = do_import(DEMO_BUNDLE, host_team).challenge
    assert current_questionnaire(challenge) is None
    assert not Questionnaire.objects.exists()


def zipped(folder: Path) -> io.BytesIO:
    """The bundle folder as the zip a host uploads."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                zf.write(p, p.relative_to(folder).as_posix())
    buf.seek(0)
    buf.name = "bundle.zip"
    return buf


def test_the_api_answers_409_naming_the_version_and_keeps_the_stored_one(media, host, host_team, bundle_dir):
    client = client_for(host)
    r = client.post("/api/v1/challenges", {"host_team": host_team.pk, "bundle": zipped(bundle_dir)}, format="multipart")
    assert r.status_code == 201, r.content
    challenge_id = r.json()["challenge"]["id"]
    assert any("added questionnaire 'fg-ai4h-v1' version '1.0'" in c for c in r.json()["changes"])
    write_questionnaire(bundle_dir, TEXT.replace("How many annotators", "How many readers"))
    r = client.put(f"/api/v1/challenges/{challenge_id}/bundle", {"bundle": zipped(bundle_dir)}, format="multipart")
    assert r.status_code == 409, r.content
    error = r.json()["error"]
    assert error["code"] == "questionnaire_version_exists"
    assert "questionnaire version '1.0' is already published with different content" in error["message"]
    assert Questionnaire.objects.get().sha256 == load_questionnaire(TEXT).sha256()
