"""Canonical JSON: one byte string per value, so that hashes of manifests and audit events are stable.

Audit events name how they were made canonical (their ``canonical`` field): ``rfc8785`` (JSON
Canonicalization Scheme, RFC 8785, which any auditor's tool can reproduce) for events written
since; events without the field were hashed and signed over ``canonical_json``, which differs
from RFC 8785 in number formatting (``1.0``, ``1e-07``) and in sorting keys outside the Basic
Multilingual Plane, and keep verifying that way.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import rfc8785

JCS = "rfc8785"  # the ``canonical`` of events written now


def canonical_json(value: Any) -> bytes:
    """Keys sorted, no whitespace, UTF-8: the same value always gives the same bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def canonical_sha256(value: Any) -> str:
    return hashlib.sha256(canonical_json(value)).hexdigest()


def jcs(value: Any) -> bytes:
    """``value`` as RFC 8785 canonical JSON.

    Raises:
        ValueError: it holds what RFC 8785 cannot (an integer beyond 2**53, a NaN).
    """
    try:
        return rfc8785.dumps(value)
    except rfc8785.CanonicalizationError as err:
        raise ValueError(f"not canonicalisable as RFC 8785: {err}") from None


def event_bytes(body: dict[str, Any]) -> bytes:
    """An event body's canonical bytes, made the way its own ``canonical`` field names.

    Raises:
        ValueError: it names a canonicalisation this version does not know.
    """
    how = body.get("canonical")
    if how is None:
        return canonical_json(body)
    if how == JCS:
        return jcs(body)
    raise ValueError(f"unknown canonicalisation {how!r}")


def event_sha256(body: dict[str, Any]) -> str:
    """Raises: ValueError: as ``event_bytes``."""
    return hashlib.sha256(event_bytes(body)).hexdigest()
