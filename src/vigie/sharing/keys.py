"""This instance's Ed25519 signing key, canonical JSON, and signing and verifying a batch.

The private key lies in ``data_dir/sharing/signing.key`` (PKCS#8 PEM, mode 0600), made on first
use; partners are given the public key as base64 of its 32 raw bytes (`public_key_b64`). A key's
id is the first 16 hex digits of the SHA-256 of those bytes.

A signed document is ``{"batch": "<canonical JSON text>", "signature": "<base64>", "key_id": ...}``:
the signature covers the exact bytes of the batch text, so the verifier checks the bytes it
received before it parses them (no re-serialisation can change what was signed).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from vigie.errors import InvalidInput
from vigie.sharing import SharingError


def key_path(settings) -> Path:
    return Path(settings.data_dir) / "sharing" / "signing.key"


def signing_key(settings) -> Ed25519PrivateKey:
    """The instance's private key, generated once (0600) and loaded after."""
    path = key_path(settings)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        pem = Ed25519PrivateKey.generate().private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption())
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first: use that one
            pass
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(pem)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidInput(f"{path} is not an Ed25519 private key")
    return key


def raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_b64(settings) -> str:
    """The public key to give partners: base64 of its 32 raw bytes."""
    return base64.b64encode(raw_public(signing_key(settings).public_key())).decode()


def load_public_key(b64: str) -> Ed25519PublicKey:
    try:
        raw = base64.b64decode((b64 or "").strip(), validate=True)
        if len(raw) != 32:
            raise ValueError("not 32 bytes")
        return Ed25519PublicKey.from_public_bytes(raw)
    except (ValueError, binascii.Error) as exc:
        raise InvalidInput(f"not an Ed25519 public key in base64 ({exc})") from None


def key_id(b64: str) -> str:
    return hashlib.sha256(raw_public(load_public_key(b64))).hexdigest()[:16]


def canonical(obj) -> bytes:
    """Sorted keys, no spaces, ASCII only: the same object always gives the same bytes."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode()


def sign(settings, batch: dict) -> dict:
    """The signed document for `batch`."""
    key = signing_key(settings)
    data = canonical(batch)
    pub = base64.b64encode(raw_public(key.public_key())).decode()
    return {"batch": data.decode(), "signature": base64.b64encode(key.sign(data)).decode(), "key_id": key_id(pub)}


def verify(doc, publisher_key_b64: str) -> dict:
    """The batch of a signed document, after checking its signature against the one key configured;
    SharingError `bad_signature` for anything else (no signature, another key, a changed byte)."""
    pub = load_public_key(publisher_key_b64)
    if not isinstance(doc, dict) or not isinstance(doc.get("batch"), str) or not isinstance(doc.get("signature"), str):
        raise SharingError("not a signed batch", code="bad_signature")
    try:
        sig = base64.b64decode(doc["signature"], validate=True)
        data = doc["batch"].encode("ascii")
        pub.verify(sig, data)
    except (InvalidSignature, ValueError, binascii.Error, UnicodeEncodeError):
        raise SharingError("the batch's signature does not verify with the publisher's key",
                           code="bad_signature") from None
    try:
        batch = json.loads(data)
    except ValueError:
        raise SharingError("the signed batch is not JSON", code="bad_batch") from None
    if not isinstance(batch, dict):
        raise SharingError("the signed batch is not an object", code="bad_batch")
    return batch
