"""An audit of a phase that pins a data package version: the signed manifest names the package, the version
and each pinned file (path, role, SHA-256), ``assay audit verify`` checks a downloaded package file against
it, and the report (page and PDF) says "Test data: <package> v<N>", linking the package's page only for
readers who may see it (``data_packages.services.access``)."""

from __future__ import annotations

import io
import json

import pytest
from pypdf import PdfReader

from assay.evidence.manifest import check_manifest
from assay.server.audits.services import manifest as manifests
from assay.server.challenges.models import ChallengePhase
from assay.server.challenges.services.package_pins import Pin
from assay.server.data_packages.services import publishing
from assay.server.submissions.models import Submission
from tests.server.data_packages.pinning import labels_version, package

from .audit_world import client_for, released

pytestmark = pytest.mark.django_db


def pinned(audit, access: str = "on_request"):
    """The audited phase takes its annotations, inputs and case metadata from the host team's version 1, as
    the bundle import would set them (``Pin.phase_values``)."""
    pkg = package(audit.host, audit.challenge.host_team, access=access)
    version = labels_version(audit.host, pkg)
    files = {
        "annotations": version.files.get(path="labels/dev.json"),
        "test_inputs": version.files.get(path="inputs/numbers.txt"),
        "case_metadata": version.files.get(path="metadata/cases.csv"),
    }
    ChallengePhase.objects.filter(pk=audit.sub_a.phase_id).update(**Pin(version, files).phase_values())
    return version


def test_the_manifest_names_the_pinned_version_and_each_file(audited, media, settings):
    settings.AUDIT_SIGNING_KEY = ""
    sub = Submission.objects.get(pk=audited.sub_a.pk)
    assert manifests.build_manifest(sub)["data_package"] is None  # the bundle's own files: no package
    version = pinned(audited)
    built = json.loads(json.dumps(manifests.build_manifest(sub)))
    rows = {row.path: row for row in version.files.all()}
    assert built["data_package"] == {
        "name": "even-numbers",
        "version": 1,
        "files": [
            {
                "use": "annotations",
                "path": "labels/dev.json",
                "role": "labels",
                "sha256": rows["labels/dev.json"].sha256,
            },
            {
                "use": "case_metadata",
                "path": "metadata/cases.csv",
                "role": "metadata",
                "sha256": rows["metadata/cases.csv"].sha256,
            },
            {
                "use": "test_inputs",
                "path": "inputs/numbers.txt",
                "role": "inputs",
                "sha256": rows["inputs/numbers.txt"].sha256,
            },
        ],
    }
    assert built["files"]["annotations"] == rows["labels/dev.json"].sha256
    labels = media / rows["labels/dev.json"].file.name
    report = check_manifest(built, files={"labels/dev.json": labels, "annotations": labels})
    assert report.problems == []
    metadata = media / rows["metadata/cases.csv"].file.name
    assert check_manifest(built, files={"labels/dev.json": metadata}).problems == [
        f"file labels/dev.json: {metadata} differs from the one the manifest names (SHA-256)"
    ]


def test_a_later_version_does_not_enter_the_manifest_until_the_phase_pins_it(audited, settings):
    settings.AUDIT_SIGNING_KEY = ""
    version = pinned(audited)
    labels_version(audited.host, version.package, labels=b'{"public": {}}')  # version 2, not pinned
    built = manifests.build_manifest(Submission.objects.get(pk=audited.sub_a.pk))
    assert built["data_package"]["version"] == 1


def test_the_report_links_the_package_for_readers_who_may_see_it(audited):
    pinned(audited, access="on_request")
    released(audited)
    url = f"/submissions/{audited.sub_a.pk}/audit/report"
    for reader in (audited.host, audited.alice):  # the owner; a signed-in reader of an on-request package
        page = client_for(reader).get(url).content.decode()
        assert 'Test data: <a href="/data/even-numbers/">even-numbers v1</a>' in page


def test_a_reader_who_may_not_see_the_package_gets_its_name_without_a_link(audited):
    version = pinned(audited, access="hosts_only")
    released(audited)
    url = f"/submissions/{audited.sub_a.pk}/audit/report"
    page = client_for(audited.alice).get(url).content.decode()
    assert "Test data: <strong>even-numbers v1</strong>" in page and "/data/even-numbers/" not in page
    assert 'href="/data/even-numbers/"' in client_for(audited.host).get(url).content.decode()
    publishing.update_package(audited.host, version.package, {"access": "public"})
    assert 'href="/data/even-numbers/"' in client_for(audited.alice).get(url).content.decode()


def test_the_pdf_names_the_test_data_with_an_absolute_link(audited):
    pinned(audited)
    released(audited)
    response = client_for(audited.alice).get(f"/submissions/{audited.sub_a.pk}/audit/report.pdf")
    reader = PdfReader(io.BytesIO(response.content))
    text = " ".join(page.extract_text() for page in reader.pages)
    assert "Test data: even-numbers v1" in text
    links = [
        annot.get_object()["/A"]["/URI"]
        for page in reader.pages
        for annot in page.get("/Annots") or []
        if "/A" in annot.get_object()
    ]
    assert "http://testserver/data/even-numbers/" in links
