"""Per-person identities and signed events against a real SeaweedFS, written as the attacks of the
security review (../shared/reviews/security.md): raw boto3 clients built from one person's keys.

The module starts a store of its own: `tailor user add` restarts the embedded store so that it
reads the new identity, which the session's shared store must not do under other tests.
"""

from __future__ import annotations

import json
import signal
import socket
import time
from dataclasses import dataclass, replace
from pathlib import Path

import boto3
import httpx
import numpy as np
import pytest

from bench.embedded_store import store_env
from pipelines.servers import seaweedfs
from pipelines.servers.seaweedfs import EmbeddedStoreConfig
from registry.audit.checkpoints import checkpoint_key, write_checkpoint
from registry.audit.events import AuditEvent, event_key
from registry.canonical import canonical_sha256
from registry.errors import AccessDeniedError, IntegrityError, RefusedError
from registry.fingerprint import BaseModelFingerprint, file_sha256
from registry.governance import RegistryRules
from registry.layout import file_key
from registry.people import read_credentials
from registry.registry import Registry
from registry.settings import StoreSettings
from registry.signing import Signer
from registry.store import S3ObjectStore
from serving.follower import Follower
from tests.conftest import run_cli
from tests.registry_helpers import make_adapter_folder, passed_gate

pytestmark = pytest.mark.integration

BASE = BaseModelFingerprint("sentence-transformers/all-MiniLM-L6-v2", "a" * 64, "b" * 64)


@dataclass(frozen=True)
class SignedStore:
    cfg: EmbeddedStoreConfig
    home: Path
    creds: dict[str, Path]
    trust_root: str
    recovery_key: str

    def env(self, who: str | None = None, **extra: str) -> dict[str, str]:
        if who is not None:
            extra["TAILOR_CREDENTIALS_FILE"] = str(self.creds[who])
        return store_env(self.cfg, self.home, **extra)

    def settings(self, who: str) -> StoreSettings:
        c = read_credentials(self.creds[who])
        return StoreSettings(
            endpoint=self.cfg.endpoint,
            bucket=self.cfg.bucket,
            access_key=c.access_key,
            secret_key=c.secret_key,
            role=c.role,
            actor=c.name,
            signing_key=c.signing_key,
            trust_root=c.trust_root,
            object_lock_days=1,
        )

    def registry(self, who: str) -> Registry:
        settings = self.settings(who)
        return Registry(S3ObjectStore(settings), settings, base_model=BASE, rules=RegistryRules())

    def raw(self, who: str):
        """A plain boto3 client with ``who``'s store keys: what an insider's own script holds."""
        c = read_credentials(self.creds[who])
        return boto3.client(
            "s3",
            endpoint_url=self.cfg.endpoint,
            aws_access_key_id=c.access_key,
            aws_secret_access_key=c.secret_key,
            region_name="us-east-1",
        )


@pytest.fixture(scope="module")
def signed(tmp_path_factory) -> SignedStore:
    home = tmp_path_factory.mktemp("signed-home")
    cfg = EmbeddedStoreConfig.on_free_ports(home / "store", bucket="tailor-signed")
    seaweedfs.start(cfg)
    try:
        # A log written before signing existed: it must keep verifying, as legacy.
        olga = seaweedfs.admin_settings(cfg, "trainer", "olga")
        Registry(S3ObjectStore(olga), olga, base_model=BASE).register(
            make_adapter_folder(home / "old", BASE, seed=9), "old", reason="before signing"
        )
        init = run_cli("user", "init", "--name", "root", "--json", env=store_env(cfg, home))
        assert init.returncode == 0, init.stderr
        started = json.loads(init.stdout)
        store = SignedStore(
            cfg, home, {"root": Path(started["credentials_file"])}, started["trust_root"], started["recovery_key"]
        )
        for name, role, *service in (("alice", "trainer"), ("bob", "approver"), ("srv", "reader", "--service")):
            added = run_cli(
                "user", "add", name, "--role", role, *service, "--reason", "joined", "--json", env=store.env("root")
            )
            assert added.returncode == 0, added.stderr
            store.creds[name] = Path(json.loads(added.stdout)["credentials_file"])
        yield store
    finally:
        seaweedfs.stop(cfg)


