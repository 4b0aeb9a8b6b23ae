"""Writes that must never change (create-only, with Object Lock retention), against the real store."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import replace

import pytest

from registry.errors import StoreError
from registry.store import S3ObjectStore

pytestmark = pytest.mark.integration


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
        ("trainer", "role 'trainer' cannot read the bucket's Object Lock configuration (AccessDenied) to tell whether "
                    "the bucket has any; if it has none, set object_lock_mode = \"NONE\""),
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
