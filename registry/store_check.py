"""Check that an S3 server does what the registry's guarantees rest on, before trusting it.

Version claims and the audit log's append-only chain rest on create-only writes (`If-None-Match: *`
answered with 412 when the key exists); a server that ignores the header lets two writers take
the same sequence number, the later one silently replacing the earlier event. Retention rests on
the bucket having Object Lock. Neither shows in an ordinary request, so `tailor store check` asks.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Literal

from registry.errors import AccessDeniedError, AlreadyExistsError
from registry.store import S3ObjectStore, shown_endpoint

# Approvers and trainers may both write under deliveries/; no adapter name starts with "_".
PROBE_KEY = "deliveries/_store-check/create-only"


@dataclass(frozen=True)
class StoreCheck:
    endpoint: str
    bucket: str
    role: str
    create_only_writes: Literal["honoured", "ignored", "not tested"]
    object_lock: Literal["enabled", "not enabled", "not readable"]
    problems: tuple[str, ...]
    notes: tuple[str, ...]


def check_store(store: S3ObjectStore) -> StoreCheck:
    """Probe create-only writes (one small object, written once per bucket) and the bucket's Object Lock.

    Raises:
        StoreError, NotFoundError, AccessDeniedError: the store does not answer, the bucket does not
            exist, or the credentials are refused for reading.
    """
    settings = store.settings
    # Reachable, bucket present, credentials good: else one line naming which. (A HEAD of a missing
    # key in a missing bucket is only "absent", and the probe would then create the bucket.)
    next(iter(store.list(PROBE_KEY)), None)
    problems: list[str] = []
    notes: list[str] = []
    create_only = _probe_create_only(store)
    if create_only == "ignored":
        problems.append(
            "the server ignores If-None-Match: a create-only write replaced an existing object, so two "
            "writers could take one version number or audit sequence number and the later would "
            "silently replace the earlier; do not keep the registry on this server"
        )
    elif create_only == "not tested":
        notes.append(f"role '{settings.role}' may not write {PROBE_KEY}: run the check as a trainer or admin")
    try:
        object_lock = "enabled" if store.object_lock_enabled() else "not enabled"
    except AccessDeniedError:
        object_lock = "not readable"
        notes.append(
            f"role '{settings.role}' may not read the bucket's Object Lock configuration: run the check as "
            "admin to see whether retention applies"
        )
    if object_lock == "not enabled" and settings.object_lock_mode:
        problems.append(
            f"object_lock_mode is {settings.object_lock_mode} but bucket '{store.bucket}' has no Object "
            "Lock: version files and audit events are written create-only without retention; create "
            'the bucket with Object Lock, or set object_lock_mode = "NONE" to say so'
        )
    return StoreCheck(
        endpoint=shown_endpoint(settings.endpoint),
        bucket=store.bucket,
        role=settings.role,
        create_only_writes=create_only,
        object_lock=object_lock,
        problems=tuple(problems),
        notes=tuple(notes),
    )


def _probe_create_only(store: S3ObjectStore) -> Literal["honoured", "ignored", "not tested"]:
    """Write the probe create-only twice, with different bytes: the second must be refused.

    The first write creates the probe, or is itself refused when an earlier check left it; either
    way the bucket keeps a single small probe object, and a role that may write it need not delete.
    """
    try:
        for _ in range(2):
            store.put(PROBE_KEY, secrets.token_hex(16).encode(), create_only=True)
    except AlreadyExistsError:
        return "honoured"
    except AccessDeniedError:
        return "not tested"
    return "ignored"
