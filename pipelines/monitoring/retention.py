"""Recorded traffic is personal data (APPI): it expires after its own retention period, and an admin
erases it on request, on the record.

The bucket keeps every object version (Object Lock), so "deleted" here means every version of a
batch removed, not a delete marker that hides it. The recorder gives each batch its own retention
(``retention_days``); once that has passed any identity that may write ``traffic/`` removes it,
before then only an admin can (bypassing the GOVERNANCE retention), and each such erasure is an
audit event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from pipelines.monitoring.traffic_log import batches, parse_row
from registry.audit.events import AuditEvent
from registry.errors import AccessDeniedError, NotFoundError, RefusedError
from registry.store import S3ObjectStore
from serving.traffic import batch_key, key_time

MAX_REASON_CHARS = 2000


@dataclass
class Erased:
    batches: list[str] = field(default_factory=list)  # removed whole
    rewritten: list[str] = field(default_factory=list)  # rewritten without the erased rows
    rows: int = 0
    retained: list[str] = field(default_factory=list)  # expiry only: still under retention, left for a later run


def _erase(store: S3ObjectStore, key: str, *, bypass: bool) -> None:
    """Remove every version of ``key``. Raises: AccessDeniedError: a version is still retained."""
    from botocore.exceptions import BotoCoreError, ClientError

    for version in [v for v in store.versions(key) if v.key == key]:
        try:
            store.client.delete_object(
                Bucket=store.bucket,
                Key=key,
                VersionId=version.version_id,
                **({"BypassGovernanceRetention": True} if bypass else {}),
            )
        except (ClientError, BotoCoreError) as err:
            raise store._translate(err, key) from err


def expire(store: S3ObjectStore, name: str, retention_days: int, now: datetime | None = None) -> Erased:
    """Remove ``name``'s batches recorded more than ``retention_days`` ago (the monitor runs it)."""
    cutoff = (now or datetime.now(timezone.utc)) - timedelta(days=retention_days)
    erased = Erased()
    for info in batches(store, name, before=cutoff):
        try:
            _erase(store, info.key, bypass=False)
            erased.batches.append(info.key)
        except AccessDeniedError:  # its retention ends a moment after its key's time: the next run
            erased.retained.append(info.key)
    return erased


def erase(
    registry, name: str, *, reason: str, request_id: str | None = None, before: datetime | None = None
) -> tuple[Erased, AuditEvent]:
    """Erase ``name``'s recorded traffic now: the rows of one request, or everything recorded before a time.

    Args:
        registry: the registry as an admin, on an S3 store (its audit log records the erasure).

    Raises:
        RefusedError: not an admin, no reason, neither or both of ``request_id`` and ``before``.
        NotFoundError: no recorded row has ``request_id``.
    """
    registry.require_role("delete-traffic")
    if not reason.strip():
        raise RefusedError("--reason is required: say whose request or which rule the erasure answers")
    if (request_id is None) == (before is None):
        raise RefusedError("give exactly one of --request-id and --before")
    registry.log.require_signer()
    store: S3ObjectStore = registry.store
    erased = Erased()
    if before is not None:
        for info in batches(store, name, before=before):
            erased.rows += sum(1 for line in store.get(info.key, max_bytes=1 << 26).splitlines() if line.strip())
            _erase(store, info.key, bypass=True)
            erased.batches.append(info.key)
        what = f"erased {len(erased.batches)} traffic batches ({erased.rows} rows) recorded before {before.isoformat()}"
    else:
        for info in batches(store, name):
            _drop_request(store, name, info.key, request_id, erased)
        if not erased.rows:
            raise NotFoundError(f"no recorded traffic of '{name}' has request id {request_id!r}")
        what = (
            f"erased {erased.rows} rows of request {request_id} from {len(erased.batches + erased.rewritten)} batches"
        )
    event = registry.log.append(
        name,
        lambda _state: AuditEvent(
            action="delete-traffic",
            name=name,
            version="",
            actor=registry.settings.actor,
            role=registry.settings.role,
            reason=f"{reason} ({what})"[:MAX_REASON_CHARS],
        ),
    )
    return erased, event


def _drop_request(store: S3ObjectStore, name: str, key: str, request_id: str, erased: Erased) -> None:
    lines = store.get(key, max_bytes=1 << 26).decode("utf-8", errors="replace").splitlines()
    kept = []
    for line in lines:
        try:
            matched = parse_row(line).request_id == request_id
        except (ValueError, TypeError):
            matched = False  # kept as it is: erasing a request must not lose other rows
        if matched:
            erased.rows += 1
        elif line.strip():
            kept.append(line)
    if len(kept) == len([line for line in lines if line.strip()]):
        return
    if kept:
        # The rest of the batch keeps its time and its retention, under a new key.
        retained = _retained_until(store, key)
        extra = {"ObjectLockMode": "GOVERNANCE", "ObjectLockRetainUntilDate": retained} if retained else {}
        at = key_time(key) or datetime.now(timezone.utc)
        new_key = batch_key(name, at, "rewritten-" + key.rsplit("-", 1)[-1].removesuffix(".jsonl"))
        _put(store, new_key, ("\n".join(kept) + "\n").encode(), extra)
        erased.rewritten.append(key)
    else:
        erased.batches.append(key)
    _erase(store, key, bypass=True)


def _retained_until(store: S3ObjectStore, key: str) -> datetime | None:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return store.client.get_object_retention(Bucket=store.bucket, Key=key)["Retention"]["RetainUntilDate"]
    except (ClientError, BotoCoreError, KeyError):
        return None  # no retention of its own (a bucket without Object Lock): none to carry over


def _put(store: S3ObjectStore, key: str, data: bytes, extra: dict) -> None:
    import base64
    import hashlib

    from botocore.exceptions import BotoCoreError, ClientError

    try:
        store.client.put_object(
            Bucket=store.bucket,
            Key=key,
            Body=data,
            IfNoneMatch="*",
            ContentMD5=base64.b64encode(hashlib.md5(data).digest()).decode(),
            **extra,
        )
    except (ClientError, BotoCoreError) as err:
        raise store._translate(err, key) from err
