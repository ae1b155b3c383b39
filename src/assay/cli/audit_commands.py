"""``assay audit ...``: check an audit's evidence (manifest, trail, signature, files) and make a signing key.

Why offline: an auditor or a regulator checks what a platform published without trusting, or reaching,
the platform. ``verify`` needs the manifest JSON, optionally the exported trail, the operator's public
key and the input files; it exits 0 when everything given holds and 1 naming each thing that does not.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(
    help="Health-AI audits: verify a manifest and its evidence trail; make a signing key.", no_args_is_help=True
)

MAX_JSON_BYTES = 64 * 1024 * 1024  # a trail of a busy submission is a few hundred KB; refuse anything absurd


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def _json(path: Path, what: str) -> Any:
    try:
        if path.stat().st_size > MAX_JSON_BYTES:
            raise _fail(f"{what} {path} is larger than {MAX_JSON_BYTES // (1024 * 1024)} MB")
        return json.loads(path.read_bytes())
    except OSError as exc:
        raise _fail(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _fail(f"{what} {path} is not JSON: {exc}") from None


def _files(pairs: list[str]) -> dict[str, Path]:
    from assay.evidence.manifest import FILE_NAMES

    files: dict[str, Path] = {}
    for pair in pairs:
        name, sep, path = pair.partition("=")
        if not sep or not name or not path:
            raise _fail(
                f"--file takes NAME=PATH, got {pair!r} (names: {', '.join(FILE_NAMES)}, or a pinned data package"
                " file's path such as labels/test.json)"
            )
        files[name] = Path(path)
    return files


@app.command("verify")
def verify(
    manifest: Annotated[Path, typer.Argument(help="The manifest JSON (downloaded from the audit report).")],
    trail: Annotated[Path | None, typer.Option("--trail", help="The exported evidence trail JSON.")] = None,
    public_key: Annotated[
        Path | None,
        typer.Option("--public-key", help="The operator's Ed25519 public key (PEM); the signer must be it."),
    ] = None,
    file: Annotated[
        list[str] | None,
        typer.Option(
            "--file",
            help="NAME=PATH: check an input's SHA-256 (submission, evaluation_script, annotations, case_metadata, "
            "cases, or a pinned data package file by its path in the package, e.g. labels/test.json); repeat.",
        ),
    ] = None,
    summary: Annotated[Path | None, typer.Option("--summary", help="The audit summary JSON it names.")] = None,
) -> None:
    """Check a manifest's signature, the trail's hash chain and head, and the given files; exit 1 on any problem."""
    from assay.evidence import signing
    from assay.evidence.manifest import check_manifest

    document = _json(manifest, "manifest")
    records = _json(trail, "trail") if trail is not None else None
    summary_document = _json(summary, "summary") if summary is not None else None
    key = None
    if public_key is not None:
        try:
            key = signing.load_public_key(public_key)
        except OSError as exc:
            raise _fail(f"cannot read public key {public_key}: {exc.strerror or exc}") from None
        except signing.SigningKeyError as exc:
            raise _fail(f"public key {public_key}: {exc}") from None
    report = check_manifest(document, trail=records, public_key=key, files=_files(file or []), summary=summary_document)
    for line in report.verified:
        typer.echo(f"verified: {line}")
    for problem in report.problems:
        typer.echo(f"FAILED: {problem}")
    if report.problems:
        count = len(report.problems)
        typer.echo(f"{manifest}: {count} problem{'s' if count > 1 else ''}; the evidence does not hold", err=True)
        raise typer.Exit(1)
    typer.echo(f"verified: {manifest} holds")


@app.command("keygen")
def keygen(
    out: Annotated[Path, typer.Option("--out", help="Where to write the private key (PEM, mode 0600).")],
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Make an Ed25519 signing key for ASSAY_AUDIT_SIGNING_KEY; prints the public key to publish."""
    from assay.evidence import signing

    if out.exists() and not force:
        raise _fail(f"{out} exists; pass --force to overwrite it")
    key = signing.generate_key()
    try:
        if force and out.exists():
            out.unlink()
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(signing.private_pem(key))
    except OSError as exc:
        raise _fail(f"cannot write {out}: {exc.strerror or exc}") from None
    typer.echo(f"wrote the private key to {out} (mode 0600); set ASSAY_AUDIT_SIGNING_KEY={out.resolve()}")
    typer.echo("public key (publish it; verifiers pass it with --public-key):")
    typer.echo(signing.public_pem(key).decode().rstrip())
