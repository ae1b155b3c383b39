"""The reproducibility manifest of an audited submission, and the checks ``assay audit verify`` runs on it.

The manifest names everything a result was computed from (the submission's file or image digest, the
evaluation script, annotations and hidden case metadata by SHA-256; the Assay version and the evaluation
environment's packages; the audit settings with the bootstrap seed), the data package version the
phase's test data came from when it pins one (each pinned file's path, role and SHA-256), the summary it
produced (SHA-256 of its canonical JSON) and the evidence trail's head at the time. Signed with the operator's key
(:mod:`.signing`), it lets anyone holding the files, the trail and the operator's public key check that
nothing was changed since, without a server.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import chain, signing

SCHEMA = "assay-audit-manifest/1"
#: The inputs a manifest may name by SHA-256 (``files``), the names ``--file NAME=PATH`` takes.
FILE_NAMES = ("submission", "evaluation_script", "annotations", "case_metadata", "cases")
REQUIRED = ("schema", "created_at", "assay_version", "submission", "files", "environment", "audit", "summary", "trail")
#: What a pinned package file is used as (the bundle's ``data_package`` keys) and the roles a package file has.
PACKAGE_USES = ("annotations", "test_inputs", "case_metadata")
PACKAGE_ROLES = ("inputs", "labels", "metadata")


def sha256_of(value: Any) -> str:
    """SHA-256 (hex) of a JSON document's canonical form: how a summary is named in the manifest."""
    return hashlib.sha256(chain.canonical(value)).hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def document(
    *,
    submission: Mapping[str, Any],
    files: Mapping[str, str | None],
    environment: Mapping[str, Any],
    audit_settings: Mapping[str, Any] | None,
    summary: Mapping[str, Any] | None,
    trail_head: tuple[str, int],
    assay_version: str,
    created_at: str,
    data_package: Mapping[str, Any] | None = None,
    recorded: bool | None = None,
) -> dict[str, Any]:
    """An unsigned manifest (``"signature": None``); :func:`signing.signed` adds the signature.

    ``submission``: ids and names (``id``, ``challenge``, ``phase``, ``team``, ``image_digest``);
    ``files``: name (:data:`FILE_NAMES`) → SHA-256, None for an input the submission does not have;
    ``environment``: ``{"name", "packages": ["dist==version", ...]}`` or an image's name and digest;
    ``data_package``: ``{"name", "version", "files": [{"use", "path", "role", "sha256"}, ...]}`` when the
    phase pins a package version, else None. Manifests made before it was added have no such key; they
    verify as they did. ``recorded`` (``scored_against.recorded``): True when the annotations and the
    package version named are what the evaluation was handed, recorded when its worker claimed it; False
    for a submission evaluated before Assay kept that (they are the phase's as the manifest was made).
    """
    unknown = set(files) - set(FILE_NAMES)
    if unknown:
        raise ValueError(f"unknown manifest file names: {', '.join(sorted(unknown))}")
    settings = dict(audit_settings) if audit_settings is not None else None
    bootstrap = (settings or {}).get("bootstrap") or {}
    head, length = trail_head
    return {
        "schema": SCHEMA,
        "created_at": created_at,
        "assay_version": assay_version,
        "submission": dict(submission),
        "files": {name: files.get(name) for name in FILE_NAMES},
        "environment": dict(environment),
        "audit": {
            "settings": settings,
            "bootstrap_seed": bootstrap.get("seed") if isinstance(bootstrap, Mapping) else None,
        },
        "summary": None if summary is None else {"sha256": sha256_of(summary)},
        "trail": {"head": head, "length": length},
        "data_package": None if data_package is None else _package(data_package),
        "scored_against": None if recorded is None else {"recorded": bool(recorded)},
        "signature": None,
    }


def _package(value: Mapping[str, Any]) -> dict[str, Any]:
    package = {
        "name": value["name"],
        "version": value["version"],
        "files": [{name: item[name] for name in ("use", "path", "role", "sha256")} for item in value["files"]],
    }
    problem = _package_problem(package)
    if problem:
        raise ValueError(f"manifest data_package: {problem}")
    return package


def _package_problem(package: Any) -> str | None:
    """Why a manifest's ``data_package`` is not {name, version, files: [{use, path, role, sha256}]}."""
    if not isinstance(package, Mapping):
        return "not an object"
    if not isinstance(package.get("name"), str) or not package["name"]:
        return "no name"
    if type(package.get("version")) is not int or package["version"] < 1:
        return "its version is not a number from 1"
    files = package.get("files")
    if not isinstance(files, Sequence) or isinstance(files, str | bytes):
        return "its files are not a list"
    for item in files:
        if not isinstance(item, Mapping) or not all(isinstance(item.get(k), str) for k in ("use", "path", "sha256")):
            return "a file is not {use, path, role, sha256}"
        if item["use"] not in PACKAGE_USES or item.get("role") not in PACKAGE_ROLES:
            return f"a file has an unknown use or role ({item.get('use')!r}, {item.get('role')!r})"
    return None


def package_files(manifest: Mapping[str, Any]) -> dict[str, str]:
    """A manifest's pinned package files, path → SHA-256 (empty without a package, or for an old manifest)."""
    package = manifest.get("data_package")
    if not isinstance(package, Mapping) or not isinstance(package.get("files"), Sequence):
        return {}
    return {item["path"]: item["sha256"] for item in package["files"] if isinstance(item, Mapping)}


@dataclass
class Report:
    """What held (``verified``, one line each) and what did not (``problems``)."""

    verified: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _records(trail: Sequence[Mapping[str, Any]] | Mapping[str, Any]) -> Sequence[Mapping[str, Any]] | None:
    """A trail export: the list of records, or an object holding it under ``records``."""
    if isinstance(trail, Mapping):
        trail = trail.get("records")  # type: ignore[assignment]
    if isinstance(trail, Sequence) and not isinstance(trail, str | bytes):
        if all(isinstance(record, Mapping) for record in trail):
            return trail  # type: ignore[return-value]
    return None


