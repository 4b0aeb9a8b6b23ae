"""A `tailor base add` stopped part way (simulated: the store fails at one upload) is finished by the
same add run again, against the real SeaweedFS; another folder under that name stays refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import registry.base_models as base_models
from registry.base_manifest import blob_key, log_name, manifest_key, pending_key
from registry.base_models import BaseModels
from registry.errors import IntegrityError, NotFoundError, StoreError
from registry.registry import Registry
from registry.store import S3ObjectStore
from tests.conftest import run_cli
from tests.tiny_encoders import build

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return build("bert", tmp_path_factory.mktemp("base") / "tiny-bert")


def _own(tiny: Path, dest: Path, note: str) -> Path:
    """A copy of ``tiny`` with one file no other test stores: its upload is one this add really makes."""
    folder = Path(shutil.copytree(tiny, dest))
    (folder / "special_tokens_map.json").write_text(json.dumps({"unk_token": "[UNK]", "note": note}))
    return folder


def _stopping_at(monkeypatch, stop_key: str) -> None:
    real = base_models.put_kept

    def put_kept(store, key, data):
        if key == stop_key:
            raise StoreError("cannot reach the object store (connection reset)")  # the add dies here
        real(store, key, data)

    monkeypatch.setattr(base_models, "put_kept", put_kept)


def _bases(s3_server, role: str = "trainer") -> BaseModels:
    settings = s3_server.settings(role, "alice")
    return BaseModels(Registry(S3ObjectStore(settings), settings))


def test_an_add_stopped_after_its_event_is_finished_by_the_same_add_and_another_folder_is_refused(
    s3_server,
    tiny,
    unique_name,
    tmp_path,
    monkeypatch,
):
    folder = _own(tiny, tmp_path / "model", unique_name)
    with monkeypatch.context() as mp:
        _stopping_at(mp, manifest_key(unique_name))
        with pytest.raises(StoreError):
            _bases(s3_server).add(folder, unique_name, model_id=unique_name)
    [event] = _bases(s3_server).registry.log.events(log_name(unique_name))
    with pytest.raises(NotFoundError, match="run the same `tailor base add` again, with the folder it was added from"):
        _bases(s3_server).manifest(unique_name)

    env = s3_server.env(TAILOR_ROLE="trainer", TAILOR_ACTOR="alice")
    other = run_cli("base", "add", str(_own(tiny, tmp_path / "other", "other")), "--name", unique_name, env=env)
    assert other.returncode == 1, other.stdout
    assert f"base model '{unique_name}' was added from other files" in other.stderr
    assert "run it again with the folder it was started from" in other.stderr

    again = run_cli("base", "add", str(folder), "--name", unique_name, "--json", env=env)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["content_sha256"] == event.content_sha256
    assert len(_bases(s3_server).registry.log.events(log_name(unique_name))) == 1  # no second event
    _, fetched = _bases(s3_server, "reader").fetch(unique_name, tmp_path / "cache")
    assert (fetched / "special_tokens_map.json").read_bytes() == (folder / "special_tokens_map.json").read_bytes()


def test_an_add_stopped_mid_upload_is_finished_and_a_replaced_pending_record_is_refused(
    s3_server,
    tiny,
    unique_name,
    tmp_path,
    monkeypatch,
):
    folder = _own(tiny, tmp_path / "model", unique_name)
    own_blob = blob_key(base_models.file_sha256(folder / "special_tokens_map.json"))
    with monkeypatch.context() as mp:
        _stopping_at(mp, own_blob)
        with pytest.raises(StoreError):
            _bases(s3_server).add(folder, unique_name, model_id=unique_name)
    assert _bases(s3_server).registry.log.events(log_name(unique_name)) == []  # stopped before its event
    assert _bases(s3_server).add(folder, unique_name, model_id=unique_name).files["special_tokens_map.json"]

    # An add stopped after its event whose pending record was then replaced: not finished from it.
    broken = f"{unique_name}-p"
    with monkeypatch.context() as mp:
        _stopping_at(mp, manifest_key(broken))
        with pytest.raises(StoreError):
            _bases(s3_server).add(folder, broken, model_id=broken)
    [event] = _bases(s3_server).registry.log.events(log_name(broken))
    key = pending_key(broken, event.content_sha256)
    raw = json.loads(S3ObjectStore(s3_server.settings("admin")).get(key))
    S3ObjectStore(s3_server.settings("admin")).put(key, json.dumps({**raw, "license": "mit"}).encode())
    with pytest.raises(IntegrityError, match=f"{key} was modified"):
        _bases(s3_server).add(folder, broken, model_id=broken)
