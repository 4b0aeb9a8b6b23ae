"""Ed25519 keys for the people and services who write the audit log, and what they sign.

A key is identified by the first 16 hex characters of its public key's sha256. Keys are kept as
base64 of the raw 32 bytes: a private key lives only in its holder's credentials file, a public key
is published in the keyring (``registry.keyring``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass, field
from typing import Any

from registry.canonical import event_bytes
from registry.errors import ConfigError


def _raw(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raw = b""
    if len(raw) != 32:
        raise ConfigError(f"{what} is not an Ed25519 key (base64 of 32 bytes)")
    return raw


def new_private_key() -> str:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    raw = Ed25519PrivateKey.generate().private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return base64.b64encode(raw).decode()


def public_key_of(private_key: str) -> str:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    key = Ed25519PrivateKey.from_private_bytes(_raw(private_key, "signing_key"))
    return base64.b64encode(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def key_id(public_key: str) -> str:
    return hashlib.sha256(_raw(public_key, "public key")).hexdigest()[:16]


def sign(private_key: str, message: bytes) -> str:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return base64.b64encode(
        Ed25519PrivateKey.from_private_bytes(_raw(private_key, "signing_key")).sign(message)
    ).decode()


def signature_holds(public_key: str, signature: str, message: bytes) -> bool:
    """Whether ``signature`` (base64) is ``public_key``'s over ``message``; malformed input is False."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        key = Ed25519PublicKey.from_public_bytes(_raw(public_key, "public key"))
        key.verify(base64.b64decode(signature, validate=True), message)
        return True
    except (ConfigError, InvalidSignature, binascii.Error, ValueError, TypeError):
        return False


@dataclass(frozen=True)
class Signer:
    """Who signs: a person or service of the keyring, with their private key."""

    name: str
    role: str
    private_key: str = field(repr=False)

    @property
    def key_id(self) -> str:
        return key_id(public_key_of(self.private_key))

    def sign(self, message: bytes) -> str:
        return sign(self.private_key, message)


def signed_bytes(body: dict[str, Any]) -> bytes:
    """What a signature covers: the canonical JSON of an event without its signature and sha256, made
    canonical as the event's ``canonical`` field names (``registry.canonical.event_bytes``).

    Raises:
        ValueError: as ``event_bytes``.
    """
    return event_bytes({k: v for k, v in body.items() if k not in ("signature", "sha256")})