def _gated_folder(path: Path, seed: int) -> Path:
    """An adapter folder whose passing gate decision names its own weights, as `tailor evaluate` writes it."""
    folder = make_adapter_folder(path, BASE, seed=seed)
    decision = {**passed_gate(None), "adapter_sha256": file_sha256(folder / "adapter_model.safetensors")}
    (folder / "gate_decision.json").write_text(json.dumps(decision))
    return folder


def _registered(signed: SignedStore, name: str, tmp_path: Path, versions: int = 1, promote: bool = True) -> None:
    alice = signed.registry("alice")
    for i in range(1, versions + 1):
        alice.register(_gated_folder(tmp_path / f"{name}{i}", seed=i), name, reason=f"batch {i}")
    if promote:
        signed.registry("bob").promote(name, "v1", "production", reason="reviewed report")


def _event(signed: SignedStore, name: str, seq: int) -> AuditEvent:
    return AuditEvent(
        **json.loads(signed.raw("srv").get_object(Bucket=signed.cfg.bucket, Key=event_key(name, seq))["Body"].read())
    )


def _forge(
    signed: SignedStore,
    name: str,
    keys_of: str,
    event: AuditEvent,
    *,
    sign_as: str | None = None,
    overwrite: bool = False,
) -> None:
    """Write ``event`` with ``keys_of``'s store keys: unsigned, or signed with ``sign_as``'s key."""
    if sign_as is None:
        event = replace(event, key_id=None, signature=None).sealed()
    else:
        c = read_credentials(signed.creds[sign_as])
        event = event.signed(Signer(c.name, c.role, c.signing_key))
    extra = {} if overwrite else {"IfNoneMatch": "*"}
    signed.raw(keys_of).put_object(
        Bucket=signed.cfg.bucket, Key=event_key(name, event.seq), Body=event.to_json(), **extra
    )


def test_people_sign_their_events_and_verify_names_them(signed, unique_name, tmp_path):
    _registered(signed, unique_name, tmp_path)
    events = signed.registry("srv").events(unique_name)
    assert [(e.actor, e.role, e.key_id is not None) for e in events] == [
        ("alice", "trainer", True),
        ("bob", "approver", True),
    ]
    done = run_cli("audit", "verify", unique_name, env=signed.env("srv"))
    assert done.returncode == 0, done.stderr
    assert "2 signed, 0 unsigned legacy" in done.stdout
    assert "root added alice (trainer, person)" in done.stdout and "srv (reader, service)" in done.stdout
    listed = run_cli("user", "list", "--json", env=signed.env("srv"))
    assert {(r["name"], r["role"], r["status"]) for r in json.loads(listed.stdout)} >= {
        ("alice", "trainer", "active"),
        ("bob", "approver", "active"),
        ("root", "admin", "active"),
    }
    assert read_credentials(signed.creds["alice"]).trust_root == signed.trust_root
    assert signed.creds["alice"].stat().st_mode & 0o777 == 0o600


def test_a_log_older_than_the_keyring_verifies_as_unsigned_legacy_and_takes_no_unsigned_event(signed, tmp_path):
    done = run_cli("audit", "verify", "old", env=signed.env("srv"))
    assert done.returncode == 0, done.stderr
    assert "0 signed, 1 unsigned legacy" in done.stdout and "legacy logs sealed: old" in done.stdout
    # The stock client with the old role keys can no longer append an unsigned event ...
    olga = seaweedfs.admin_settings(signed.cfg, "trainer", "olga")
    legacy = Registry(S3ObjectStore(olga), olga, base_model=BASE)
    with pytest.raises(RefusedError, match="signed: act as a person"):
        legacy.register(make_adapter_folder(tmp_path / "x", BASE, seed=3), "old")


