"""Writes that must never change (create-only, with Object Lock retention), against the real store."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import replace

import pytest

from registry.errors import AlreadyExistsError, IntegrityError, StoreError
from registry.fingerprint import BaseModelFingerprint
from registry.governance import RegistryRules
from registry.registry import Registry
from registry.store import S3ObjectStore
from registry.store_check import PROBE_KEY, check_store
from tests.conftest import run_cli
from tests.registry_helpers import make_adapter_folder

pytestmark = pytest.mark.integration

BASE = BaseModelFingerprint("sentence-transformers/all-MiniLM-L6-v2", "a" * 64, "b" * 64)


def test_a_retained_write_carries_content_md5_and_keeps_its_retention(s3_server, unique_name):
    store = S3ObjectStore(s3_server.settings("trainer"))
    sent: list[dict] = []
    store.client.meta.events.register("before-send.s3.PutObject", lambda request, **_: sent.append(request.headers))
    key, data = f"audit/{unique_name}/000000000001.json", b'{"seq": 1}'
    store.put(key, data, create_only=True, retain=True)
    # AWS refuses Object Lock headers on a PutObject that carries no body checksum.
    assert [h["Content-MD5"] for h in sent] == [base64.b64encode(hashlib.md5(data).digest())]
    admin = S3ObjectStore(s3_server.settings("admin")).client
    assert admin.get_object_retention(Bucket=store.bucket, Key=key)["Retention"]["Mode"] == "GOVERNANCE"


def test_a_bucket_without_object_lock_takes_the_write_without_retention(s3_server, unique_name):
    admin = s3_server.settings("admin")
    S3ObjectStore(admin).client.create_bucket(Bucket=unique_name, ObjectLockEnabledForBucket=False)
    store = S3ObjectStore(replace(admin, bucket=unique_name))
    store.put("audit/x/000000000001.json", b"{}", create_only=True, retain=True)
    assert store.get("audit/x/000000000001.json") == b"{}"
    assert "ObjectLockMode" not in store.client.head_object(Bucket=unique_name, Key="audit/x/000000000001.json")


@pytest.mark.parametrize(
    ("role", "says"),
    [
        ("admin", "InvalidRequest"),
        (
            "trainer",
            "role 'trainer' cannot read the bucket's Object Lock configuration (AccessDenied) to tell whether "
            'the bucket has any; if it has none, set object_lock_mode = "NONE"',
        ),
    ],
)
def test_a_retention_the_store_refuses_is_an_error_not_a_write_without_it(s3_server, unique_name, role, says):
    # A retention date in the past: SeaweedFS answers the bare InvalidRequest it gives a bucket
    # without Object Lock, on a bucket that has it.
    store = S3ObjectStore(replace(s3_server.settings(role), object_lock_days=-1))
    key = f"audit/{unique_name}/000000000001.json"
    with pytest.raises(StoreError) as err:
        store.put(key, b"{}", create_only=True, retain=True)
    assert says in str(err.value)
    assert not store.exists(key)


def _lose_the_first_reply(store: S3ObjectStore) -> list[int]:
    """Make botocore retry the first PutObject after it succeeded, as when its reply is lost.

    Returns the list that counts the PutObject requests sent.
    """
    sent: list[int] = []
    store.client.meta.events.register("before-send.s3.PutObject", lambda **_: sent.append(1))
    store.client.meta.events.register_first(
        "needs-retry.s3.PutObject", lambda attempts, **_: 0 if len(sent) == 1 and attempts == 1 else None
    )
    return sent


def test_a_create_only_put_whose_reply_was_lost_is_done_not_refused(s3_server, unique_name):
    store = S3ObjectStore(s3_server.settings("trainer"))
    sent = _lose_the_first_reply(store)
    key = f"audit/{unique_name}/000000000001.json"
    store.put(key, b'{"seq": 1}', create_only=True, retain=True)
    assert len(sent) == 2  # the retry went out and found the first attempt's object
    assert store.get(key) == b'{"seq": 1}'


def test_a_create_only_put_of_the_same_bytes_again_is_done_and_of_other_bytes_refused(s3_server, unique_name):
    store = S3ObjectStore(s3_server.settings("trainer"))
    key = f"adapters/{unique_name}/claims/v1.json"
    store.put(key, b"mine", create_only=True)
    store.put(key, b"mine", create_only=True)
    with pytest.raises(AlreadyExistsError, match=f"s3://{store.bucket}/{key} already exists"):
        store.put(key, b"theirs", create_only=True)
    assert store.get(key) == b"mine"


def test_a_promote_whose_event_reply_was_lost_succeeds_once(s3_server, unique_name, tmp_path):
    settings = s3_server.settings("admin", "alice")
    store = S3ObjectStore(settings)
    registry = Registry(
        store, settings, base_model=BASE, rules=RegistryRules(four_eyes_production=False, require_gate=False)
    )
    registry.register(make_adapter_folder(tmp_path / "a", BASE), unique_name)
    _lose_the_first_reply(store)
    registry.promote(unique_name, "v1", "staging", reason="try it")
    assert registry.aliases(unique_name) == {"staging": "v1"}
    assert registry.verify(unique_name).events == 2


def test_the_store_check_finds_create_only_writes_honoured_and_object_lock_on_and_leaves_one_probe(s3_server):
    store = S3ObjectStore(s3_server.settings("admin"))
    for _ in range(2):  # a second check finds the first one's probe and writes nothing new
        result = check_store(store)
        assert (result.create_only_writes, result.object_lock, result.problems) == ("honoured", "enabled", ())
    assert [o.key for o in store.list("deliveries/_store-check/")] == [PROBE_KEY]


def test_the_store_check_names_a_server_that_ignores_if_none_match(s3_server):
    store = S3ObjectStore(s3_server.settings("trainer"))

    # What an older S3 server does: it drops the precondition and overwrites.
    def drop_precondition(request, **_):
        del request.headers["If-None-Match"]

    store.client.meta.events.register("before-sign.s3.PutObject", drop_precondition)
    result = check_store(store)
    assert result.create_only_writes == "ignored"
    assert "the server ignores If-None-Match" in result.problems[0]


def test_the_store_check_exits_1_for_retention_configured_on_a_bucket_without_object_lock(s3_server, unique_name):
    S3ObjectStore(s3_server.settings("admin")).client.create_bucket(
        Bucket=unique_name, ObjectLockEnabledForBucket=False
    )
    env = {**s3_server.env(TAILOR_ROLE="admin"), "TAILOR_BUCKET": unique_name}

    result = run_cli("store", "check", env=env)
    assert result.returncode == 1
    assert f"object_lock_mode is GOVERNANCE but bucket '{unique_name}' has no Object Lock" in result.stdout
    assert run_cli("store", "check", env={**env, "TAILOR_OBJECT_LOCK_MODE": "NONE"}).returncode == 0

    reader = run_cli("store", "check", "--json", env=s3_server.env(TAILOR_ROLE="reader"))
    assert reader.returncode == 0 and json.loads(reader.stdout)["create_only_writes"] == "not tested"


def test_a_lost_reply_of_a_version_file_over_16_mib_is_done_too(s3_server, unique_name):
    store = S3ObjectStore(s3_server.settings("trainer"))
    sent = _lose_the_first_reply(store)
    data = bytes(range(256)) * (17 * 4096)  # 17 MiB: a large tokenizer.json
    store.put(f"adapters/{unique_name}/versions/v1/tokenizer.json", data, create_only=True)
    assert len(sent) == 2


def test_a_reply_without_content_length_is_still_read_no_further_than_the_limit(s3_server, unique_name):
    store = S3ObjectStore(s3_server.settings("trainer"))
    key = f"audit/{unique_name}/000000000001.json"
    store.put(key, b"x" * 100)

    def drop_length(parsed, **_):  # as a proxy that re-encodes replies may
        parsed.pop("ContentLength", None)

    store.client.meta.events.register("after-call.s3.GetObject", drop_length)
    assert store.get(key, max_bytes=100) == b"x" * 100
    with pytest.raises(IntegrityError, match="more than the 99 it may hold"):
        store.get(key, max_bytes=99)


def test_the_store_check_names_a_bucket_that_does_not_exist_and_creates_none(s3_server, unique_name):
    result = run_cli("store", "check", env={**s3_server.env(TAILOR_ROLE="admin"), "TAILOR_BUCKET": unique_name})
    assert result.returncode == 1
    assert f"bucket '{unique_name}' does not exist" in result.stderr
    buckets = S3ObjectStore(s3_server.settings("admin")).client.list_buckets()["Buckets"]
    assert unique_name not in [b["Name"] for b in buckets]


def test_a_create_only_write_that_loses_to_longer_bytes_is_a_conflict_not_tampering(s3_server, unique_name):
    # Racing audit appends: the winner's event is a few bytes longer than the loser's.
    store = S3ObjectStore(s3_server.settings("trainer"))
    key = f"audit/{unique_name}/000000000001.json"
    store.put(key, b'{"actor": "a longer name"}', create_only=True)
    with pytest.raises(AlreadyExistsError):
        store.put(key, b'{"actor": "bo"}', create_only=True)
