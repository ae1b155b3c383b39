"""The reproducibility manifest: built from hashes, checked against a signature, the trail and the files."""

from __future__ import annotations

import hashlib
import json

import pytest

from assay.evidence import chain, manifest, signing
from tests.evidence.helpers import SETTINGS, SUMMARY, a_manifest, a_trail


def test_the_document_names_its_inputs_settings_summary_and_trail_head():
    records = a_trail()
    doc = a_manifest(records)
    assert doc["schema"] == manifest.SCHEMA
    assert doc["files"] == {
        "submission": "ab" * 32,
        "evaluation_script": "cd" * 32,
        "annotations": None,
        "case_metadata": None,
        "cases": None,
    }
    assert doc["audit"] == {"settings": SETTINGS, "bootstrap_seed": 20261202}
    assert doc["summary"] == {"sha256": hashlib.sha256(chain.canonical(SUMMARY)).hexdigest()}
    assert doc["trail"] == {"head": records[-1]["hash"], "length": 4}
    assert doc["signature"] is None
    json.dumps(doc, allow_nan=False)  # plain JSON


def test_unknown_file_names_are_refused():
    with pytest.raises(ValueError, match="unknown manifest file names: model"):
        a_manifest(a_trail(), files={"model": "00" * 32})


def test_a_signed_manifest_with_its_trail_files_and_summary_verifies(tmp_path):
    submission = tmp_path / "preds.json"
    submission.write_bytes(b'{"c001": 2}')
    records = a_trail()
    key = signing.generate_key()
    doc = signing.signed(a_manifest(records, {"submission": manifest.file_sha256(submission)}), key)
    report = manifest.check_manifest(
        doc, trail=records, public_key=key.public_key(), files={"submission": submission}, summary=SUMMARY
    )
    assert report.problems == []
    assert report.verified == [
        "signature: Ed25519, by the public key given",
        "trail: 4 records chain, and record 4 is the manifest's head",
        f"file submission: {submission} has the SHA-256 the manifest names",
        "summary: its SHA-256 is the one the manifest names",
    ]


def test_an_unsigned_manifest_is_reported_as_such_and_fails_when_a_key_is_required():
    records = a_trail()
    doc = a_manifest(records)
    assert manifest.check_manifest(doc).verified == [
        "signature: none (the manifest is not signed; no public key was given)"
    ]
    assert manifest.verify_manifest(doc, public_key=signing.generate_key().public_key()) == [
        "signature: the document is not signed"
    ]


def test_one_changed_byte_of_a_signed_manifest_fails():
    key = signing.generate_key()
    text = json.dumps(signing.signed(a_manifest(a_trail()), key))
    tampered = json.loads(text.replace('"seed": 20261202', '"seed": 20261203'))
    assert manifest.verify_manifest(tampered, public_key=key.public_key()) == [
        "signature: the signature does not match the document: it was changed after signing"
    ]


def test_a_trail_with_records_added_since_the_manifest_verifies():
    records = a_trail(6)
    doc = a_manifest(records[:4])
    report = manifest.check_manifest(doc, trail={"submission": 7, "records": records})
    assert report.problems == []
    assert report.verified[-1] == "trail: 6 records chain, and record 4 is the manifest's head (2 recorded since)"


def test_a_truncated_trail_fails():
    records = a_trail()
    assert manifest.verify_manifest(a_manifest(records), trail=records[:3]) == [
        "trail: the manifest names 4 records, the trail has 3: records were removed"
    ]


def test_a_rewritten_trail_fails_on_the_head_even_when_it_chains():
    records = a_trail()
    doc = a_manifest(records)
    forged = a_trail(3) + [chain.link(records[2]["hash"], 4, "approved", "mallory", records[3]["at"], {})]
    assert chain.broken_links(forged) == []
    assert manifest.verify_manifest(doc, trail=forged) == [
        f"trail: record 4 is not the head the manifest names ({records[3]['hash'][:12]}…)"
    ]


def test_a_tampered_trail_is_named():
    records = a_trail()
    doc = a_manifest(records)
    records[0]["payload"]["step"] = 5
    assert manifest.verify_manifest(doc, trail=records) == [
        "trail: record 1 (submitted) was changed after it was written (its hash differs)"
    ]


