"""Base-model folders are refused when unsafe, and identified by content, not path."""

import json
import shutil

import pytest

from pipelines.settings import load_settings
from registry.errors import ConfigError, NotFoundError, RefusedError
from registry.fingerprint import base_model_fingerprint
from serving.encoder import check_model_dir


@pytest.fixture(scope="module")
def base_dir():
    return load_settings().base_model_dir


def test_a_folder_that_needs_remote_code_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"auto_map": {"AutoModel": "x.Model"}}))
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(RefusedError, match="needs remote code"):
        check_model_dir(tmp_path)


def test_a_folder_without_a_tokenizer_vocabulary_is_refused(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(NotFoundError, match="has no tokenizer vocabulary"):
        check_model_dir(tmp_path)
    (tmp_path / "config.json").write_text("[]")
    with pytest.raises(ConfigError, match="is not a JSON object"):
        check_model_dir(tmp_path)


def test_a_folder_with_only_pickle_weights_is_refused(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "pytorch_model.bin").write_bytes(b"\x80\x04")
    with pytest.raises(RefusedError, match="only pickle weights \\(pytorch_model.bin\\)"):
        check_model_dir(tmp_path)


@pytest.mark.parametrize("make", ["nothing", "no-config", "no-weights"])
def test_missing_folder_config_or_weights_are_named(tmp_path, make):
    target = tmp_path / "model"
    if make != "nothing":
        target.mkdir()
    if make == "no-weights":
        (target / "config.json").write_text("{}")
    with pytest.raises(NotFoundError, match="does not exist|no config.json|no \\*.safetensors"):
        check_model_dir(target)


def test_a_file_given_as_the_base_model_folder_is_called_a_file_not_missing(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(NotFoundError, match="model.safetensors is not a folder$"):
        check_model_dir(tmp_path / "model.safetensors")


def test_the_fingerprint_follows_content_not_path(base_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(base_dir, copy)
    a = base_model_fingerprint(base_dir, "m")
    b = base_model_fingerprint(copy, "m", cache_dir=tmp_path / "cache")
    assert a == b
    (copy / "vocab.txt").write_text((copy / "vocab.txt").read_text(encoding="utf-8") + "extra\n")
    c = base_model_fingerprint(copy, "m", cache_dir=tmp_path / "cache")
    assert c.weights_sha256 == a.weights_sha256 and c.tokenizer_sha256 != a.tokenizer_sha256
    assert not c.matches(a)


def test_a_cache_that_cannot_be_written_costs_only_the_hashing(base_dir, tmp_path):
    (tmp_path / "home").write_text("a file where the cache folder should be: like a full or read-only home")
    assert base_model_fingerprint(base_dir, "m", cache_dir=tmp_path / "home" / "cache") == base_model_fingerprint(
        base_dir, "m"
    )


@pytest.mark.parametrize(
    "damage",
    [
        "",
        "not json",
        "[]",
        '"x"',
        "null",
        '{"stamp": STAMP, "fingerprint": []}',
        '{"stamp": STAMP, "fingerprint": {"model_id": "m", "weights_sha256": 1, "tokenizer_sha256": null}}',
    ],
)
def test_a_damaged_fingerprint_cache_is_hashed_again_not_trusted_or_raised(base_dir, tmp_path, damage):
    from registry.fingerprint import CACHE_FILE

    cache = tmp_path / "cache"
    right = base_model_fingerprint(base_dir, "m", cache_dir=cache)
    stamp = json.loads((cache / CACHE_FILE).read_text(encoding="utf-8"))["stamp"]
    (cache / CACHE_FILE).write_text(damage.replace("STAMP", json.dumps(stamp)))
    assert base_model_fingerprint(base_dir, "m", cache_dir=cache) == right
