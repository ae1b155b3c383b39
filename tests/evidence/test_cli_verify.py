"""``assay audit verify`` and ``assay audit keygen``: exit 0 with what held, 1 naming each problem, 2 on bad use."""

from __future__ import annotations

import json
import stat
import subprocess
import sys

from typer.testing import CliRunner

from assay.cli.main import app
from assay.evidence import manifest, signing
from tests.evidence.helpers import SUMMARY, a_manifest, a_trail

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, ["audit", *map(str, args)])


def keygen(tmp_path):
    result = run("keygen", "--out", tmp_path / "key.pem")
    assert result.exit_code == 0, result.output
    public = tmp_path / "public.pem"
    public.write_text(result.output[result.output.index("-----BEGIN PUBLIC KEY-----") :])
    return signing.load_private_key(tmp_path / "key.pem"), public


def evidence(tmp_path, key):
    script = tmp_path / "evaluate.py"
    script.write_bytes(b"def evaluate(): pass\n")
    records = a_trail()
    doc = signing.signed(a_manifest(records, {"evaluation_script": manifest.file_sha256(script)}), key)
    (tmp_path / "manifest.json").write_text(json.dumps(doc, indent=2))
    (tmp_path / "trail.json").write_text(json.dumps({"submission": 7, "records": records}, indent=2))
    (tmp_path / "summary.json").write_text(json.dumps(SUMMARY))
    return tmp_path / "manifest.json", tmp_path / "trail.json", script


def test_keygen_writes_a_private_key_only_its_owner_reads(tmp_path):
    key, public = keygen(tmp_path)
    assert stat.S_IMODE((tmp_path / "key.pem").stat().st_mode) == 0o600
    assert signing.public_key_b64(signing.load_public_key(public)) == signing.public_key_b64(key)
    again = run("keygen", "--out", tmp_path / "key.pem")
    assert again.exit_code == 2
    assert "key.pem exists; pass --force to overwrite it" in again.output
    assert run("keygen", "--out", tmp_path / "key.pem", "--force").exit_code == 0
    assert signing.public_key_b64(signing.load_private_key(tmp_path / "key.pem")) != signing.public_key_b64(key)


def test_verify_accepts_intact_evidence(tmp_path):
    key, public = keygen(tmp_path)
    doc, trail, script = evidence(tmp_path, key)
    result = run(
        "verify", doc, "--trail", trail, "--public-key", public, "--file", f"evaluation_script={script}",
        "--summary", tmp_path / "summary.json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "verified: signature: Ed25519, by the public key given",
        "verified: trail: 4 records chain, and record 4 is the manifest's head",
        f"verified: file evaluation_script: {script} has the SHA-256 the manifest names",
        "verified: summary: its SHA-256 is the one the manifest names",
        f"verified: {doc} holds",
    ]


def test_verify_rejects_a_one_byte_change_to_the_manifest_or_the_trail(tmp_path):
    key, public = keygen(tmp_path)
    doc, trail, _ = evidence(tmp_path, key)
    doc.write_text(doc.read_text().replace('"seed": 20261202', '"seed": 20261203'))
    trail.write_text(trail.read_text().replace('"step": 3', '"step": 4', 1))
    result = run("verify", doc, "--trail", trail, "--public-key", public)
    assert result.exit_code == 1
    assert "FAILED: signature: the signature does not match the document: it was changed after signing" in result.output
    assert "FAILED: trail: record 3 (cases_stored) was changed after it was written (its hash differs)" in result.output
    assert f"{doc}: 2 problems; the evidence does not hold" in result.output


def test_verify_rejects_another_key_and_a_changed_file(tmp_path):
    key, _ = keygen(tmp_path)
    doc, _, script = evidence(tmp_path, key)
    other = tmp_path / "other.pem"
    other.write_bytes(signing.public_pem(signing.generate_key()))
    script.write_bytes(b"def evaluate(): return 1\n")
    result = run("verify", doc, "--public-key", other, "--file", f"evaluation_script={script}")
    assert result.exit_code == 1
    assert result.output.splitlines()[:2] == [
        "FAILED: signature: the document was signed with a different key than the one given",
        f"FAILED: file evaluation_script: {script} differs from the one the manifest names (SHA-256)",
    ]


def test_bad_use_exits_2_with_the_reason(tmp_path):
    key, _ = keygen(tmp_path)
    doc, _, _ = evidence(tmp_path, key)
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "bad.pem").write_text("not a key")
    cases = [
        (["verify", tmp_path / "missing.json"], "cannot read manifest"),
        (["verify", tmp_path / "bad.json"], "is not JSON"),
        (["verify", doc, "--trail", tmp_path / "bad.json"], "trail"),
        (["verify", doc, "--public-key", tmp_path / "bad.pem"], "not a PEM public key"),
        (["verify", doc, "--file", "nopath"], "--file takes NAME=PATH"),
    ]
    for args, message in cases:
        result = run(*args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output, (args, result.output)


def test_the_installed_command_exits_1_on_a_problem(tmp_path):
    doc = a_manifest(a_trail())
    (tmp_path / "m.json").write_text(json.dumps(doc))
    (tmp_path / "t.json").write_text(json.dumps(a_trail(3)))
    run_ = subprocess.run(
        [sys.executable, "-m", "assay.cli.main", "audit", "verify", str(tmp_path / "m.json"), "--trail",
         str(tmp_path / "t.json")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run_.returncode == 1, run_.stdout + run_.stderr
    assert "FAILED: trail: the manifest names 4 records, the trail has 3: records were removed" in run_.stdout


def test_verify_checks_a_pinned_data_package_file_by_its_path(tmp_path):
    key, public = keygen(tmp_path)
    labels = tmp_path / "test.json"
    labels.write_bytes(b'{"c001": 2}')
    doc = a_manifest(a_trail())
    doc["data_package"] = {
        "name": "dr-grading-test",
        "version": 1,
        "files": [
            {"use": "annotations", "path": "labels/test.json", "role": "labels", "sha256": manifest.file_sha256(labels)}
        ],
    }
    (tmp_path / "manifest.json").write_text(json.dumps(signing.signed(doc, key)))
    result = run("verify", tmp_path / "manifest.json", "--public-key", public, "--file", f"labels/test.json={labels}")
    assert result.exit_code == 0, result.output
    assert f"verified: file labels/test.json: {labels} has the SHA-256 the manifest names" in result.output
    labels.write_bytes(b'{"c001": 3}')
    result = run("verify", tmp_path / "manifest.json", "--file", f"labels/test.json={labels}")
    assert result.exit_code == 1
    assert f"FAILED: file labels/test.json: {labels} differs from the one the manifest names (SHA-256)" in result.output
