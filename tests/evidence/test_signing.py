"""Ed25519 signatures of evidence documents: the right key and unchanged content verify, nothing else."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from assay.evidence import signing

DOCUMENT = {"schema": "x/1", "value": 0.81, "names": ["é", "b"], "nested": {"b": 1, "a": [1, 2]}, "signature": None}


def test_a_signed_document_verifies_whatever_its_key_order_and_spacing():
    key = signing.generate_key()
    signed = signing.signed(DOCUMENT, key)
    assert signed["signature"]["algorithm"] == "ed25519"
    assert len(base64.b64decode(signed["signature"]["public_key"])) == 32
    reordered = json.loads(json.dumps(dict(reversed(list(signed.items()))), indent=3))
    assert signing.verify(reordered) == []
    assert signing.verify(reordered, signing.load_public_key(signing.public_pem(key))) == []


def test_one_changed_byte_fails():
    signed = signing.signed(DOCUMENT, signing.generate_key())
    text = json.dumps(signed).replace("0.81", "0.82")
    assert signing.verify(json.loads(text)) == [
        "the signature does not match the document: it was changed after signing"
    ]


def test_a_changed_signature_byte_fails():
    signed = signing.signed(DOCUMENT, signing.generate_key())
    raw = bytearray(base64.b64decode(signed["signature"]["signature"]))
    raw[0] ^= 1
    signed["signature"]["signature"] = base64.b64encode(bytes(raw)).decode()
    assert signing.verify(signed) == ["the signature does not match the document: it was changed after signing"]


def test_the_wrong_key_fails_even_when_the_document_was_re_signed():
    operator, mallory = signing.generate_key(), signing.generate_key()
    forged = signing.signed({**DOCUMENT, "value": 0.99}, mallory)
    assert signing.verify(forged) == []  # consistent in itself ...
    assert signing.verify(forged, operator.public_key()) == [  # ... but not the operator's
        "the document was signed with a different key than the one given"
    ]


def test_a_swapped_embedded_key_fails():
    signed = signing.signed(DOCUMENT, signing.generate_key())
    signed["signature"]["public_key"] = signing.public_key_b64(signing.generate_key())
    assert signing.verify(signed) == ["the signature does not match the document: it was changed after signing"]


@pytest.mark.parametrize(
    ("block", "problem"),
    [
        (None, "the document is not signed"),
        ("abc", "the signature is not a {algorithm, public_key, signature} object"),
        ({"algorithm": "rsa"}, "the signature's algorithm is 'rsa', not 'ed25519'"),
        ({"algorithm": "ed25519", "signature": "AA=="}, "the signature's public_key is missing or not a string"),
        ({"algorithm": "ed25519", "public_key": "%%", "signature": "AA=="}, "the signature's public_key is not base64"),
        (
            {"algorithm": "ed25519", "public_key": "AAAA", "signature": "AA=="},
            "the signature's public_key is 3 bytes, an Ed25519 one is 32",
        ),
    ],
)
def test_malformed_signature_blocks_are_named(block, problem):
    assert signing.verify({**DOCUMENT, "signature": block}) == [problem]


def test_keys_load_from_pem_and_files(tmp_path):
    key = signing.generate_key()
    path = tmp_path / "key.pem"
    path.write_bytes(signing.private_pem(key))
    assert signing.public_key_b64(signing.load_private_key(path)) == signing.public_key_b64(key)
    assert signing.public_key_b64(signing.load_public_key(path)) == signing.public_key_b64(key)  # its public half
    assert signing.public_key_b64(signing.load_public_key(signing.public_pem(key).decode())) == signing.public_key_b64(
        key
    )


def test_keys_that_are_not_ed25519_pem_are_refused():
    with pytest.raises(signing.SigningKeyError, match="not an unencrypted PEM private key"):
        signing.load_private_key(b"hello")
    with pytest.raises(signing.SigningKeyError, match="not a PEM public key"):
        signing.load_public_key(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    ec_key = ec.generate_private_key(ec.SECP256R1())
    pem = ec_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(signing.SigningKeyError, match="an Ed25519 key is needed"):
        signing.load_private_key(pem)
    with pytest.raises(signing.SigningKeyError, match="an Ed25519 key is needed"):
        signing.load_public_key(
            ec_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
