"""An admin tampers with the stored audit log (overwrite, delete, insert): `tailor audit verify` names each."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from registry.audit.events import AuditEvent, event_key
from registry.canonical import canonical_json, canonical_sha256
from registry.errors import IntegrityError
from registry.fingerprint import BaseModelFingerprint
from registry.governance import RegistryRules
from registry.registry import Registry
from registry.store import S3ObjectStore
from tests.registry_helpers import make_adapter_folder, run_cli_parallel

pytestmark = pytest.mark.integration

BASE = BaseModelFingerprint("sentence-transformers/all-MiniLM-L6-v2", "a" * 64, "b" * 64)


def _history(s3_server, name: str, tmp_path) -> None:
    """Six events: three registers, three promotions."""
    settings = s3_server.settings("admin", "alice")
    registry = Registry(
        S3ObjectStore(settings),
        settings,
        base_model=BASE,
        rules=RegistryRules(four_eyes_production=False, require_gate=False),
    )
    for i in range(3):
        registry.register(make_adapter_folder(tmp_path / name / str(i), BASE, seed=i), name)
    for v in ("v1", "v2", "v3"):
        registry.promote(name, v, "production", reason=f"ship {v}")
    assert registry.verify(name).events == 6


def test_verify_names_an_overwritten_a_deleted_and_an_inserted_event(s3_server, unique_name, tmp_path):
    modified, deleted, inserted = (f"{unique_name}-{k}" for k in ("mod", "del", "ins"))
    for name in (modified, deleted, inserted):
        _history(s3_server, name, tmp_path)
    admin = S3ObjectStore(s3_server.settings("admin"))

    raw = json.loads(admin.get(event_key(modified, 5)))
    raw["reason"] = "approved by the board"
    admin.put(event_key(modified, 5), json.dumps(raw).encode())  # a new object version over the locked one

    admin.delete(event_key(deleted, 4))  # a delete marker; the locked version stays underneath

    five = AuditEvent(**json.loads(admin.get(event_key(inserted, 5))))
    old_six = admin.get(event_key(inserted, 6))
    forged = AuditEvent(
        action="promote",
        name=inserted,
        version="v1",
        actor="mallory",
        role="admin",
        reason="x",
        alias="production",
        alias_before="v2",
        alias_after="v1",
        seq=6,
        time=five.time,
        prev_sha256=five.sha256,
    ).sealed()
    admin.put(event_key(inserted, 6), forged.to_json())
    admin.put(event_key(inserted, 7), old_six)

    env = s3_server.env(TAILOR_ROLE="reader", TAILOR_ACTOR="auditor")
    results = run_cli_parallel([(["audit", "verify", name], env) for name in (modified, deleted, inserted)])
    assert [r.returncode for r in results] == [1, 1, 1]
    assert f"event 000000000005 of '{modified}' was modified" in results[0].stderr
    assert f"event 000000000004 of '{deleted}' is missing (deleted)" in results[1].stderr
    assert "000000000006 was replaced or inserted" in results[2].stderr
    assert all("Traceback" not in r.stderr for r in results)

    # Object Lock keeps what was overwritten or deleted: the originals are still there to restore.
    versions = admin.client.list_object_versions(Bucket=admin.bucket, Prefix=event_key(modified, 5))
    assert len(versions.get("Versions", [])) == 2
    markers = admin.client.list_object_versions(Bucket=admin.bucket, Prefix=event_key(deleted, 4))
    assert markers.get("DeleteMarkers") and markers.get("Versions")


def test_no_role_can_destroy_a_registered_version_or_an_event_for_good(s3_server, unique_name, tmp_path):
    from botocore.exceptions import ClientError

    from registry.layout import file_key

    _history(s3_server, unique_name, tmp_path)
    keys = [
        file_key(unique_name, "v2", "adapter_model.safetensors"),
        file_key(unique_name, "v2", "manifest.json"),
        event_key(unique_name, 2),
    ]
    for role in ("trainer", "admin"):
        store = S3ObjectStore(s3_server.settings(role))
        for key in keys:
            (version,) = store.client.list_object_versions(Bucket=store.bucket, Prefix=key)["Versions"]
            with pytest.raises(ClientError, match="AccessDenied|retention|locked"):
                store.client.delete_object(Bucket=store.bucket, Key=key, VersionId=version["VersionId"])
    reader = s3_server.settings("reader")
    assert Registry(S3ObjectStore(reader), reader).verify(unique_name).versions == ["v1", "v2", "v3"]


def test_a_chained_event_with_a_list_for_its_alias_is_named_by_every_command_instead_of_crashing(
    s3_server, unique_name, tmp_path
):
    from registry.object_store import put_kept

    _history(s3_server, unique_name, tmp_path)
    approver = S3ObjectStore(s3_server.settings("approver", "mallory"))
    six = AuditEvent(**json.loads(approver.get(event_key(unique_name, 6))))
    raw = {
        **asdict(six),
        "action": "promote",
        "version": "v2",
        "actor": "mallory",
        "role": "approver",
        "reason": "x",
        "alias": ["production"],
        "alias_before": "v3",
        "alias_after": "v2",
        "seq": 7,
        "prev_sha256": six.sha256,
    }
    raw["sha256"] = canonical_sha256({k: v for k, v in raw.items() if k != "sha256"})
    put_kept(approver, event_key(unique_name, 7), canonical_json(raw))  # the approver's own keys may append

    env = s3_server.env(TAILOR_ROLE="reader", TAILOR_ACTOR="auditor")
    results = run_cli_parallel(
        [
            (command, env)
            for command in (
                ["audit", "verify", unique_name],
                ["audit", "log", unique_name],
                ["list", unique_name],
                ["show", unique_name, "v1"],
            )
        ]
    )
    for result in results:
        assert result.returncode == 1 and "Traceback" not in result.stderr, (result.args, result.stderr)
        assert result.stderr.strip() == (
            f"error: {event_key(unique_name, 7)} is not an audit event (modified or "
            "inserted): field 'alias' is [\"production\"], not a string or null"
        )


def test_the_log_read_from_a_cache_fetches_only_new_events_and_still_catches_a_rewrite(
    s3_server, unique_name, tmp_path
):
    _history(s3_server, unique_name, tmp_path)
    settings = s3_server.settings("reader", "rita")
    store = S3ObjectStore(settings)
    gets: list[str] = []
    store.client.meta.events.register(
        "provide-client-params.s3.GetObject", lambda params, **_: gets.append(params["Key"])
    )
    reader = Registry(store, settings, base_model=BASE, cache_dir=tmp_path / "home")
    assert len(reader.events(unique_name)) == 6 and len(gets) == 6
    gets.clear()
    assert len(Registry(store, settings, base_model=BASE, cache_dir=tmp_path / "home").events(unique_name)) == 6
    assert gets == []  # the listing's ETags vouch for every event read before

    admin = S3ObjectStore(s3_server.settings("admin"))
    raw = json.loads(admin.get(event_key(unique_name, 2)))
    raw["reason"] = "approved by the board"
    admin.put(event_key(unique_name, 2), json.dumps(raw).encode())
    with pytest.raises(IntegrityError, match=f"event 000000000002 of '{unique_name}' was modified"):
        Registry(store, settings, base_model=BASE, cache_dir=tmp_path / "home").events(unique_name)
    assert gets == [event_key(unique_name, 2)]  # its new ETag made it be fetched again
