"""Promotion events: HMAC-signed JSON POSTed to every configured webhook, with a delivery log.

Each promote or rollback is announced once per URL. The body is canonical JSON; the header
``X-Tailor-Signature: sha256=<hex>`` is HMAC-SHA256 of those exact bytes with the shared
secret, so a receiver can prove the event came from Tailor and was not altered. A URL that
fails (connection error, timeout, non-2xx) is retried with exponential backoff. Every delivery,
successful or not, is recorded in the store at ``deliveries/<name>/<seq>-<url hash>.json``
(create-only: the same event is never announced twice to the same URL).

A webhook URL is a secret (credentials in its userinfo or query, and for Slack or Teams in its
path): it is only ever stored, printed or logged as ``redacted_url`` shows it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Callable, Literal

from pydantic import BaseModel, ConfigDict, Field

from pipelines.records import utcnow
from pipelines.urls import redacted_url, url_id
from registry.errors import AlreadyExistsError, ConfigError
from registry.object_store import ObjectStore

if TYPE_CHECKING:
    from registry.audit.events import AuditEvent

SIGNATURE_HEADER = "X-Tailor-Signature"
EVENT_HEADER = "X-Tailor-Event"
DELIVERY_HEADER = "X-Tailor-Delivery"


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PromotionEvent(_Frozen):
    """What a receiver learns about one alias move; ``seq``/``event_hash`` point into the audit log."""

    action: Literal["promote", "rollback"]
    name: str
    version: str
    alias: str
    previous_version: str | None = None
    actor: str
    reason: str
    seq: int
    event_hash: str
    at: datetime


class MonitorAlert(_Frozen):
    """A limit of the monitoring file crossed by live traffic; ``run_id`` names the stored monitor result."""

    action: Literal["monitor-alert"] = "monitor-alert"
    name: str
    version: str
    run_id: str
    crossed: list[str]
    summary: str
    at: datetime


class DeliveryAttempt(_Frozen):
    at: datetime
    status_code: int | None = None
    error: str | None = None
    seconds: float


class Delivery(_Frozen):
    delivery_id: str
    url: str  # redacted: the delivery log is readable by the reader role
    event: PromotionEvent | MonitorAlert
    delivered: bool
    attempts: list[DeliveryAttempt] = Field(default_factory=list)
    log_key: str


def sign(secret: str, body: bytes) -> str:
    """The signature header value for ``body``: ``sha256=<hex HMAC-SHA256>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str) -> bool:
    """True when ``header`` is the signature of ``body`` under ``secret`` (constant-time compare)."""
    return hmac.compare_digest(sign(secret, body), header)


def log_key(event: PromotionEvent | MonitorAlert, url: str) -> str:
    if isinstance(event, MonitorAlert):
        return f"deliveries/{event.name}/monitor-{event.run_id}-{url_id(url)}.json"
    return f"deliveries/{event.name}/{event.seq:012d}-{url_id(url)}.json"


def announce_audit_event(
    event: "AuditEvent", *, urls: list[str], secret: str | None, store: ObjectStore
) -> list[Delivery]:
    """Announce a promote or rollback from the audit log to ``urls``, each delivery logged in ``store``.

    Raises:
        ConfigError: webhooks are configured but no ``webhook_secret`` is set.
    """
    from registry.audit.events import parse_time

    if not urls:
        return []
    promotion = PromotionEvent(
        action=event.action,
        name=event.name,
        version=event.version,
        alias=event.alias or "",
        previous_version=event.alias_before,
        actor=event.actor,
        reason=event.reason,
        seq=event.seq,
        event_hash=event.sha256,
        at=parse_time(event.time),
    )
    return announce(promotion, urls=urls, secret=secret, store=store)


def announce(
    event: PromotionEvent | MonitorAlert,
    *,
    urls: list[str],
    secret: str | None,
    store: ObjectStore,
    attempts: int = 5,
    backoff_s: float = 0.5,
    timeout_s: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Delivery]:
    """POST ``event`` to every URL, retrying each up to ``attempts`` times, and log each delivery.

    A URL whose log entry already exists was announced before (by this or another process) and
    is skipped. A delivery that still fails after the last attempt is logged with
    ``delivered=False`` and does not raise: the alias move it reports has already happened.

    Raises:
        ConfigError: webhooks are configured but no ``webhook_secret`` is set.
    """
    if not urls:
        return []
    if not secret:
        raise ConfigError("webhook_secret: required when webhooks are configured (set TAILOR_WEBHOOK_SECRET)")
    body = json.dumps(event.model_dump(mode="json"), sort_keys=True, separators=(",", ":")).encode()
    deliveries = []
    for url in urls:
        key = log_key(event, url)
        if store.exists(key):
            continue
        delivery = _deliver(
            url, body, event, secret, key, attempts=attempts, backoff_s=backoff_s, timeout_s=timeout_s, sleep=sleep
        )
        try:
            store.put(key, delivery.model_dump_json(indent=2).encode(), create_only=True)
        except AlreadyExistsError:
            continue  # a concurrent announcer logged it first; the receiver got the event twice at most
        deliveries.append(delivery)
    return deliveries


def _deliver(
    url: str,
    body: bytes,
    event: PromotionEvent | MonitorAlert,
    secret: str,
    key: str,
    *,
    attempts: int,
    backoff_s: float,
    timeout_s: float,
    sleep: Callable[[float], None],
) -> Delivery:
    import httpx

    delivery_id = uuid.uuid4().hex
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(secret, body),
        EVENT_HEADER: event.action,
        DELIVERY_HEADER: delivery_id,
    }
    tries: list[DeliveryAttempt] = []
    delivered = False
    for attempt in range(attempts):
        if attempt:
            sleep(backoff_s * 2 ** (attempt - 1))
        started = time.monotonic()
        at = utcnow()
        try:
            response = httpx.post(url, content=body, headers=headers, timeout=timeout_s)
        except httpx.HTTPError as err:
            tries.append(
                DeliveryAttempt(at=at, error=f"{type(err).__name__}: {err}", seconds=time.monotonic() - started)
            )
            continue
        tries.append(DeliveryAttempt(at=at, status_code=response.status_code, seconds=time.monotonic() - started))
        if response.is_success:
            delivered = True
            break
    return Delivery(
        delivery_id=delivery_id, url=redacted_url(url), event=event, delivered=delivered, attempts=tries, log_key=key
    )


def delivery_log(store: ObjectStore, name: str) -> list[Delivery]:
    """Every logged delivery for adapter ``name``, oldest event first."""
    return [Delivery.model_validate_json(store.get(info.key)) for info in store.list(f"deliveries/{name}/")]