def test_actor_setting_that_disagrees_with_the_signer_is_refused(signed, unique_name):
    done = run_cli("list", "old", env=signed.env("bob", TAILOR_ACTOR="alice"))
    assert done.returncode == 2 and "TAILOR_ACTOR is 'alice'" in done.stderr
    done = run_cli("list", "old", env=signed.env("alice", TAILOR_ROLE="approver"))
    assert done.returncode == 2 and "acts as 'trainer'" in done.stderr


@pytest.mark.parametrize("how", ["unsigned", "signed by alice as bob", "signed by alice as herself"])
def test_trainer_forged_production_promotion_is_named_and_never_served(signed, unique_name, tmp_path, how):
    _registered(signed, unique_name, tmp_path, versions=2)
    follower = Follower(signed.registry("srv"), lambda d: object(), [unique_name], poll_seconds=60)
    follower.load()
    try:
        head = _event(signed, unique_name, 3)
        forged = AuditEvent(
            action="promote",
            name=unique_name,
            version="v2",
            actor="bob",
            role="approver",
            reason="ok",
            content_sha256=signed.registry("srv").state(unique_name).versions["v2"],
            alias="production",
            alias_before="v1",
            alias_after="v2",
            gate=head.gate,
            policy_sha256=head.policy_sha256,
            seq=4,
            time=head.time,
            prev_sha256=head.sha256,
        )
        if how == "signed by alice as herself":
            forged = replace(forged, actor="alice", role="trainer")
        _forge(signed, unique_name, "alice", forged, sign_as=None if how == "unsigned" else "alice")
        expected = {
            "unsigned": "is unsigned",
            "signed by alice as bob": "names 'bob' .approver. but was signed by alice",
            "signed by alice as herself": "role 'trainer' cannot move 'production'",
        }[how]
        done = run_cli("audit", "verify", unique_name, env=signed.env("srv"))
        assert done.returncode == 1 and "event 000000000004" in done.stderr
        assert __import__("re").search(expected, done.stderr), done.stderr
        follower.poll_once()
        assert follower.current(unique_name).version == "v1"
        refusal = follower.health()[0].failure.error or ""
        assert "refused: the audit history" in refusal and "still serving v1" in refusal, refusal
    finally:
        follower.close()


def test_rewritten_event_is_named_even_when_re_signed(signed, unique_name, tmp_path):
    _registered(signed, unique_name, tmp_path)
    original = _event(signed, unique_name, 2)
    _forge(signed, unique_name, "alice", replace(original, reason="history rewritten"), sign_as="alice", overwrite=True)
    with pytest.raises(IntegrityError, match="event 000000000002 .* names 'bob'"):
        signed.registry("srv").verify(unique_name)


@pytest.mark.parametrize("how", ["overwritten with her own signed event", "deleted"])
def test_the_newest_event_someone_else_signed_cannot_be_replaced_or_deleted_by_the_trainer(
    signed, unique_name, tmp_path, how
):
    _registered(signed, unique_name, tmp_path, versions=2)
    bob = signed.registry("bob")
    bob.promote(unique_name, "v2", "production", reason="reviewed report", override=True)
    bob.rollback(unique_name, reason="v2 answers wrongly")  # event 5, the newest
    before = _event(signed, unique_name, 4)
    if how == "deleted":
        signed.raw("alice").delete_object(Bucket=signed.cfg.bucket, Key=event_key(unique_name, 5))
    else:
        mine = AuditEvent(
            action="register",
            name=unique_name,
            version="v3",
            actor="alice",
            role="trainer",
            reason="x",
            content_sha256="3" * 64,
            seq=5,
            time=before.time,
            prev_sha256=before.sha256,
        )
        _forge(signed, unique_name, "alice", mine, sign_as="alice", overwrite=True)
    with pytest.raises(IntegrityError, match=f"audit/{unique_name}/000000000005.json has"):
        signed.registry("srv").verify(unique_name)  # a machine that never saw event 5
    follower = Follower(signed.registry("srv"), lambda d: object(), [unique_name], poll_seconds=60)
    with pytest.raises(IntegrityError, match="was rewritten"):
        follower.load()  # a freshly started server serves nothing of a rewritten log


