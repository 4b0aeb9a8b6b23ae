"""`tailor train` end to end on tiny data: the adapter folder contract, determinism across processes,
--force replacing a previous adapter, and loading it back through serving.model."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from pipelines.records import TrainResult
from tests.conftest import run_cli

pytestmark = pytest.mark.integration

TOPICS = {
    "card": [
        "my card has not arrived",
        "where is my new card",
        "card delivery is late",
        "still waiting for the card",
        "when will my card come",
        "the card never came",
        "track my card delivery",
        "card not delivered yet",
    ],
    "refund": [
        "I want a refund",
        "refund my last payment",
        "how do I get my money back",
        "request a refund please",
        "the refund has not arrived",
        "give me a refund now",
        "refund for a cancelled order",
        "money back please",
    ],
    "pin": [
        "I forgot my pin",
        "reset my pin code",
        "change the pin of my card",
        "my pin is blocked",
        "how to unblock my pin",
        "pin locked after three tries",
        "new pin please",
        "I need to change my pin",
    ],
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Train twice in two processes, same data and seed; the second run replaces the first with --force."""
    tmp = tmp_path_factory.mktemp("train")
    data = tmp / "batch.csv"
    with open(data, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label", "group"])
        for label, texts in TOPICS.items():
            writer.writerows((t, label, "web" if i % 2 else "app") for i, t in enumerate(texts))
    params = tmp / "params.yaml"
    # select: lora, so the step loop itself runs (the probe would win on these easy rows)
    params.write_text("train:\n  min_steps: 8\n  max_steps: 8\n  batch_size: 8\n  select: lora\n")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("TAILOR_")}, "TAILOR_HOME": str(tmp / "home")}
    out = tmp / "adapter"
    args = ("train", "--data", str(data), "--out", str(out), "--seed", "7", "--params", str(params), "--json")
    first = run_cli(*args, env=env, cwd=tmp, timeout=400)
    assert first.returncode == 0, first.stderr
    first_sha = sha256(out / "adapter_model.safetensors")
    second = run_cli(*args, "--force", env=env, cwd=tmp, timeout=400)
    assert second.returncode == 0, second.stderr
    return {"out": out, "first": first, "second": second, "first_sha": first_sha, "home": tmp / "home"}


def test_same_data_seed_and_settings_give_an_identical_adapter_in_two_processes(trained):
    assert sha256(trained["out"] / "adapter_model.safetensors") == trained["first_sha"]
    assert json.loads(trained["second"].stdout)["adapter_sha256"] == trained["first_sha"]


def test_the_adapter_folder_is_readable_as_the_umask_allows_so_a_serving_account_can_load_it(trained):
    umask = os.umask(0)
    os.umask(umask)
    for item in [trained["out"], *trained["out"].rglob("*")]:
        wanted = (0o777 if item.is_dir() else 0o666) & ~umask
        assert item.stat().st_mode & 0o777 == wanted, f"{item.name}: {oct(item.stat().st_mode & 0o777)}"


def test_json_output_is_one_train_result_and_no_progress_bar(trained):
    result = TrainResult.model_validate_json(trained["first"].stdout)
    assert result.labels == ["card", "pin", "refund"]
    assert result.params["steps"] == 8
    assert "it/s" not in trained["first"].stderr and "step/s" not in trained["first"].stderr
    cost = result.cost
    assert cost.wall_seconds > 0 and cost.cpu_seconds > 0 and cost.peak_rss_mb > 100
    assert cost.gpu_seconds is None and cost.peak_gpu_mb is None  # CPU run
    assert (
        0 < cost.trainable_params < 1_000_000
        and cost.adapter_bytes == (trained["out"] / "adapter_model.safetensors").stat().st_size
    )
    assert cost.money == pytest.approx(0.05 * cost.wall_seconds / 3600, abs=1e-6)


