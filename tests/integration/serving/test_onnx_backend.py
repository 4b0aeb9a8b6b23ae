"""The ONNX Runtime backend answers as the PyTorch one does, from a graph exported once per version."""

import numpy as np
import pytest

from pipelines.batches.read import read_batch
from pipelines.policy import DataPolicy
from pipelines.settings import load_settings
from tests.conftest import REPO

BATCH_LIMIT = DataPolicy().max_file_bytes  # the shipped policy's data.max_file_mb

pytestmark = [pytest.mark.integration, pytest.mark.slow]
pytest.importorskip("onnxruntime", reason="the serve-onnx extra is not installed")

SAMPLE = REPO / "data" / "sample"


@pytest.fixture(scope="module")
def adapter(tmp_path_factory):
    """A real adapter of the shipped shape, trained a few steps on the sample, and the loaded base."""
    from pipelines.training.params import load_params
    from pipelines.training.recipe import train
    from serving.model import load_base

    folder = tmp_path_factory.mktemp("onnx")
    settings = load_settings()
    base = load_base(settings.base_model_dir, model_id=settings.base_model_id, cache_dir=folder)
    train(
        read_batch(SAMPLE / "train.csv", max_bytes=BATCH_LIMIT),
        folder / "adapter",
        base=base,
        params=load_params(noise_filter="none", min_steps=3, max_steps=3, select="lora"),
    )
    return folder / "adapter", base, folder / "cache"


def test_the_onnx_backend_gives_the_pytorch_probabilities_within_1e_4_on_the_holdout(adapter):
    from serving.model import load_classifier
    from serving.onnx_backend import load_onnx_classifier

    folder, base, cache = adapter
    texts = read_batch(SAMPLE / "holdout.csv", max_bytes=BATCH_LIMIT).texts
    onnx = load_onnx_classifier(folder, base, cache)
    torch_proba = load_classifier(folder, base).predict_proba(texts)
    assert onnx.labels == load_classifier(folder, base).labels
    assert np.abs(onnx.predict_proba(texts) - torch_proba).max() < 1e-4
    assert np.abs(onnx.predict_proba(texts[:1]) - torch_proba[:1]).max() < 1e-4  # batch 1: no padding
    # Batched by length, yet each row answers for its own text: as predicted alone.
    classifier = load_classifier(folder, base)
    alone = np.concatenate([classifier.predict_proba([t]) for t in texts])
    assert len(texts) > 32 and np.abs(alone - torch_proba).max() < 1e-5
    # Exported once: a second load reuses the cached graph.
    graphs = sorted(cache.glob("*.onnx"))
    inode = graphs[0].stat().st_ino  # an export replaces the file: a new inode (serving only touches it)
    assert load_onnx_classifier(folder, base, cache).graph == graphs[0] and graphs[0].stat().st_ino == inode


def test_int8_quantisation_is_a_separate_cached_graph_that_still_answers(adapter, caplog):
    from serving.onnx_backend import load_onnx_classifier

    folder, base, cache = adapter
    texts = read_batch(SAMPLE / "holdout.csv", max_bytes=BATCH_LIMIT).texts[:8]
    with caplog.at_level("INFO", logger="serving.onnx_backend"):
        int8 = load_onnx_classifier(folder, base, cache, int8=True)
    assert "the int8 ONNX graph picks PyTorch's class on" in caplog.text  # said at serve start-up
    proba = int8.predict_proba(texts)
    assert proba.shape == (8, len(int8.labels)) and np.allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert int8.graph.stat().st_size < load_onnx_classifier(folder, base, cache).graph.stat().st_size / 2


def test_an_adapter_that_pytorch_refuses_is_refused_by_the_onnx_backend_too(adapter, tmp_path):
    import shutil

    from registry.errors import RefusedError
    from serving.onnx_backend import load_onnx_classifier

    folder, base, cache = adapter
    bad = shutil.copytree(folder, tmp_path / "bad")
    (bad / "adapter_model.bin").write_bytes(b"pickle")
    with pytest.raises(RefusedError, match="pickle"):
        load_onnx_classifier(bad, base, cache)


def test_a_cached_graph_that_answers_otherwise_than_pytorch_is_exported_again(adapter, caplog):
    import shutil
    import stat

    from serving.onnx_backend import load_onnx_classifier

    folder, base, cache = adapter
    fp32 = load_onnx_classifier(folder, base, cache).graph
    int8 = load_onnx_classifier(folder, base, cache, int8=True).graph
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    shutil.copyfile(int8, fp32)  # a planted graph: loads fine, answers within ~1e-2 only
    with caplog.at_level("WARNING"):
        again = load_onnx_classifier(folder, base, cache)
    assert "exporting it again" in caplog.text and again.graph == fp32
    assert fp32.stat().st_size > 2 * int8.stat().st_size  # the float graph is back


def test_the_cache_key_names_the_library_versions_that_built_the_graph(adapter, monkeypatch):
    from serving import onnx_backend

    folder, base, _ = adapter
    before = onnx_backend.cache_key(folder, base, int8=False)
    monkeypatch.setattr(onnx_backend, "_versions", lambda: "torch 9.9, peft 0.0, onnxruntime 0.0")
    assert onnx_backend.cache_key(folder, base, int8=False) != before


def test_the_cache_keeps_only_the_most_recently_served_graphs(adapter):
    import os

    from serving import onnx_backend

    folder, base, cache = adapter
    stale = []
    for i in range(onnx_backend.KEEP_GRAPHS):  # graphs of versions served long ago
        path = cache / f"{i:064x}.onnx"
        path.write_bytes(b"old graph")
        os.utime(path, ns=(i, i))
        stale.append(path)
    served = onnx_backend.load_onnx_classifier(folder, base, cache).graph
    kept = set(cache.glob("*.onnx"))
    assert served in kept and len(kept) == onnx_backend.KEEP_GRAPHS
    assert stale[0] not in kept and stale[-1] in kept  # the oldest go first