def test_a_trainer_forged_archive_of_productions_rollback_target_is_named(signed, unique_name, tmp_path):
    """Review F16: an archive of v1 signed by the trainer would have disabled the rollback to it."""
    _registered(signed, unique_name, tmp_path, versions=2)
    signed.registry("bob").promote(unique_name, "v2", "production", reason="ship v2", override=True)
    head = _event(signed, unique_name, 4)
    forged = AuditEvent(
        action="archive",
        name=unique_name,
        version="v1",
        actor="alice",
        role="trainer",
        reason="old",
        content_sha256=signed.registry("srv").state(unique_name).versions["v1"],
        seq=5,
        time=head.time,
        prev_sha256=head.sha256,
    )
    _forge(signed, unique_name, "alice", forged, sign_as="alice")
    with pytest.raises(IntegrityError, match="role 'trainer' cannot archive v1"):
        signed.registry("srv").verify(unique_name)


def test_an_approver_re_signing_his_own_newest_event_is_named(signed, unique_name, tmp_path):
    """Review F21: the approver's keys may overwrite his own event; the bucket's versions keep the original."""
    _registered(signed, unique_name, tmp_path)
    original = _event(signed, unique_name, 2)
    _forge(signed, unique_name, "bob", replace(original, reason="approved by the board"), sign_as="bob", overwrite=True)
    done = run_cli("audit", "verify", unique_name, env=signed.env("srv"))
    assert done.returncode == 1 and f"audit/{unique_name}/000000000002.json has 2 stored versions" in done.stderr


def test_a_byte_flipped_in_a_stored_file_fails_verify(signed, unique_name, tmp_path):
    """Review F9: `audit verify` passed while `download` refused a corrupted file."""
    _registered(signed, unique_name, tmp_path, promote=False)
    raw, bucket, key = signed.raw("alice"), signed.cfg.bucket, file_key(unique_name, "v1", "adapter_model.safetensors")
    data = bytearray(raw.get_object(Bucket=bucket, Key=key)["Body"].read())
    data[-1] ^= 1
    raw.put_object(Bucket=bucket, Key=key, Body=bytes(data))
    done = run_cli("audit", "verify", unique_name, env=signed.env("srv"))
    assert done.returncode == 1 and "adapter_model.safetensors" in done.stderr, done.stderr


def test_replaced_weights_with_a_resealed_manifest_are_named(signed, unique_name, tmp_path):
    _registered(signed, unique_name, tmp_path)
    raw, bucket = signed.raw("alice"), signed.cfg.bucket
    weights = np.random.default_rng(7).standard_normal(64).astype(np.float32).tobytes()
    raw.put_object(Bucket=bucket, Key=file_key(unique_name, "v1", "adapter_model.safetensors"), Body=weights)
    key = file_key(unique_name, "v1", "manifest.json")
    manifest = json.loads(raw.get_object(Bucket=bucket, Key=key)["Body"].read())
    manifest["files"]["adapter_model.safetensors"] = {
        "sha256": __import__("hashlib").sha256(weights).hexdigest(),
        "size": len(weights),
    }
    manifest["content_sha256"] = canonical_sha256({k: v for k, v in manifest.items() if k != "content_sha256"})
    raw.put_object(Bucket=bucket, Key=key, Body=json.dumps(manifest).encode())
    done = run_cli("audit", "verify", unique_name, env=signed.env("srv"))
    assert done.returncode == 1 and "manifest was replaced" in done.stderr
    with pytest.raises(IntegrityError):
        signed.registry("srv").download(unique_name, "production", tmp_path / "dl")


