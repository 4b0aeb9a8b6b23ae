"""Training's library refuses bad inputs before it touches anything, and publishing never loses an adapter.

What `tailor train` itself says of bad inputs: tests/integration/pipelines/training/test_train_bad_inputs.py,
which shares these batches and damaged models.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from registry.errors import RefusedError


def write_batch(path: Path, rows: list[tuple[str, str]]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return path


GOOD = [(f"my card {w} number {i}", "card") for i, w in enumerate("abcd")] + [
    (f"refund for order {w} {i}", "refund") for i, w in enumerate("abcd")
]


DAMAGES = [
    ("truncated", "cannot be loaded: Error while deserializing header"),
    ("model_type", "cannot be loaded: The checkpoint you are trying to load has model type `nosuchmodel`"),
]


def _damaged_model(tmp_path: Path, damage: str) -> Path:
    import json

    from pipelines.settings import load_settings

    shipped = load_settings().base_model_dir
    damaged = tmp_path / "damaged-model"
    damaged.mkdir()
    for item in shipped.iterdir():
        if item.name not in ("model.safetensors", "config.json"):
            (damaged / item.name).symlink_to(item)
    config = json.loads((shipped / "config.json").read_text(encoding="utf-8"))
    weights = (shipped / "model.safetensors").read_bytes()
    if damage == "truncated":
        weights = weights[:1000]
    else:
        config["model_type"] = "nosuchmodel"
    (damaged / "config.json").write_text(json.dumps(config))
    (damaged / "model.safetensors").write_bytes(weights)
    return damaged


def test_the_library_refuses_a_negative_seed_before_touching_anything(tmp_path):
    from pipelines.records import LabeledBatch
    from pipelines.training.params import TrainParams
    from pipelines.training.recipe import train as train_adapter
    from registry.errors import RefusedError

    batch = LabeledBatch(
        source="rows",
        texts=[t for t, _ in GOOD],
        labels=[lab for _, lab in GOOD],
        ids=[str(i) for i in range(len(GOOD))],
    )
    with pytest.raises(RefusedError, match=r"seed -1 is out of range; use 0 to 4294967295"):
        train_adapter(batch, tmp_path / "out", base=None, params=TrainParams(), seed=-1)  # type: ignore[arg-type]
    assert not (tmp_path / "out").exists()


def test_a_folder_that_appears_at_out_while_training_is_kept_and_so_is_the_new_adapter(tmp_path):
    from pipelines.training.publish import publish
    from registry.errors import AlreadyExistsError

    staging, out = tmp_path / ".out.finished", tmp_path / "out"
    staging.mkdir()
    (staging / "adapter_model.safetensors").write_bytes(b"new")
    out.mkdir()  # another run, started at the same time, published first
    (out / "adapter_model.safetensors").write_bytes(b"other run")
    with pytest.raises(AlreadyExistsError, match=f"this run's adapter is kept at {staging}"):
        publish(staging, out, force=False)
    assert (out / "adapter_model.safetensors").read_bytes() == b"other run"
    assert (staging / "adapter_model.safetensors").read_bytes() == b"new"
    publish(staging, out, force=True)
    assert (out / "adapter_model.safetensors").read_bytes() == b"new" and not staging.exists()


@pytest.mark.parametrize("damage, message", DAMAGES)
def test_the_noise_audit_and_drift_embeddings_refuse_a_damaged_base_model_the_same_way(tmp_path, damage, message):
    from serving.embeddings import embed

    with pytest.raises(RefusedError, match=message.replace("(", "\\(").replace("`", ".")):
        embed(["my card is lost"], _damaged_model(tmp_path, damage))


def test_a_replaced_adapter_left_by_a_run_that_died_mid_publish_does_not_block_the_next_force(tmp_path):
    from pipelines.training.publish import publish

    out = tmp_path / "adapter"
    out.mkdir()
    (out / "adapter_model.safetensors").write_text("old")
    (tmp_path / ".adapter.replaced").mkdir()  # what a fixed aside name left behind when a run died there
    (tmp_path / ".adapter.replaced" / "adapter_model.safetensors").write_text("older")
    staging = tmp_path / ".adapter.staging"
    staging.mkdir()
    (staging / "adapter_model.safetensors").write_text("new")
    publish(staging, out, force=True)
    assert (out / "adapter_model.safetensors").read_text(encoding="utf-8") == "new" and not staging.exists()