def test_the_adapter_folder_holds_the_contract_files_and_no_pickle(trained):
    out = trained["out"]
    names = {p.name for p in out.iterdir()}
    assert {
        "adapter_config.json",
        "adapter_model.safetensors",
        "tailor_adapter.json",
        "train_result.json",
        "reference.csv",
    } <= names
    assert not [p for p in out.rglob("*") if p.suffix in (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")]
    meta = json.loads((out / "tailor_adapter.json").read_text(encoding="utf-8"))
    assert (
        meta["format"] == 1
        and meta["labels"] == ["card", "pin", "refund"]
        and len(meta["base_model_weights_sha256"]) == 64
    )
    config = json.loads((out / "adapter_config.json").read_text(encoding="utf-8"))
    assert config["layers_to_transform"] == [4, 5] and config["modules_to_save"] == ["classifier"]
    with open(out / "reference.csv", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    result = TrainResult.read_json(out / "train_result.json")
    assert len(rows) == result.train_examples and set(rows[0]) == {"text", "label", "group"}
    assert not list(out.parent.glob(".adapter.*")) and not list(out.parent.glob("*.replaced"))  # staging cleaned up


@pytest.fixture(scope="module")
def base(trained):
    from pipelines.settings import load_settings
    from serving.model import load_base

    settings = load_settings()
    return load_base(settings.base_model_dir, model_id=settings.base_model_id, cache_dir=trained["home"])


def test_the_adapter_loads_back_shares_the_base_weights_and_predicts_from_threads(trained, base):
    from serving.model import load_classifier

    one, two = load_classifier(trained["out"], base), load_classifier(trained["out"], base)
    weight = base.encoder.embeddings.word_embeddings.weight
    for clf in (one, two):
        copy = clf._model.base_model.model.encoder.embeddings.word_embeddings.weight
        assert copy.data_ptr() == weight.data_ptr()  # one copy of the base in memory
    texts = [t for texts in TOPICS.values() for t in texts]
    expected = one.predict_proba(texts)
    assert expected.shape == (24, 3) and np.allclose(expected.sum(1), 1, atol=1e-5)
    assert np.mean(np.array(one.predict(texts)) == np.repeat(list(TOPICS), 8)) > 0.6  # chance is 1/3
    results, errors = {}, []

    def work(i):
        try:
            results[i] = (one if i % 2 else two).predict_proba(texts, batch_size=5)
        except Exception as err:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for got in results.values():
        assert np.allclose(got, expected, atol=1e-5)


def test_the_cached_training_path_computes_what_the_full_forward_pass_serves(trained, base):
    import torch

    from serving.model import load_classifier

    clf = load_classifier(trained["out"], base)
    inner = clf._model.base_model.model
    enc = base.tokenize(["my card has not arrived", "reset my pin code please now"], 64)
    with torch.inference_mode():
        full = inner.embed(enc["input_ids"], enc["attention_mask"])
        cached = inner.embed_from(
            inner.hidden_before(enc["input_ids"], enc["attention_mask"], 4), enc["attention_mask"], 4
        )
    assert torch.allclose(full, cached, atol=1e-5)


def test_an_adapter_trained_on_another_base_is_refused(trained, base, tmp_path):
    import shutil

    from registry.errors import RefusedError
    from serving.model import load_classifier

    other = tmp_path / "other"
    shutil.copytree(trained["out"], other)
    meta = json.loads((other / "tailor_adapter.json").read_text(encoding="utf-8"))
    meta["base_model_weights_sha256"] = "0" * 64
    (other / "tailor_adapter.json").write_text(json.dumps(meta))
    with pytest.raises(RefusedError, match="trained on base model"):
        load_classifier(other, base)


def test_an_adapter_folder_with_a_pickle_is_refused_before_peft_reads_it(trained, base, tmp_path):
    import shutil

    from registry.errors import RefusedError
    from serving.model import load_classifier

    other = tmp_path / "other"
    shutil.copytree(trained["out"], other)
    (other / "adapter_model.bin").write_bytes(b"not really a pickle")
    with pytest.raises(RefusedError, match="pickle files"):
        load_classifier(other, base)


def damaged_copy(trained, tmp_path: Path, name: str, content: bytes) -> Path:
    import shutil

    other = tmp_path / "damaged"
    shutil.copytree(trained["out"], other)
    (other / name).write_bytes(content)
    return other


def test_a_truncated_weights_file_is_refused_with_what_to_do(trained, base, tmp_path):
    from registry.errors import RefusedError
    from serving.model import load_classifier

    weights = (trained["out"] / "adapter_model.safetensors").read_bytes()
    other = damaged_copy(trained, tmp_path, "adapter_model.safetensors", weights[:1000])
    with pytest.raises(RefusedError, match="not a readable safetensors file .*may be truncated"):
        load_classifier(other, base)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"[]", "must hold a JSON object, not list"),
        (b"\xff\xfe{", "is not readable JSON"),
    ],
)
def test_an_adapter_config_that_is_not_a_json_object_is_refused(trained, base, tmp_path, content, message):
    from registry.errors import RefusedError
    from serving.model import load_classifier

    other = damaged_copy(trained, tmp_path, "adapter_config.json", content)
    with pytest.raises(RefusedError, match=message):
        load_classifier(other, base)