def test_only_an_admin_writes_the_keyring_and_names_are_ascii(signed):
    with pytest.raises(Exception, match="AccessDenied"):
        signed.raw("alice").put_object(Bucket=signed.cfg.bucket, Key="keys/000000000099.json", Body=b"{}")
    with pytest.raises(AccessDeniedError):
        S3ObjectStore(signed.settings("bob")).put("adapters/x/claims/v1.json", b"{}")
    lookalike = run_cli("user", "add", "\u0430lice", "--role", "approver", env=signed.env("root"))
    assert lookalike.returncode == 1 and "look-alike" in lookalike.stderr
    not_admin = run_cli("user", "add", "mallory", "--role", "approver", env=signed.env("alice"))
    assert not_admin.returncode == 1 and "only an admin changes the keyring" in not_admin.stderr


def test_user_add_that_cannot_issue_store_keys_publishes_nothing(signed, tmp_path):
    """Review 28 item 7: on another S3 server without --access-key, the key was published and its private half lost."""
    out = tmp_path / "dave.json"
    env = signed.env("root", TAILOR_ENDPOINT=signed.cfg.endpoint)
    refused = run_cli("user", "add", "dave", "--role", "trainer", "--out", str(out), env=env)
    assert refused.returncode == 2 and "--access-key/--secret-key" in refused.stderr, refused.stderr
    assert "dave" not in signed.registry("srv").keyring().people and not list(tmp_path.iterdir())


def test_a_person_makes_their_own_key_and_the_admin_never_holds_it(signed, unique_name, tmp_path):
    """Review 28 item 3: the admin generated and kept every person's private signing key."""
    made = run_cli("user", "keygen", "erin", "--out", str(tmp_path / "erin.key"), "--json", env=signed.env())
    assert made.returncode == 0, made.stderr
    public = json.loads(made.stdout)["public_key"]
    assert (tmp_path / "erin.key").stat().st_mode & 0o777 == 0o600
    added = run_cli(
        "user",
        "add",
        "erin",
        "--role",
        "trainer",
        "--public-key",
        public,
        "--out",
        str(tmp_path / "erin.json"),
        env=signed.env("root"),
    )
    assert added.returncode == 0, added.stderr
    assert (
        json.loads((tmp_path / "erin.json").read_text(encoding="utf-8"))["signing_key"] == ""
    )  # nothing private in the admin's file
    signed.creds["erin"] = tmp_path / "erin.json"  # beside erin.key, as erin keeps them
    signed.registry("erin").register(_gated_folder(tmp_path / "a", seed=1), unique_name, reason="batch 1")
    assert [(e.actor, e.role) for e in signed.registry("srv").events(unique_name)] == [("erin", "trainer")]


def test_a_gate_decision_copied_from_another_adapter_is_refused(signed, unique_name, tmp_path):
    gated, evil = _gated_folder(tmp_path / "gated", seed=1), make_adapter_folder(tmp_path / "evil", BASE, seed=2)
    (evil / "gate_decision.json").write_bytes((gated / "gate_decision.json").read_bytes())
    with pytest.raises(RefusedError, match="judged other weights .* copied from another adapter"):
        signed.registry("alice").register(evil, unique_name)
    # A decision that names no weights (an older Tailor, or removed by hand) is refused where events are signed.
    (evil / "gate_decision.json").write_text(json.dumps(passed_gate(None)))
    with pytest.raises(RefusedError, match="does not name the weights it judged"):
        signed.registry("alice").register(evil, unique_name)


def test_a_junk_claim_far_ahead_cannot_push_the_next_version_past_its_format(signed, unique_name, tmp_path):
    signed.raw("alice").put_object(
        Bucket=signed.cfg.bucket, Key=f"adapters/{unique_name}/claims/v999999999.json", Body=b"junk"
    )
    _registered(signed, unique_name, tmp_path, promote=False)
    assert signed.registry("srv").verify(unique_name).versions == ["v1"]


