"""Base models as registered artifacts: `tailor base add|list`, and base_model = NAME fetched by
sha256 into the Tailor home, against the real SeaweedFS (tiny random-weight encoders built here)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pipelines.batches.read import read_batch
from pipelines.policy import DataPolicy
from pipelines.settings import load_settings
from pipelines.training.params import TrainParams
from pipelines.training.recipe import train
from registry.base_manifest import blob_key, log_name
from registry.base_models import BaseModels
from registry.fingerprint import base_model_fingerprint
from registry.registry import Registry
from registry.store import S3ObjectStore
from serving.model import load_base
from tests.conftest import run_cli
from tests.registry_helpers import run_cli_parallel
from tests.tiny_encoders import DATA, build

BATCH_LIMIT = DataPolicy().max_file_bytes  # the shipped policy's data.max_file_mb

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return build("bert", tmp_path_factory.mktemp("base") / "tiny-bert")


@pytest.fixture(scope="module")
def other_tiny(tmp_path_factory) -> Path:
    return build("bert", tmp_path_factory.mktemp("base") / "tiny-bert-seed1", seed=1)


def _copy(src: Path, dest: Path) -> Path:
    return Path(shutil.copytree(src, dest))


def _settings(s3_server, monkeypatch, **extra: str):
    for key, value in s3_server.env(**extra).items():
        if key.startswith("TAILOR_"):
            monkeypatch.setenv(key, value)
    return load_settings()


def test_an_added_base_is_listed_and_trains_by_name_with_the_folders_fingerprint(
    s3_server, tiny, unique_name, monkeypatch, tmp_path
):
    env = s3_server.env(TAILOR_ROLE="trainer", TAILOR_ACTOR="alice")
    added = run_cli(
        "base",
        "add",
        str(tiny),
        "--name",
        unique_name,
        "--license",
        "apache-2.0",
        "--languages",
        "ja,en",
        "--source",
        "https://huggingface.co/example/tiny",
        "--json",
        env=env,
    )
    assert added.returncode == 0, added.stderr
    manifest = json.loads(added.stdout)
    expected = base_model_fingerprint(tiny, unique_name)
    assert manifest["fingerprint"]["weights_sha256"] == expected.weights_sha256
    assert manifest["model_id"] == unique_name  # the tiny config names no hub id: the registered name labels it
    assert manifest["languages"] == ["ja", "en"] and manifest["license"] == "apache-2.0"
    assert manifest["files"]["model.safetensors"]["size"] == (tiny / "model.safetensors").stat().st_size
    # Content-addressed: each file lies under its sha256; the add is an audit event of its own log.
    admin = S3ObjectStore(s3_server.settings("admin"))
    sha = manifest["files"]["model.safetensors"]["sha256"]
    assert admin.get(blob_key(sha), max_bytes=1 << 30) == (tiny / "model.safetensors").read_bytes()
    registry = Registry(admin, s3_server.settings("admin"))
    events = registry.log.events(log_name(unique_name))
    assert [(e.action, e.actor, e.content_sha256) for e in events] == [
        ("register", "alice", manifest["content_sha256"])
    ]
    # Adding the same bytes again changes nothing.
    again = run_cli("base", "add", str(tiny), "--name", unique_name, env=env)
    assert again.returncode == 0, again.stderr
    assert len(registry.log.events(log_name(unique_name))) == 1

    listed = run_cli("base", "list", "--json", env=s3_server.env(TAILOR_ROLE="reader", TAILOR_ACTOR="rita"))
    assert listed.returncode == 0, listed.stderr
    assert unique_name in [m["name"] for m in json.loads(listed.stdout)]

    settings = _settings(s3_server, monkeypatch, TAILOR_ROLE="reader", TAILOR_BASE_MODEL=unique_name)
    folder, model_id = settings.resolve_base()
    assert folder.is_relative_to(s3_server.home / "bases") and model_id == unique_name
    base = load_base(settings.base_model_dir, model_id=settings.model_id_of(None), cache_dir=settings.home)
    assert base.fingerprint == expected
    result = train(
        read_batch(DATA / "sample_ja" / "train.csv", max_bytes=BATCH_LIMIT),
        tmp_path / "adapter",
        base=base,
        params=TrainParams(min_steps=2, max_steps=2, noise_filter="none", max_length=32),
    )
    assert result.base_model_id == unique_name
    trained = json.loads((tmp_path / "adapter" / "tailor_adapter.json").read_text(encoding="utf-8"))
    assert trained["base_model_weights_sha256"] == expected.weights_sha256


def test_a_tampered_cache_file_is_refused_and_fetched_again(s3_server, tiny, unique_name, monkeypatch):
    trainer = s3_server.settings("trainer", "alice")
    BaseModels(Registry(S3ObjectStore(trainer), trainer)).add(tiny, unique_name, model_id=unique_name)
    folder, _ = _settings(s3_server, monkeypatch, TAILOR_BASE_MODEL=unique_name).resolve_base()
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01
    weights.write_bytes(bytes(data))
    (folder / "vocab.txt").unlink(missing_ok=True)
    (folder / "tokenizer.json").write_text("{}")
    again, _ = _settings(s3_server, monkeypatch, TAILOR_BASE_MODEL=unique_name).resolve_base()
    assert again == folder
    assert weights.read_bytes() == (tiny / "model.safetensors").read_bytes()
    assert (folder / "tokenizer.json").read_bytes() == (tiny / "tokenizer.json").read_bytes()


def test_a_tampered_stored_file_is_refused(s3_server, tiny, unique_name, monkeypatch, tmp_path):
    # Its own bytes: the blob of a file no other test stores.
    folder = _copy(tiny, tmp_path / "own")
    (folder / "special_tokens_map.json").write_text(json.dumps({"unk_token": "[UNK]", "note": unique_name}))
    trainer = s3_server.settings("trainer", "alice")
    manifest = BaseModels(Registry(S3ObjectStore(trainer), trainer)).add(folder, unique_name, model_id=unique_name)
    admin = S3ObjectStore(s3_server.settings("admin"))
    admin.put(blob_key(manifest.files["special_tokens_map.json"].sha256), b'{"unk_token": "[PAD]", "note": "x"}')
    result = run_cli(
        "train",
        "--data",
        str(DATA / "sample_ja" / "train.csv"),
        "--out",
        str(tmp_path / "a"),
        "--base-model",
        unique_name,
        env=s3_server.env(TAILOR_ROLE="trainer"),
    )
    assert result.returncode == 1
    assert f"base model '{unique_name}': stored file special_tokens_map.json is corrupted" in result.stderr


def test_every_refused_add_says_why_and_registers_nothing(s3_server, tiny, other_tiny, unique_name, tmp_path):
    trainer = s3_server.settings("trainer", "alice")
    BaseModels(Registry(S3ObjectStore(trainer), trainer)).add(tiny, unique_name, model_id=unique_name)
    pickled = _copy(tiny, tmp_path / "pickled")
    (pickled / "pytorch_model.bin").write_bytes(b"\x80\x04K\x01.")
    remote = _copy(tiny, tmp_path / "remote")
    config = json.loads((remote / "config.json").read_text(encoding="utf-8"))
    (remote / "config.json").write_text(json.dumps({**config, "auto_map": {"AutoModel": "modeling_x.TinyModel"}}))
    code = _copy(tiny, tmp_path / "code")
    (code / "modeling_x.py").write_text("import os\n")
    env = s3_server.env(TAILOR_ROLE="trainer", TAILOR_ACTOR="alice")
    fresh = f"{unique_name}-b"
    cases = [
        ([str(pickled), "--name", fresh], "holds pickle files (pytorch_model.bin)"),
        ([str(remote), "--name", fresh], "needs remote code (auto_map in config.json)"),
        ([str(code), "--name", fresh], "holds Python files (modeling_x.py)"),
        (
            [str(other_tiny), "--name", unique_name],
            f"base model '{unique_name}' is registered already with other files",
        ),
        ([str(tmp_path / "nowhere"), "--name", fresh], f"base model folder {tmp_path / 'nowhere'} does not exist"),
        ([str(tiny), "--name", "../up"], "base model name '../up' is refused"),
        ([str(tiny), "--name", fresh, "--languages", "ja,,en"], "'' is not a language tag"),
        ([str(tiny), "--name", fresh, "--languages", "japanese"], "'japanese' is not a language tag"),
        ([str(tiny), "--name", fresh, "--source", "ftp://x"], "--source must be an http:// or https:// URL"),
    ]
    reader = s3_server.env(TAILOR_ROLE="reader", TAILOR_ACTOR="rita")
    results = run_cli_parallel(
        [(["base", "add", *args], env) for args, _ in cases] + [(["base", "add", str(tiny), "--name", fresh], reader)]
    )
    for (_, message), result in zip(cases + [(None, "role 'reader' may only read")], results):
        assert result.returncode == 1 and message in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    admin = Registry(S3ObjectStore(s3_server.settings("admin")), s3_server.settings("admin"))
    assert admin.log.events(log_name(fresh)) == []
    assert len(admin.log.events(log_name(unique_name))) == 1
    missing = run_cli(
        "train",
        "--data",
        str(DATA / "sample_ja" / "train.csv"),
        "--out",
        str(tmp_path / "a"),
        "--base-model",
        "no-such-base",
        env=env,
    )
    assert missing.returncode == 1
    assert "no base model folder 'no-such-base' and no registered base model of that name" in missing.stderr


def test_a_registered_name_without_a_store_says_where_it_is_read_from(tmp_path, monkeypatch):
    from registry.errors import ConfigError

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TAILOR_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TAILOR_BASE_MODEL", "ruri-v3-30m")
    settings = load_settings()
    with pytest.raises(
        ConfigError,
        match=r"base model 'ruri-v3-30m' is no folder here, so it names a base registered "
        r"with `tailor base add`, which is read from the store: credentials_file",
    ):
        settings.base_model_dir  # noqa: B018 - the property fetches