def test_a_changed_file_and_summary_fail(tmp_path):
    changed = tmp_path / "evaluate.py"
    changed.write_text("print(1)\n")
    doc = a_manifest(a_trail())
    assert manifest.verify_manifest(
        doc,
        files={"evaluation_script": changed, "annotations": changed, "model": changed, "submission": tmp_path / "no"},
        summary={**SUMMARY, "n": 601},
    ) == [
        f"file evaluation_script: {changed} differs from the one the manifest names (SHA-256)",
        "file annotations: the manifest records no annotations for this submission",
        "file model: the manifest names no such input (annotations, case_metadata, cases, evaluation_script, "
        "submission)",
        f"file submission: {tmp_path / 'no'} is not a readable file",
        "summary: it differs from the one the manifest names (SHA-256 of its canonical JSON)",
    ]


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ([], "the manifest is not a JSON object"),
        ({"schema": "other/1"}, "not an Assay audit manifest (schema 'other/1', expected 'assay-audit-manifest/1')"),
        (
            {"schema": manifest.SCHEMA, "files": {}},
            "the manifest lacks created_at, assay_version, submission, environment, audit, summary, trail",
        ),
    ],
)
def test_documents_that_are_not_manifests_are_named(document, problem):
    assert manifest.verify_manifest(document) == [problem]


@pytest.mark.parametrize("trail", [{"records": "x"}, 5, ["a"], {"no": []}])
def test_trails_that_are_not_record_lists_are_named(trail):
    assert manifest.verify_manifest(a_manifest(a_trail()), trail=trail) == [
        "trail: not a list of records (nor an object with 'records')"
    ]


PACKAGE = {
    "name": "dr-grading-test",
    "version": 2,
    "files": [
        {"use": "annotations", "path": "labels/test.json", "role": "labels", "sha256": "ee" * 32},
        {"use": "case_metadata", "path": "metadata/cases.csv", "role": "metadata", "sha256": "ff" * 32},
    ],
}


def with_package(records, package=PACKAGE, **files):
    head = (records[-1]["hash"], len(records))
    return manifest.document(
        submission={"id": 7},
        files={"submission": "ab" * 32, **files},
        environment={"name": "evalai-py3.9", "packages": []},
        audit_settings=SETTINGS,
        summary=SUMMARY,
        trail_head=head,
        assay_version="0.1.0",
        created_at="2026-12-02T10:01:00.000000+00:00",
        data_package=package,
    )


def test_a_pinned_data_package_is_named_with_each_file_and_its_files_verify(tmp_path):
    labels = tmp_path / "test.json"
    labels.write_bytes(b'{"c001": 2}')
    digest = manifest.file_sha256(labels)
    package = {**PACKAGE, "files": [{**PACKAGE["files"][0], "sha256": digest}, PACKAGE["files"][1]]}
    key = signing.generate_key()
    doc = json.loads(json.dumps(signing.signed(with_package(a_trail(), package, annotations=digest), key)))
    assert doc["data_package"] == package
    report = manifest.check_manifest(
        doc, public_key=key.public_key(), files={"labels/test.json": labels, "annotations": labels}
    )
    assert report.problems == []
    assert f"file labels/test.json: {labels} has the SHA-256 the manifest names" in report.verified
    labels.write_bytes(b'{"c001": 3}')
    assert manifest.verify_manifest(doc, files={"labels/test.json": labels}) == [
        f"file labels/test.json: {labels} differs from the one the manifest names (SHA-256)"
    ]
    doc["data_package"]["version"] = 1  # the pin is signed like the rest
    assert manifest.verify_manifest(doc, public_key=key.public_key()) == [
        "signature: the signature does not match the document: it was changed after signing"
    ]


def test_a_manifest_made_before_data_packages_still_verifies():
    """Manifests downloaded before the key existed have no ``data_package``: signature and files still hold."""
    records = a_trail()
    old = a_manifest(records)
    del old["data_package"]
    key = signing.generate_key()
    signed = json.loads(json.dumps(signing.signed(old, key)))
    report = manifest.check_manifest(signed, trail=records, public_key=key.public_key())
    assert report.problems == [] and len(report.verified) == 2
    assert manifest.package_files(signed) == {}


@pytest.mark.parametrize(
    ("package", "problem"),
    [
        ("dr", "not an object"),
        ({"version": 1, "files": []}, "no name"),
        ({"name": "dr", "version": 0, "files": []}, "its version is not a number from 1"),
        ({"name": "dr", "version": True, "files": []}, "its version is not a number from 1"),
        ({"name": "dr", "version": 1, "files": "labels/x"}, "its files are not a list"),
        ({"name": "dr", "version": 1, "files": [{"path": "labels/x"}]}, "a file is not {use, path, role, sha256}"),
        (
            {"name": "dr", "version": 1, "files": [{"use": "x", "path": "p", "role": "labels", "sha256": "0"}]},
            "a file has an unknown use or role ('x', 'labels')",
        ),
    ],
)
def test_a_malformed_data_package_is_named(package, problem):
    doc = a_manifest(a_trail())
    doc["data_package"] = package
    assert manifest.verify_manifest(doc) == [f"the manifest's data_package: {problem}"]


def test_the_builder_refuses_a_malformed_data_package():
    with pytest.raises(ValueError, match="manifest data_package: its version is not a number from 1"):
        with_package(a_trail(), {**PACKAGE, "version": 0})
