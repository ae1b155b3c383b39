"""A real EvalAI-Starters repository, folder or zip, through every face that creates a challenge.

The repository (``../shared/corpus/evalai-bundles``, read at test time) has ``evaluation_script/`` and
no ``evaluation_script.zip``. The server import, the web upload, ``/api/v1/challenges`` and EvalAI's
GitHub endpoint must all accept it, store the script zipped from the folder (the same bytes whatever
the face), and pass on the warning that says so.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from rest_framework.test import APIClient

from assay.bundle import read_bundle
from assay.server.challenges.models import Challenge
from assay.server.challenges.services.bundle_import import import_bundle
from tests import corpus

pytestmark = pytest.mark.django_db

REPOSITORIES = (
    sorted(p.name for p in corpus.BUNDLES.iterdir() if (p / "challenge_config.yaml").is_file())
    if corpus.BUNDLES.is_dir()
    else []
)


def _repo(name: str = "AGENT-Challenge") -> Path:
    return corpus.need(corpus.BUNDLES) / name


def _zipped(folder: Path) -> bytes:
    """The repository folder zipped whole, as ``assay host challenge create`` uploads a folder."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(folder).as_posix())
    return buf.getvalue()


def _expected_script_sha(folder: Path) -> str:
    with read_bundle(folder) as bundle:
        return hashlib.sha256(bundle.evaluation_script.data).hexdigest()


def _stored_script(challenge: Challenge) -> dict[str, bytes]:
    with challenge.evaluation_script.open("rb") as fh, zipfile.ZipFile(io.BytesIO(fh.read())) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def _script_files(folder: Path) -> dict[str, bytes]:
    root = folder / "evaluation_script"
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("repo", REPOSITORIES)
@pytest.mark.parametrize("form", ["folder", "zip"])
def test_server_import_of_a_repository_as_it_is(repo, form, media, host_team, tmp_path):
    folder = _repo(repo)
    source: Path = folder
    if form == "zip":
        source = tmp_path / "repo.zip"
        source.write_bytes(_zipped(folder))
    with read_bundle(source) as bundle:
        report = import_bundle(bundle, host_team=host_team)
    challenge = report.challenge
    assert "evaluation_script_folder_zipped" in {w.code for w in report.warnings}
    assert challenge.evaluation_script_sha256 == _expected_script_sha(folder)
    assert _stored_script(challenge) == _script_files(folder)
    assert challenge.phases.exclude(test_annotation_sha256="").exists()
    # the same repository again (a new read, new file dates in the zip it builds): the very same script
    with read_bundle(source) as bundle:
        import_bundle(bundle, host_team=host_team, challenge=challenge)
    assert Challenge.objects.get(pk=challenge.pk).evaluation_script_sha256 == challenge.evaluation_script_sha256


def test_web_upload_of_a_repository_zip(host, host_team, media):
    folder = _repo()
    client = Client()
    client.force_login(host)
    upload = SimpleUploadedFile("AGENT-Challenge.zip", _zipped(folder), content_type="application/zip")
    response = client.post("/host/challenges/new", {"host_team": host_team.pk, "bundle": upload})
    assert response.status_code == 302, response.content[:2000]
    challenge = Challenge.objects.get(host_team=host_team)
    assert challenge.evaluation_script_sha256 == _expected_script_sha(folder)
    shown = [str(m) for m in get_messages(response.wsgi_request)]
    assert any("is zipped in its place" in m and "challenge_config.yaml:11" in m for m in shown), shown


def test_api_upload_of_a_repository_zip(host, host_team, media):
    folder = _repo("python-spoc")
    api = APIClient()
    api.force_authenticate(host)
    bundle = SimpleUploadedFile("python-spoc.zip", _zipped(folder), content_type="application/zip")
    response = api.post("/api/v1/challenges", {"host_team": host_team.pk, "bundle": bundle}, format="multipart")
    assert response.status_code == 201, response.content[:2000]
    body = response.json()
    (warning,) = [w for w in body["warnings"] if w["code"] == "evaluation_script_folder_zipped"]
    assert (warning["file"], warning["line"], warning["key"]) == ("challenge_config.yaml", 11, "evaluation_script")
    challenge = Challenge.objects.get(pk=body["challenge"]["id"])
    assert challenge.evaluation_script_sha256 == _expected_script_sha(folder)


def test_evalai_github_endpoint_takes_a_repository_zip_without_the_script_zip(host, host_team, media):
    """A host's own CI zipping the repository as it is (no Action step that builds evaluation_script.zip)."""
    folder = _repo("URP_EvalAI_25")
    api = APIClient()
    api.force_authenticate(host)
    base = f"/api/challenges/challenge/challenge_host_team/{host_team.pk}"

    def zip_configuration() -> io.BytesIO:
        f = io.BytesIO(_zipped(folder))
        f.name = "challenge_config.zip"
        return f

    r = api.post(f"{base}/validate_challenge_config/", {"zip_configuration": zip_configuration()}, format="multipart")
    assert r.status_code == 200 and "Success" in r.json(), r.content[:2000]
    body = {"zip_configuration": zip_configuration(), "GITHUB_REPOSITORY": "HeoJaeYeon/URP_EvalAI_25"}
    r = api.post(f"{base}/create_or_update_github_challenge/", body, format="multipart")
    assert r.status_code == 201, r.content[:2000]
    challenge = Challenge.objects.get(pk=r.json()["challenge_id"])
    assert challenge.evaluation_script_sha256 == _expected_script_sha(folder)
    assert _stored_script(challenge) == _script_files(folder)
