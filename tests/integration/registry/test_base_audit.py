"""`tailor audit log|verify` on a registered base's log (`base:NAME` or `_base.NAME`), against the real SeaweedFS."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from registry.audit.events import event_key
from registry.base_manifest import log_name
from registry.base_models import BaseModels
from registry.registry import Registry
from registry.store import S3ObjectStore
from tests.conftest import run_cli
from tests.tiny_encoders import build

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return build("bert", tmp_path_factory.mktemp("base") / "tiny-bert")


def test_audit_log_and_verify_read_a_base_log_by_either_name_and_name_a_tampered_event(s3_server, tiny, unique_name):
    trainer = s3_server.settings("trainer", "alice")
    BaseModels(Registry(S3ObjectStore(trainer), trainer)).add(tiny, unique_name, model_id=unique_name)
    reader = s3_server.env(TAILOR_ROLE="reader", TAILOR_ACTOR="rita")

    shown = run_cli("audit", "log", f"base:{unique_name}", "--json", env=reader)
    assert shown.returncode == 0, shown.stderr
    assert [(e["action"], e["name"], e["actor"]) for e in json.loads(shown.stdout)] == [
        ("register", log_name(unique_name), "alice")
    ]
    proven = run_cli("audit", "verify", log_name(unique_name), env=reader)
    assert proven.returncode == 0, proven.stderr
    assert f"audit log of '_base.{unique_name}' verified: 1 events" in proven.stdout and ", 1 versions" in proven.stdout

    no_v2 = run_cli("audit", "log", f"base:{unique_name}", "--version", "v2", env=reader)
    assert no_v2.returncode == 1 and "has no version v2 (see `tailor base list`)" in no_v2.stderr
    missing = run_cli("audit", "verify", f"base:{unique_name}-never", env=reader)
    assert missing.returncode == 1 and f"no base model '{unique_name}-never' was ever added" in missing.stderr
    bad = run_cli("audit", "log", "base:../etc", env=reader)
    assert bad.returncode == 1 and "base model name '../etc' is refused" in bad.stderr

    admin = S3ObjectStore(s3_server.settings("admin"))
    key = event_key(log_name(unique_name), 1)
    original = admin.get(key)
    raw = json.loads(original)
    raw["actor"] = "mallory"
    admin.put(key, json.dumps(raw).encode())  # a new object version over the locked one

    try:
        for command in ("log", "verify"):
            tampered = run_cli("audit", command, f"base:{unique_name}", env=reader)
            assert tampered.returncode == 1, tampered.stdout
            assert f"event 000000000001 of '_base.{unique_name}' was modified" in tampered.stderr, tampered.stderr
        # `tailor base list` refuses while any base on the bucket is tampered, and the bucket is shared.
        refused = run_cli("base", "list", "--json", env=reader)
        assert refused.returncode == 1 and f"'_base.{unique_name}'" in refused.stderr, refused.stderr
    finally:
        admin.put(key, original)  # the other tests share this bucket: put the event back as it was written