def test_a_config_peft_cannot_use_names_the_files_that_disagree(trained, base, tmp_path):
    from registry.errors import ConfigError
    from serving.model import load_classifier

    config = json.loads((trained["out"] / "adapter_config.json").read_text(encoding="utf-8")) | {"r": "eight"}
    other = damaged_copy(trained, tmp_path, "adapter_config.json", json.dumps(config).encode())
    with pytest.raises(ConfigError, match=r"does not load: adapter_config.json, .* disagree \(TypeError"):
        load_classifier(other, base)


def test_adapter_metadata_that_is_not_utf8_json_is_refused_by_name(trained, base, tmp_path):
    from registry.errors import ConfigError
    from serving.model import load_classifier

    other = damaged_copy(trained, tmp_path, "tailor_adapter.json", b"\xff\xfe{")
    with pytest.raises(ConfigError, match="tailor_adapter.json is not readable JSON"):
        load_classifier(other, base)


def test_a_batch_larger_than_the_step_budget_caches_and_steps_on_a_seeded_subset_only(base, tmp_path):
    """More rows than max_steps × batch_size: only that many rows' hidden states are cached (the rest
    would be memory no step reads); every row still feeds the head's probe."""
    from pipelines.records import LabeledBatch
    from pipelines.training.cache import encode_frozen, rows_to_cache
    from pipelines.training.params import TrainParams
    from pipelines.training.recipe import train
    from serving.model import MeanPoolClassifier

    params = TrainParams(min_steps=3, max_steps=3, batch_size=4)
    texts = [t for texts in TOPICS.values() for t in texts]
    keep = rows_to_cache(len(texts), params, seed=5)
    assert keep.sum() == 12 and np.array_equal(keep, rows_to_cache(len(texts), params, seed=5))
    assert rows_to_cache(len(texts), TrainParams(), seed=5).all()  # within the budget every row is cached
    model = MeanPoolClassifier(base.shared_copy(), 3)
    data = encode_frozen(model, base, texts, 4, 64, keep)
    assert [h is not None for h in data.hidden] == keep.tolist() and data.embeddings.shape == (24, 384)

    batch = LabeledBatch(
        source="topics", texts=texts, labels=list(np.repeat(list(TOPICS), 8)), ids=[str(i) for i in range(24)]
    )
    result = train(batch, tmp_path / "adapter", base=base, params=params, seed=5)
    assert (result.train_examples, result.uncached_examples, result.dropped_examples) == (12, 12, 0)
    assert result.train_examples + result.dropped_examples + result.uncached_examples == len(texts)
    with open(tmp_path / "adapter" / "reference.csv", encoding="utf-8", newline="") as fh:
        reference = [row["text"] for row in csv.DictReader(fh)]
    assert reference == [texts[i] for i in np.flatnonzero(keep)]


def test_a_step_budget_whose_rows_the_noise_filter_all_drops_is_refused_with_what_to_raise(base, tmp_path):
    from pipelines.records import LabeledBatch
    from pipelines.training.params import TrainParams
    from pipelines.training.recipe import train
    from registry.errors import RefusedError

    texts = [t for texts in TOPICS.values() for t in texts]
    labels = list(np.repeat(list(TOPICS), 8))
    labels[0], labels[8], labels[16] = "pin", "card", "refund"  # three wrong labels, which cleanlab flags
    params = TrainParams(min_steps=1, max_steps=1, batch_size=1, noise_filter="cleanlab", noise_action="drop")
    batch = LabeledBatch(source="topics", texts=texts, labels=labels, ids=[str(i) for i in range(24)])
    with pytest.raises(RefusedError, match=r"dropped all 1 rows .*max_steps × batch_size = 1"):
        train(batch, tmp_path / "adapter", base=base, params=params, seed=5)  # seed 5 caches row 16 only
    assert not (tmp_path / "adapter").exists() and not list(tmp_path.glob(".adapter.*"))