@pytest.mark.parametrize("junk", [b"not json", b"{}"])
def test_junk_at_the_head_freezes_nothing_an_admin_cannot_clear_on_the_record(signed, unique_name, tmp_path, junk):
    import datetime as dt

    _registered(signed, unique_name, tmp_path, versions=2, promote=False)
    until = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)
    signed.raw("alice").put_object(
        Bucket=signed.cfg.bucket,
        Key=event_key(unique_name, 3),
        Body=junk,
        ObjectLockMode="COMPLIANCE",
        ObjectLockRetainUntilDate=until,
    )
    with pytest.raises(IntegrityError, match="000000000003"):
        signed.registry("bob").promote(unique_name, "v1", "production", reason="ship")
    refused = run_cli("audit", "clear", unique_name, "--reason", "junk", env=signed.env("bob"))
    assert refused.returncode == 1 and "may not clear" in refused.stderr
    done = run_cli("audit", "clear", unique_name, "--reason", "junk from a trainer's script", env=signed.env("root"))
    assert done.returncode == 0, done.stderr
    signed.registry("bob").promote(unique_name, "v1", "production", reason="ship")
    result = signed.registry("srv").verify(unique_name)
    assert result.aliases == {"production": "v1"} and result.signed == 4
    assert any("root cleared an object: junk from a trainer's script" in line for line in result.to_review)


