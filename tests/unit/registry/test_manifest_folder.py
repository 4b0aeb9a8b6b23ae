"""Adapter folder checks and manifest building: every refusal names its reason, and nothing is hashed twice wrong."""

from __future__ import annotations

import json

import pytest

from registry.adapter_folder import AdapterMeta, inspect_adapter_folder, reference_texts
from registry.errors import ConfigError, IntegrityError, NotFoundError, RefusedError
from registry.fingerprint import BaseModelFingerprint
from registry.manifest import Manifest, build_manifest, safe_relpath, validate_name
from tests.registry_helpers import failed_gate, make_adapter_folder

BASE = BaseModelFingerprint("sentence-transformers/all-MiniLM-L6-v2", "a" * 64, "b" * 64)


@pytest.mark.parametrize("name", ["tickets", "tickets-v2", "a.b_c", "X1"])
def test_plain_names_are_accepted(name):
    assert validate_name(name) == name


@pytest.mark.parametrize("name", ["", "a/b", "a b", "..", "a..b", "../x", "a\\b", "-lead", "x" * 65, "é"])
def test_names_with_path_characters_or_spaces_are_refused(name):
    with pytest.raises(RefusedError, match="no path characters, spaces or '..'"):
        validate_name(name)


@pytest.mark.parametrize("path", ["/etc/passwd", "../x", "a/../b", "a\\b", "", "a//b"])
def test_unsafe_manifest_paths_are_refused(path):
    with pytest.raises(IntegrityError, match="unsafe file path"):
        safe_relpath(path)


def test_a_valid_folder_is_hashed_file_by_file(tmp_path):
    folder = inspect_adapter_folder(make_adapter_folder(tmp_path / "a", BASE), BASE)
    assert sorted(folder.files) == [
        "adapter_config.json",
        "adapter_model.safetensors",
        "reference.csv",
        "reports/validation.json",
        "tailor_adapter.json",
        "train_result.json",
    ]
    assert all(len(e.sha256) == 64 and e.size > 0 for e in folder.files.values())


def test_the_manifest_records_base_peft_labels_data_metrics_and_gate(tmp_path):
    folder = inspect_adapter_folder(make_adapter_folder(tmp_path / "a", BASE, seed=3, gate=failed_gate()), BASE)
    m = build_manifest(
        folder,
        "tickets",
        "v1",
        created_by="alice",
        created_role="trainer",
        created_at="2026-01-01T00:00:00+00:00",
        reason="first",
    )
    assert m.base_model == BASE
    assert (m.peft.r, m.peft.lora_alpha, m.peft.target_modules) == (8, 16, ["query", "value"])
    assert m.labels == ["billing", "bug", "feature", "other"] and m.max_length == 128
    assert m.data_version == "md5-0003" and m.metrics["macro_f1"] == 0.9
    assert m.gate.passed is False
    assert m.gate.failures == ["quality: macro_f1 = 0.61, policy quality.min_macro_f1 requires >= 0.8"]
    # The local base path PEFT writes into adapter_config.json is never part of the identity.
    assert "/somewhere/local" not in m.to_json().decode()
    assert Manifest.from_json(m.to_json(), "x") == m


def test_a_manifest_edited_on_the_store_no_longer_matches_its_content_hash(tmp_path):
    folder = inspect_adapter_folder(make_adapter_folder(tmp_path / "a", BASE), BASE)
    m = build_manifest(
        folder,
        "tickets",
        "v1",
        created_by="alice",
        created_role="trainer",
        created_at="2026-01-01T00:00:00+00:00",
        reason="",
    )
    raw = json.loads(m.to_json())
    raw["metrics"]["macro_f1"] = 0.99
    with pytest.raises(IntegrityError, match="was modified"):
        Manifest.from_json(json.dumps(raw).encode(), "adapters/tickets/versions/v1/manifest.json")


def _refusal(path) -> str:
    with pytest.raises(RefusedError) as err:
        inspect_adapter_folder(path, BASE)
    return str(err.value)


def test_missing_files_are_each_named(tmp_path):
    folder = make_adapter_folder(tmp_path / "a", BASE)
    (folder / "adapter_config.json").unlink()
    (folder / "tailor_adapter.json").unlink()
    message = _refusal(folder)
    assert "missing adapter_config.json" in message and "missing tailor_adapter.json" in message


