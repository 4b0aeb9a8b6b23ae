"""The embedded store's identities file holds every role's secret keys: like a person's credentials
file, it is refused when the group or others may read it, wherever it is read."""

from __future__ import annotations

import pytest

from pipelines.servers import seaweedfs_identities
from pipelines.settings import load_settings
from registry.errors import ConfigError


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660])
def test_an_identities_file_others_may_read_is_refused_by_every_reader(tmp_path, monkeypatch, mode):
    path = seaweedfs_identities.ensure_identities(tmp_path / "identities.json", "tailor")
    assert path.stat().st_mode & 0o777 == 0o600
    path.chmod(mode)
    with pytest.raises(ConfigError, match=rf"may be read by other users \(mode {mode:o}\).*chmod 600 {path}"):
        seaweedfs_identities.read_identities(path)
    with pytest.raises(ConfigError, match="may be read by other users"):
        seaweedfs_identities.ensure_identities(path, "tailor")  # `tailor store start` would not serve it
    monkeypatch.setenv("TAILOR_CREDENTIALS_FILE", str(path))
    monkeypatch.setenv("TAILOR_ROLE", "reader")
    with pytest.raises(ConfigError, match="may be read by other users"):
        load_settings().store()
    path.chmod(0o600)
    assert set(seaweedfs_identities.read_identities(path)) >= {"admin", "trainer", "approver", "reader"}