def test_the_independent_verifier_agrees_with_tailor(signed, unique_name, tmp_path):
    import subprocess
    import sys

    from tests.conftest import REPO

    _registered(signed, unique_name, tmp_path)
    raw, copy = signed.raw("srv"), tmp_path / "copy"
    for prefix in ("keys/", f"audit/{unique_name}/"):
        for obj in raw.list_objects_v2(Bucket=signed.cfg.bucket, Prefix=prefix)["Contents"]:
            target = copy / obj["Key"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(raw.get_object(Bucket=signed.cfg.bucket, Key=obj["Key"])["Body"].read())
    script = [sys.executable, str(REPO / "docs" / "verify_audit_log.py"), str(copy), unique_name, signed.trust_root]
    done = subprocess.run(script, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "promote v1 signed by bob (approver)" in done.stdout
    event = json.loads((copy / event_key(unique_name, 2)).read_bytes())
    event["actor"] = "carol"
    event["sha256"] = canonical_sha256({k: v for k, v in event.items() if k != "sha256"})
    (copy / event_key(unique_name, 2)).write_text(json.dumps(event))
    done = subprocess.run(script, capture_output=True, text=True)
    assert done.returncode == 1 and "000000000002.json: its signature does not hold" in done.stderr


def test_concurrent_rollbacks_naming_the_version_they_replace_step_back_once(signed, unique_name, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    _registered(signed, unique_name, tmp_path, versions=3)
    bob = signed.registry("bob")
    for version in ("v2", "v3"):
        bob.promote(unique_name, version, "production", reason=f"ship {version}", override=True)

    def rollback(_):
        try:
            return signed.registry("bob").rollback(unique_name, reason="on call", expect="v3").alias_after
        except RefusedError as err:
            return str(err)

    with ThreadPoolExecutor(max_workers=5) as pool:
        outcomes = list(pool.map(rollback, range(5)))
    assert outcomes.count("v2") == 1 and sum("moved meanwhile" in o for o in outcomes) == 4, outcomes
    assert signed.registry("srv").verify(unique_name).aliases == {"production": "v2"}


def test_an_object_written_without_lock_headers_cannot_be_erased_without_trace(signed, unique_name):
    key, raw, bucket = f"audit/{unique_name}/000000000001.json", signed.raw("alice"), signed.cfg.bucket
    raw.put_object(Bucket=bucket, Key=key, Body=b"{}")
    admin = S3ObjectStore(seaweedfs.admin_settings(signed.cfg)).client
    version = admin.list_object_versions(Bucket=bucket, Prefix=key)["Versions"][0]["VersionId"]
    with pytest.raises(Exception, match="AccessDenied"):
        raw.delete_object(Bucket=bucket, Key=key, VersionId=version)
    raw.delete_object(Bucket=bucket, Key=key)  # a delete marker hides it; its version stays
    assert [v["VersionId"] for v in admin.list_object_versions(Bucket=bucket, Prefix=key)["Versions"]] == [version]


@pytest.fixture()
def checkpointed(signed, unique_name, tmp_path, monkeypatch) -> str:
    """A log of 6 events with checkpoints every 4: bob's at event 4 (his promotion)."""
    monkeypatch.setattr("registry.audit.log.CHECKPOINT_EVERY", 4)
    _registered(signed, unique_name, tmp_path, versions=3)  # events 1-4
    bob = signed.registry("bob")
    bob.promote(unique_name, "v2", "staging", reason="try v2")
    bob.promote(unique_name, "v3", "staging", reason="try v3")
    return unique_name


def _kid(signed: SignedStore, who: str) -> str:
    c = read_credentials(signed.creds[who])
    return Signer(c.name, c.role, c.signing_key).key_id


def _events_read(registry: Registry) -> list[str]:
    """Spy on the keys ``registry`` GETs from now on."""
    read: list[str] = []
    real = registry.store.get

    def get(key, **kw):
        read.append(key)
        return real(key, **kw)

    registry.store.get = get
    return read


def test_a_cold_promote_replays_only_the_events_after_the_promoters_checkpoint(signed, checkpointed):
    name = checkpointed
    assert signed.raw("srv").list_objects_v2(Bucket=signed.cfg.bucket, Prefix=f"checkpoints/{name}/")["KeyCount"] == 1
    cold = signed.registry("bob")  # a fresh process: no cache
    read = _events_read(cold)
    cold.promote(name, "v1", "staging", reason="back to v1")
    assert not {event_key(name, seq) for seq in (1, 2, 3)} & set(read)
    assert checkpoint_key(name, 4, _kid(signed, "bob")) in read
    assert signed.registry("srv").verify(name).aliases == {"production": "v1", "staging": "v1"}


def test_forged_stale_and_misplaced_checkpoints_are_named_and_ignored(signed, checkpointed):
    name = checkpointed
    raw, bucket = signed.raw("alice"), signed.cfg.bucket
    alice, bob = signed.registry("alice"), signed.registry("bob")
    truth = signed.registry("srv").state(name)
    # alice's own lie: v3 registered by bob, so that bob could not promote it to production.
    lie = replace(truth, registered_by={**truth.registered_by, "v3": "bob"})
    lie_key = write_checkpoint(alice.store, lie, alice.log.signer)
    # the same lie, claimed to be bob's: the signature cannot hold
    forged = json.loads(raw.get_object(Bucket=bucket, Key=lie_key)["Body"].read())
    forged_key = checkpoint_key(name, 6, _kid(signed, "bob"))
    raw.put_object(Bucket=bucket, Key=forged_key, Body=json.dumps({**forged, "key_id": _kid(signed, "bob")}))
    # bob's true checkpoint of event 4 copied to event 6, under the admin's key id
    misplaced_key = checkpoint_key(name, 6, _kid(signed, "root"))
    good = raw.get_object(Bucket=bucket, Key=checkpoint_key(name, 4, _kid(signed, "bob")))["Body"].read()
    raw.put_object(Bucket=bucket, Key=misplaced_key, Body=good)
    # signed by bob's key on a machine that saw another event 5
    stale = replace(truth, head_seq=5, head_sha256="e" * 64)
    stale_key = write_checkpoint(bob.store, stale, bob.log.signer)
    raw.put_object(Bucket=bucket, Key=f"checkpoints/{name}/junk.json", Body=b"{}")

    cold = signed.registry("bob")
    read = _events_read(cold)
    assert cold.state(name) == truth
    assert not {event_key(name, seq) for seq in (1, 2, 3)} & set(read)  # started from bob's event 4
    ignored = "\n".join(cold.log.checkpoints.ignored)
    assert f"{lie_key} ignored: signed by alice (trainer)" in ignored
    assert f"{forged_key} ignored: its signature does not hold" in ignored
    assert f"{misplaced_key} ignored: it records event 4" in ignored
    assert f"{stale_key} ignored: event 000000000005 of the log is not the one it records" in ignored
    assert f"checkpoints/{name}/junk.json ignored" in ignored

    review = "\n".join(signed.registry("srv").verify(name).to_review)
    for key in (lie_key, forged_key, misplaced_key, stale_key, f"checkpoints/{name}/junk.json"):
        assert key in review
    assert checkpoint_key(name, 4, _kid(signed, "bob")) not in review


@pytest.mark.slow
def test_tailor_serve_on_a_signed_store_answers_and_refuses_a_forged_promotion_over_http(signed, unique_name, tmp_path):
    """The real server process, as the `srv` service (pinned to the trust root in its credentials
    file): ready, answering v1; a promotion of v2 that alice writes with her own store and signing
    keys is refused, v1 keeps answering and /healthz says why."""
    # Only this test trains and serves: the model stack is not imported for the others.
    from pipelines.records import LabeledBatch
    from pipelines.settings import load_settings
    from pipelines.training.params import TrainParams
    from pipelines.training.recipe import train
    from serving.model import load_base
    from tests.conftest import TAILOR
    from tests.serve_process import start_serve

    settings = load_settings()
    base = load_base(settings.base_model_dir, model_id=settings.base_model_id, cache_dir=tmp_path / "fingerprint")
    texts = ["refund my payment", "charged twice", "the app crashes", "error on save"]
    batch = LabeledBatch(source="t", texts=texts, labels=["billing"] * 2 + ["bug"] * 2, ids=["1", "2", "3", "4"])
    params = TrainParams(min_steps=2, max_steps=2, noise_filter="none", select="lora")
    folder = Path(train(batch, tmp_path / "adapter", base=base, params=params, seed=1).adapter_dir)
    decision = {**passed_gate(None), "adapter_sha256": file_sha256(folder / "adapter_model.safetensors")}
    (folder / "gate_decision.json").write_text(json.dumps(decision))

    def registry(who: str) -> Registry:
        return Registry(S3ObjectStore(signed.settings(who)), signed.settings(who), base_model=base.fingerprint)

    registry("alice").register(folder, unique_name, reason="batch 1")
    registry("alice").register(folder, unique_name, reason="batch 2")
    registry("bob").promote(unique_name, "v1", "production", reason="reviewed report")

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    args = [TAILOR, "serve", "--name", unique_name, "--port", str(port), "--poll-seconds", "0.5"]
    proc = start_serve(args, url, signed.env("srv"), tmp_path)
    try:
        assert httpx.get(f"{url}/healthz").json()["status"] == "ok"
        answer = httpx.post(f"{url}/predict", json={"texts": ["refund the charge"]})
        assert answer.status_code == 200 and answer.json()["version"] == "v1"

        head = _event(signed, unique_name, 3)
        forged = AuditEvent(
            action="promote",
            name=unique_name,
            version="v2",
            actor="alice",
            role="trainer",
            reason="ship it",
            content_sha256=registry("srv").state(unique_name).versions["v2"],
            alias="production",
            alias_before="v1",
            alias_after="v2",
            gate=_event(signed, unique_name, 2).gate,
            policy_sha256=head.policy_sha256,
            seq=4,
            time=head.time,
            prev_sha256=head.sha256,
        )
        _forge(signed, unique_name, "alice", forged, sign_as="alice")

        deadline = time.monotonic() + 30
        while (health := httpx.get(f"{url}/healthz").json())["status"] == "ok":
            assert time.monotonic() < deadline, "the forged promotion never showed in /healthz"
            time.sleep(0.3)
        assert health["status"] == "degraded"
        failure = health["adapters"][0]["failure"]["error"]
        assert "refused: the audit history" in failure and "event 000000000004" in failure, failure
        assert "still serving v1" in failure
        answer = httpx.post(f"{url}/predict", json={"texts": ["refund the charge"]})
        assert answer.status_code == 200 and answer.json()["version"] == "v1"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
