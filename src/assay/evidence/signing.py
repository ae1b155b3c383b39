"""Ed25519 signatures over evidence documents (manifests), made with the operator's key, checked by anyone.

A signed document carries ``"signature": {"algorithm": "ed25519", "public_key": <base64 of the 32 raw
bytes>, "signature": <base64>}``; the signature covers ``chain.canonical`` of the document without its
``signature`` key, so key order and whitespace in the JSON file do not matter and one changed byte of
content does. The embedded public key says who signed; a verifier who holds the operator's published key
passes it to :func:`verify` so that a document re-signed with another key is refused.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .chain import canonical

ALGORITHM = "ed25519"


class SigningKeyError(ValueError):
    """A key file that is not an Ed25519 key in PEM form."""


def generate_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_pem(key: Ed25519PrivateKey) -> bytes:
    """The private key as unencrypted PKCS#8 PEM (the file ``ASSAY_AUDIT_SIGNING_KEY`` names)."""
    pkcs8, no_password = serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, pkcs8, no_password)


def public_pem(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def public_key_b64(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """The 32 raw bytes of the public key, base64: the form a signature block names its signer by."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return base64.b64encode(public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode()


def load_private_key(data: bytes | str | Path) -> Ed25519PrivateKey:
    """An Ed25519 private key from PEM bytes or a PEM file's path; :class:`SigningKeyError` otherwise."""
    pem = Path(data).read_bytes() if isinstance(data, Path) else data.encode() if isinstance(data, str) else data
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise SigningKeyError(f"not an unencrypted PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"an Ed25519 key is needed, this is a {type(key).__name__}")
    return key


def load_public_key(data: bytes | str | Path) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM (public or private: a private key's public half) or a path to one."""
    pem = Path(data).read_bytes() if isinstance(data, Path) else data.encode() if isinstance(data, str) else data
    if b"PRIVATE KEY" in pem:
        return load_private_key(pem).public_key()
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as exc:
        raise SigningKeyError(f"not a PEM public key: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError(f"an Ed25519 key is needed, this is a {type(key).__name__}")
    return key


def _signed_bytes(document: Mapping[str, Any]) -> bytes:
    return canonical({name: value for name, value in document.items() if name != "signature"})


def sign(document: Mapping[str, Any], key: Ed25519PrivateKey) -> dict[str, str]:
    """The signature block for ``document`` (any ``signature`` key in it is left out of what is signed)."""
    return {
        "algorithm": ALGORITHM,
        "public_key": public_key_b64(key),
        "signature": base64.b64encode(key.sign(_signed_bytes(document))).decode(),
    }


def signed(document: Mapping[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    """``document`` with its signature block under ``signature``."""
    return {**{k: v for k, v in document.items() if k != "signature"}, "signature": sign(document, key)}


def _b64(value: Any, what: str, size: int) -> bytes:
    if not isinstance(value, str):
        raise ValueError(f"the signature's {what} is missing or not a string")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"the signature's {what} is not base64") from None
    if len(raw) != size:
        raise ValueError(f"the signature's {what} is {len(raw)} bytes, an Ed25519 one is {size}")
    return raw


def verify(document: Mapping[str, Any], public_key: Ed25519PublicKey | None = None) -> list[str]:
    """Why ``document``'s signature does not hold, one sentence each; empty when it does.

    Without ``public_key`` the document's embedded key is trusted (the signature then proves only that the
    content is unchanged since someone signed it); with it, the signer must be that key.
    """
    block = document.get("signature")
    if block is None:
        return ["the document is not signed"]
    if not isinstance(block, Mapping):
        return ["the signature is not a {algorithm, public_key, signature} object"]
    if block.get("algorithm") != ALGORITHM:
        return [f"the signature's algorithm is {block.get('algorithm')!r}, not {ALGORITHM!r}"]
    try:
        embedded = _b64(block.get("public_key"), "public_key", 32)
        signature = _b64(block.get("signature"), "signature", 64)
    except ValueError as exc:
        return [str(exc)]
    if public_key is not None and embedded != base64.b64decode(public_key_b64(public_key)):
        return ["the document was signed with a different key than the one given"]
    try:
        Ed25519PublicKey.from_public_bytes(embedded).verify(signature, _signed_bytes(document))
    except InvalidSignature:
        return ["the signature does not match the document: it was changed after signing"]
    except ValueError as exc:  # canonical() refuses NaN and the like: nothing that was signed
        return [f"the document cannot be read as signed JSON: {exc}"]
    return []
