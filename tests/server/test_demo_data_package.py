"""The demo's data package (issue 16 item 2): ``demo.seed`` publishes the DR audit template's test data as the
demo host team's on-request package and pins the DR phase to it; the demo participant starts without access,
and the documented walk-through works on the pages: the participant requests, the host approves, the
participant downloads the inputs (never the labels), and the download is in the access log. Seeding again
publishes nothing new, keeps the pin and leaves the participant's request as it is."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.test import Client

from tests.factories import DEMO_BUNDLE, REPO

DR_TEMPLATE = [str(REPO / "examples" / "audit-dr-grading")]


@pytest.fixture
def demo_var(settings, media, tmp_path: Path) -> Path:
    settings.VAR_DIR = tmp_path / "var"
    return settings.VAR_DIR


def _seed() -> list[str]:
    from assay.server import demo

    return list(demo.seed("pw", str(DEMO_BUNDLE), site="http://testserver", audit_bundle_paths=DR_TEMPLATE))


def _signed_in(username: str) -> Client:
    from django.contrib.auth import get_user_model

    client = Client()
    client.force_login(get_user_model().objects.get(username=username))
    return client


@pytest.mark.django_db
def test_the_demo_package_walk_through(demo_var: Path) -> None:
    from assay.server import demo
    from assay.server.challenges.models import Challenge
    from assay.server.data_packages.models import AccessRequest, DataPackage, DownloadRecord
    from assay.server.data_packages.services.access import has_access

    lines = "\n".join(_seed())
    package = DataPackage.objects.get(slug=demo.DEMO_DATA_PACKAGE)
    assert package.host_team.name == demo.DEMO_HOST_TEAM and package.access == "on_request"
    assert package.licence == "CC0-1.0" and package.population
    version = package.versions.get()
    files = dict(version.files.values_list("path", "role"))
    assert files == {
        "inputs/cases.csv": "inputs",
        "labels/test_annotations.json": "labels",
        "metadata/case_metadata.csv": "metadata",
    }
    phase = Challenge.objects.get(title__contains="Diabetic Retinopathy").phases.get()
    assert phase.data_package_version_id == version.pk  # the DR phase reads its labels from the package
    labels = version.files.get(role="labels")
    assert (phase.test_annotation.name, phase.test_annotation_sha256) == (labels.file.name, labels.sha256)
    assert f"Demo data package {demo.DEMO_DATA_PACKAGE!r} (on request, v1" in lines
    assert f"http://testserver/data/{demo.DEMO_DATA_PACKAGE}/" in lines
    built = demo_var / "demo" / "audit-dr-grading"
    assert "data_package:" in (built / "challenge_config.yaml").read_text()
    assert not (built / "annotations" / "test_annotations.json").exists()  # one source of the labels: the package

    from django.contrib.auth import get_user_model

    participant = get_user_model().objects.get(username="participant")
    assert not has_access(participant, package) and not AccessRequest.objects.exists()  # not yet approved

    page = f"/data/{demo.DEMO_DATA_PACKAGE}/"
    inputs = f"{page}versions/1/files/inputs/cases.csv"
    labels_url = f"{page}versions/1/files/labels/test_annotations.json"
    alice, host = _signed_in("participant"), _signed_in("host")
    assert alice.get(inputs).status_code == 403
    assert "Diabetic Retinopathy Grading</a> · Audit: version 1" in alice.get(page).content.decode()
    alice.post(f"{page}access", {"reason": "Trying the demo grader."})
    req = AccessRequest.objects.get(user=participant)
    assert req.status == "pending" and "Trying the demo grader." in host.get(page).content.decode()
    host.post(f"{page}access/{req.pk}/approve")
    answer = alice.get(inputs)
    assert answer.status_code == 200
    listed = b"".join(answer.streaming_content).decode().split()
    assert listed[0] == "case_id" and len(listed) == 601
    assert alice.get(labels_url).status_code == 404  # never the labels
    assert [(d.user, d.file.path) for d in DownloadRecord.objects.all()] == [(participant, "inputs/cases.csv")]
    assert "participant" in host.get(page).content.decode().split("Access log")[1]

    again = "\n".join(_seed())  # idempotent: the same files are version 1 already; the approval stays
    assert package.versions.count() == 1 and "(on request, v1" in again
    phase.refresh_from_db()
    assert phase.data_package_version_id == version.pk
    assert AccessRequest.objects.get(pk=req.pk).status == "approved"
    host = _signed_in("host")  # the seed set the demo passwords again, which ends their sessions
    grades = json.loads(b"".join(host.get(f"{page}versions/1/files/labels/test_annotations.json").streaming_content))
    assert len(grades) == 600  # the host team reads its labels