def test_pickle_weights_instead_of_safetensors_are_refused(tmp_path):
    folder = make_adapter_folder(tmp_path / "a", BASE)
    (folder / "adapter_model.safetensors").rename(folder / "adapter_model.bin")
    message = _refusal(folder)
    assert "adapter_model.bin is a pickle file" in message
    assert "missing adapter_model.safetensors (weights must be safetensors)" in message


def test_a_pickle_file_anywhere_in_the_folder_is_refused(tmp_path):
    folder = make_adapter_folder(tmp_path / "a", BASE)
    (folder / "reports" / "extra.pkl").write_bytes(b"\x80\x04K\x01.")
    assert "reports/extra.pkl is a pickle file" in _refusal(folder)


def test_a_file_named_safetensors_that_is_not_safetensors_is_refused(tmp_path):
    folder = make_adapter_folder(tmp_path / "a", BASE)
    (folder / "adapter_model.safetensors").write_bytes(b"\x80\x04\x95" + b"\0" * 40)
    assert "adapter_model.safetensors is not a safetensors file" in _refusal(folder)


def test_a_symbolic_link_is_refused(tmp_path):
    folder = make_adapter_folder(tmp_path / "a", BASE)
    (folder / "reports" / "link.json").symlink_to("/etc/hostname")
    assert "reports/link.json is a symbolic link" in _refusal(folder)


def test_an_adapter_trained_on_another_base_model_is_refused(tmp_path):
    other = BaseModelFingerprint(BASE.model_id, "c" * 64, BASE.tokenizer_sha256)
    folder = make_adapter_folder(tmp_path / "a", other)
    assert "base model mismatch: the adapter was trained on" in _refusal(folder)
    renamed = make_adapter_folder(tmp_path / "b", BaseModelFingerprint("other/model", "c" * 64, "b" * 64))
    assert "trained on 'other/model'" in _refusal(renamed)


def test_an_adapter_recorded_under_another_name_for_the_same_base_files_is_accepted(tmp_path):
    folder = make_adapter_folder(tmp_path / "a", BaseModelFingerprint("cl-nagoya/ruri-v3-30m", "a" * 64, "b" * 64))
    assert inspect_adapter_folder(folder, BASE).meta.base_model_id == "cl-nagoya/ruri-v3-30m"


def test_unreadable_json_is_named(tmp_path):
    folder = make_adapter_folder(tmp_path / "a", BASE)
    (folder / "train_result.json").write_text("{not json")
    assert "train_result.json is not readable JSON" in _refusal(folder)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"labels": []}, "'labels' must be a non-empty list of strings"),
        ({"labels": ["a", 3]}, "'labels' must be a non-empty list of strings"),
        ({"max_length": "128"}, "'max_length' must be an integer"),
        ({"max_length": True}, "'max_length' must be an integer"),
        ({"base_model_weights_sha256": None}, "'base_model_weights_sha256' must be a string"),
        ({"intended_use": 7}, "'intended_use' must be a string or null"),
    ],
)
def test_a_malformed_adapter_meta_is_refused_by_the_registry_and_the_runtime(tmp_path, change, problem):
    folder = make_adapter_folder(tmp_path / "a", BASE)
    meta = json.loads((folder / "tailor_adapter.json").read_text(encoding="utf-8")) | change
    (folder / "tailor_adapter.json").write_text(json.dumps(meta))
    assert f"tailor_adapter.json: {problem}" in _refusal(folder)
    with pytest.raises(ConfigError, match=f"tailor_adapter.json is not a valid AdapterMeta: {problem}"):
        AdapterMeta.read(folder)


def test_a_missing_meta_field_is_named_and_an_unknown_one_is_ignored(tmp_path):
    folder = make_adapter_folder(tmp_path / "a", BASE)
    meta = json.loads((folder / "tailor_adapter.json").read_text(encoding="utf-8"))
    del meta["max_length"], meta["labels"]
    (folder / "tailor_adapter.json").write_text(json.dumps(meta | {"written_by": "a newer Tailor"}))
    assert "tailor_adapter.json: missing labels; missing max_length" in _refusal(folder)


def test_adapter_meta_written_is_read_back(tmp_path):
    meta = AdapterMeta(
        base_model_id="m",
        base_model_weights_sha256="a" * 64,
        base_model_tokenizer_sha256="b" * 64,
        labels=["請求", "バグ"],
        max_length=64,
    )
    meta.write(tmp_path)
    assert AdapterMeta.read(tmp_path) == meta and "請求" in (tmp_path / "tailor_adapter.json").read_text("utf-8")


