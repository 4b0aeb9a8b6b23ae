"""The embedded store's free ports and status, which probe loopback ports for a listening server."""

import shutil

import pytest

from pipelines.servers import seaweedfs
from pipelines.servers.seaweedfs import EmbeddedStoreConfig


def test_free_ports_avoid_the_ephemeral_range_and_never_collide_with_a_twin(tmp_path):
    for _ in range(50):
        ports = EmbeddedStoreConfig.on_free_ports(tmp_path).ports()
        assert len(set(ports)) == 8
        assert all(1024 < p < 32768 for p in ports)


@pytest.mark.parametrize(
    ("free_gib", "total_gib", "low"), [(0.9, 10, True), (1.5, 100, True), (3, 100, False), (1.1, 10, False)]
)
def test_status_calls_the_disk_low_under_1_gib_or_2_percent_free(tmp_path, monkeypatch, free_gib, total_gib, low):
    # SeaweedFS turns its volumes read-only under 1 % free, and then writes hang instead of failing.
    usage = shutil._ntuple_diskusage(int(total_gib * 2**30), int((total_gib - free_gib) * 2**30), int(free_gib * 2**30))
    seen = []
    monkeypatch.setattr(seaweedfs.shutil, "disk_usage", lambda path: seen.append(path) or usage)
    cfg = EmbeddedStoreConfig.on_free_ports(tmp_path / "not" / "made")
    current = seaweedfs.status(cfg)
    assert (current.disk_free_bytes, current.disk_low) == (usage.free, low)
    assert seen == [tmp_path]  # the folder that will hold the data, before it exists
