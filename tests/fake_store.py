"""An in-memory ``ObjectStore`` for pure-logic unit tests (integration tests use the real SeaweedFS)."""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from typing import Iterator

from registry.errors import AlreadyExistsError, NotFoundError
from registry.object_store import MAX_RECORD_BYTES, ObjectInfo, ObjectVersion, too_large


class FakeStore:
    """Keeps objects in a dict; create-only writes behave like ``S3ObjectStore``'s (If-None-Match)."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.puts: list[str] = []
        # Like a versioned bucket: every write and delete of a key stays listed among its versions.
        self.history: list[ObjectVersion] = []
        self.received: dict[str, dt.datetime] = {}  # LastModified of each key's current version
        self._lock = threading.Lock()

    def put(self, key: str, data: bytes, *, create_only: bool = False, retain: bool = False) -> None:
        with self._lock:
            if create_only and key in self.objects:
                if self.objects[key] == data:
                    return
                raise AlreadyExistsError(f"{key} already exists")
            self.objects[key] = bytes(data)
            self.received[key] = dt.datetime.now(dt.timezone.utc)
            self.puts.append(key)
            self.history.append(ObjectVersion(key, str(len(self.history)), delete_marker=False))

    def get(self, key: str, *, max_bytes: int = MAX_RECORD_BYTES) -> bytes:
        try:
            data = self.objects[key]
        except KeyError:
            raise NotFoundError(f"{key} does not exist") from None
        if len(data) > max_bytes:
            raise too_large(key, len(data), max_bytes)
        return data

    def exists(self, key: str) -> bool:
        return key in self.objects

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        for key in sorted(k for k in list(self.objects) if k.startswith(prefix)):
            data = self.objects[key]
            yield ObjectInfo(
                key=key, size=len(data), etag=hashlib.md5(data).hexdigest(), modified=self.received.get(key)
            )

    def folders(self, prefix: str) -> Iterator[str]:
        yield from sorted(
            {
                k[len(prefix) :].split("/")[0]
                for k in list(self.objects)
                if k.startswith(prefix) and "/" in k[len(prefix) :]
            }
        )

    def delete(self, key: str) -> None:
        self.objects.pop(key, None)
        self.history.append(ObjectVersion(key, str(len(self.history)), delete_marker=True))

    def versions(self, prefix: str) -> Iterator[ObjectVersion]:
        yield from sorted((v for v in list(self.history) if v.key.startswith(prefix)), key=lambda v: v.key)
