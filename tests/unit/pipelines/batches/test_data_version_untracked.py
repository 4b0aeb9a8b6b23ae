"""A batch outside any DVC repository gets its md5 as data version without DVC being imported (about a
second of a retrain's validate step)."""

import sys

from pipelines.batches.data_version import dvc_md5, track
from registry.settings import StoreSettings


def test_a_batch_outside_a_dvc_repository_is_versioned_without_importing_dvc(tmp_path, monkeypatch):
    for name in ("dvc.repo", "dvc.output", "dvc.exceptions"):
        monkeypatch.setitem(sys.modules, name, None)  # an import of it now raises ImportError
    batch = tmp_path / "batch.csv"
    batch.write_text("id,text,label\n1,hello,greet\n", encoding="utf-8")
    store = StoreSettings(endpoint=None, bucket="b", access_key="k", secret_key="s", role="trainer", actor="t")
    tracked = track(batch, store, project=tmp_path)
    assert (tracked.md5, tracked.dvc_file, tracked.pushed) == (dvc_md5(batch), None, False)
    assert "is not inside a DVC repository" in tracked.note