def test_a_folder_that_does_not_exist_is_not_found(tmp_path):
    with pytest.raises(NotFoundError, match="does not exist"):
        inspect_adapter_folder(tmp_path / "nope", BASE)


def _resealed(raw: dict) -> bytes:
    """``raw`` with a content hash that matches it, as a writer of the bucket can make it."""
    from registry.canonical import canonical_sha256

    body = {k: v for k, v in raw.items() if k != "content_sha256"}
    return json.dumps({**raw, "content_sha256": canonical_sha256(body)}).encode()


def test_a_resealed_manifest_with_a_hash_or_size_that_is_not_one_is_refused_naming_each_field(tmp_path):
    folder = inspect_adapter_folder(make_adapter_folder(tmp_path / "a", BASE, gate=failed_gate()), BASE)
    m = build_manifest(
        folder,
        "tickets",
        "v1",
        created_by="alice",
        created_role="trainer",
        created_at="2026-01-01T00:00:00+00:00",
        reason="",
    )
    raw = json.loads(m.to_json())
    raw["base_model"]["tokenizer_sha256"] = "</code><script>alert(1)</script>"
    raw["files"]["adapter_model.safetensors"]["sha256"] = "A" * 64
    raw["files"]["reference.csv"]["size"] = -1
    raw["files"]["reports/validation.json"]["size"] = True
    raw["gate"]["policy_sha256"] = "a" * 63
    with pytest.raises(IntegrityError) as err:
        Manifest.from_json(_resealed(raw), "adapters/tickets/versions/v1/manifest.json")
    message = str(err.value)
    assert message.startswith("adapters/tickets/versions/v1/manifest.json is not a valid manifest: ")
    for field in (
        "base_model.tokenizer_sha256 is not a sha256",
        "files['adapter_model.safetensors'].sha256 is not",
        "files['reference.csv'].size is not a byte count",
        "files['reports/validation.json'].size is not",
        "gate.policy_sha256 is not a sha256",
    ):
        assert field in message
    assert "weights_sha256" not in message


def test_a_manifest_written_before_a_field_was_added_still_proves_its_content_hash(tmp_path):
    # GateSummary.against came later: every manifest registered before it was called modified.
    folder = inspect_adapter_folder(make_adapter_folder(tmp_path / "a", BASE, gate=failed_gate()), BASE)
    m = build_manifest(
        folder,
        "tickets",
        "v1",
        created_by="alice",
        created_role="trainer",
        created_at="2026-01-01T00:00:00+00:00",
        reason="",
    )
    raw = json.loads(m.to_json())
    del raw["gate"]["against"]
    older = _resealed(raw)  # as the registry of then wrote it

    loaded = Manifest.from_json(older, "adapters/tickets/versions/v1/manifest.json")

    assert loaded.gate.against is None and loaded.content_sha256 == json.loads(older)["content_sha256"]
    raw["metrics"]["macro_f1"] = 0.99  # an edit is still found
    with pytest.raises(IntegrityError, match="was modified"):
        Manifest.from_json(json.dumps({**raw, "content_sha256": loaded.content_sha256}).encode(), "x")


def test_a_gate_decision_whose_policy_hash_is_not_a_sha256_is_refused_at_register(tmp_path):
    folder = make_adapter_folder(tmp_path / "a", BASE, gate={**failed_gate(), "policy_sha256": "<b>policy</b>"})
    assert "gate_decision.json: 'policy_sha256' must be 64 lowercase hex characters" in _refusal(folder)


def test_reference_texts_are_read_as_training_wrote_them(tmp_path):
    assert reference_texts(tmp_path, 5) == []
    (tmp_path / "reference.csv").write_text('text,label\n"請求が二重, です",billing\nb,bug\nc,bug\n', encoding="utf-8")
    assert reference_texts(tmp_path, 2) == ["請求が二重, です", "b"]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"label\nbilling\n", "has no 'text' column"),
        (b"", "has no 'text' column"),
        ("text,label\n請求,billing\n".encode("shift_jis"), "is not the UTF-8 CSV training writes"),
    ],
)
def test_a_reference_that_is_not_what_training_writes_is_named(tmp_path, content, problem):
    (tmp_path / "reference.csv").write_bytes(content)
    with pytest.raises(ConfigError, match=problem):
        reference_texts(tmp_path, 5)
