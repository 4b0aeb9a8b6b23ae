"""The object store the registry depends on (``ObjectStore``), and the few rules every store keeps:
how large a record may be, how what must never change is written, how a rewrite shows.

``registry.store.S3ObjectStore`` is the implementation used everywhere outside pure-logic unit tests.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Iterator, Protocol

from registry.errors import AccessDeniedError, IntegrityError

# Manifests, audit events and delivery records are a few KB. A stored object is read whole, so
# whoever can write the bucket could otherwise make every reader allocate what they put there.
MAX_RECORD_BYTES = 16 * 1024 * 1024


def too_large(where: str, size: int, max_bytes: int) -> IntegrityError:
    return IntegrityError(
        f"{where} holds {size:,} bytes, more than the {max_bytes:,} it may hold: "
        "it was replaced or is not what it claims; refusing to read it"
    )


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str
    modified: dt.datetime | None = None  # when the store received it (LastModified)


@dataclass(frozen=True)
class ObjectVersion:
    """One stored version of a key, or a delete marker (a versioned bucket keeps both)."""

    key: str
    version_id: str
    delete_marker: bool


class ObjectStore(Protocol):
    """What the registry needs from an object store."""

    def put(self, key: str, data: bytes, *, create_only: bool = False, retain: bool = False) -> None:
        """Write ``data`` at ``key``. A create-only write that finds ``data`` itself at ``key`` is done.

        Raises:
            AlreadyExistsError: ``create_only`` and the key holds other bytes (the write lost a race).
        """

    def get(self, key: str, *, max_bytes: int = MAX_RECORD_BYTES) -> bytes:
        """Read a whole object of at most ``max_bytes``.

        Raises:
            NotFoundError: the key is absent.
            IntegrityError: the object is larger than ``max_bytes``.
        """

    def exists(self, key: str) -> bool: ...

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Objects under ``prefix`` in key order."""

    def folders(self, prefix: str) -> Iterator[str]:
        """The names one level below ``prefix`` (S3's common prefixes), without listing what is in them."""

    def delete(self, key: str) -> None: ...

    def versions(self, prefix: str) -> Iterator[ObjectVersion]:
        """Every version and delete marker under ``prefix`` (one per key on an unversioned bucket)."""


def rewritten_keys(store: ObjectStore, prefix: str) -> dict[str, str]:
    """Keys under ``prefix`` that were overwritten or deleted since they were first written, each with
    what happened: a bucket with versioning (Object Lock, default retention) keeps every old version,
    so a rewrite of something written once and never changed shows here even when it is re-sealed.
    """
    counts: dict[str, list[int]] = {}
    for version in store.versions(prefix):
        counts.setdefault(version.key, [0, 0])[1 if version.delete_marker else 0] += 1
    return {
        key: (f"{stored} stored versions" if stored > 1 else "")
        + (", " if stored > 1 and markers else "")
        + (f"{markers} delete markers" if markers else "")
        for key, (stored, markers) in counts.items()
        if stored > 1 or markers
    }


def put_kept(store: ObjectStore, key: str, data: bytes) -> None:
    """Write what must never change (version files, audit events): create-only, with Object Lock
    retention where the identity may set it.

    Identities made before a prefix got ``PutObjectRetention`` refuse the retention header; the
    object is then still written create-only, and the bucket's versioning keeps every overwritten
    or deleted original.

    Raises:
        AlreadyExistsError: the key holds other bytes.
    """
    try:
        store.put(key, data, create_only=True, retain=True)
    except AccessDeniedError:
        store.put(key, data, create_only=True)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