def _check_structure(manifest: Mapping[str, Any], report: Report) -> bool:
    if manifest.get("schema") != SCHEMA:
        report.problems.append(f"not an Assay audit manifest (schema {manifest.get('schema')!r}, expected {SCHEMA!r})")
        return False
    missing = [name for name in REQUIRED if name not in manifest]
    if missing:
        report.problems.append(f"the manifest lacks {', '.join(missing)}")
        return False
    trail = manifest["trail"]
    if not (isinstance(trail, Mapping) and isinstance(trail.get("head"), str) and type(trail.get("length")) is int):
        report.problems.append("the manifest's trail is not {head, length}")
        return False
    if not isinstance(manifest["files"], Mapping):
        report.problems.append("the manifest's files is not an object")
        return False
    package = manifest.get("data_package")  # absent from manifests made before it was added
    if package is not None and (problem := _package_problem(package)):
        report.problems.append(f"the manifest's data_package: {problem}")
        return False
    return True


def _check_signature(manifest: Mapping[str, Any], public_key: Any, report: Report) -> None:
    block = manifest.get("signature")
    if block is None and public_key is None:
        report.verified.append("signature: none (the manifest is not signed; no public key was given)")
        return
    problems = signing.verify(manifest, public_key)
    if problems:
        report.problems.extend(f"signature: {problem}" for problem in problems)
    elif public_key is not None:
        report.verified.append("signature: Ed25519, by the public key given")
    else:
        report.verified.append(
            f"signature: Ed25519, by the key embedded in the manifest ({block['public_key']}); "
            "pass --public-key to check it is the operator's"
        )


def _check_trail(manifest: Mapping[str, Any], trail: Any, report: Report) -> None:
    records = _records(trail)
    if records is None:
        report.problems.append("trail: not a list of records (nor an object with 'records')")
        return
    broken = chain.broken_links(records)
    if broken:
        report.problems.extend(f"trail: {problem}" for problem in broken)
        return
    head, length = manifest["trail"]["head"], manifest["trail"]["length"]
    if length == 0:
        if head != chain.GENESIS:
            report.problems.append("trail: the manifest names an empty trail with a head other than the genesis hash")
        else:
            report.verified.append(f"trail: {len(records)} records chain; the manifest was made before the first")
        return
    if len(records) < length:
        report.problems.append(
            f"trail: the manifest names {length} records, the trail has {len(records)}: records were removed"
        )
    elif records[length - 1]["hash"] != head:
        report.problems.append(f"trail: record {length} is not the head the manifest names ({head[:12]}…)")
    else:
        later = len(records) - length
        report.verified.append(
            f"trail: {len(records)} records chain, and record {length} is the manifest's head"
            + (f" ({later} recorded since)" if later else "")
        )


def _check_files(manifest: Mapping[str, Any], files: Mapping[str, Path], report: Report) -> None:
    """Each given file against the SHA-256 the manifest names: an input by name (:data:`FILE_NAMES`), or a
    pinned data package file by its path in the package (``labels/test.json``)."""
    named = {**package_files(manifest), **manifest["files"]}
    for name, path in files.items():
        expected = named.get(name)
        if name not in named:
            report.problems.append(f"file {name}: the manifest names no such input ({', '.join(sorted(named))})")
        elif expected is None:
            report.problems.append(f"file {name}: the manifest records no {name} for this submission")
        elif not Path(path).is_file():
            report.problems.append(f"file {name}: {path} is not a readable file")
        elif file_sha256(Path(path)) != expected:
            report.problems.append(f"file {name}: {path} differs from the one the manifest names (SHA-256)")
        else:
            report.verified.append(f"file {name}: {path} has the SHA-256 the manifest names")


def _check_summary(manifest: Mapping[str, Any], summary: Any, report: Report) -> None:
    named = manifest["summary"]
    if not isinstance(named, Mapping) or not isinstance(named.get("sha256"), str):
        report.problems.append("summary: the manifest names no summary")
        return
    try:
        actual = sha256_of(summary)
    except ValueError as exc:
        report.problems.append(f"summary: not JSON that can be hashed ({exc})")
        return
    if actual != named["sha256"]:
        report.problems.append("summary: it differs from the one the manifest names (SHA-256 of its canonical JSON)")
    else:
        report.verified.append("summary: its SHA-256 is the one the manifest names")


def check_manifest(
    manifest: Any,
    *,
    trail: Any = None,
    public_key: Any = None,
    files: Mapping[str, Path] | None = None,
    summary: Any = None,
) -> Report:
    """Every check that applies: the signature (with ``public_key``, that key must have made it), the
    trail's chain and that it contains the manifest's head, each given file's SHA-256 and the summary's."""
    report = Report()
    if not isinstance(manifest, Mapping):
        report.problems.append("the manifest is not a JSON object")
        return report
    if not _check_structure(manifest, report):
        return report
    _check_signature(manifest, public_key, report)
    if trail is not None:
        _check_trail(manifest, trail, report)
    if files:
        _check_files(manifest, files, report)
    if summary is not None:
        _check_summary(manifest, summary, report)
    return report


def verify_manifest(
    manifest: Any,
    *,
    trail: Any = None,
    public_key: Any = None,
    files: Mapping[str, Path] | None = None,
    summary: Any = None,
) -> list[str]:
    """Why the manifest (and the trail, files, summary given with it) does not hold; empty when it does."""
    return check_manifest(manifest, trail=trail, public_key=public_key, files=files, summary=summary).problems
