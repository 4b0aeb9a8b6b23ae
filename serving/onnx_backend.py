"""The ONNX Runtime backend: one version's adapter merged into a private copy of the base, run by ONNX Runtime.

The merged graph is exported on the serving host from the version's verified safetensors, once per
version: it is cached under ``<home>/onnx/`` by a hash of the adapter's files, the base model's
fingerprint and the export settings, and never uploaded or taken from anywhere else. Merging costs a
private copy of the base weights per version (~90 MB for MiniLM), so the unmerged PyTorch backend
stays the one for many adapters over one base.
"""

from __future__ import annotations

import copy
import hashlib
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np

from pipelines.model import (ADAPTER_CONFIG_FILE, ADAPTER_META_FILE, ADAPTER_WEIGHTS_FILE, AdapterMeta, LoadedBase,
                             MeanPoolClassifier, load_classifier)  # fmt: skip

OPSET = 17
EXPORT_FORMAT = 1  # bump when the export changes, so older cached graphs are not reused


def cache_key(adapter_dir: Path, base: LoadedBase, *, int8: bool) -> str:
    """What the exported graph is a function of: the adapter's files, the base model, the export settings."""
    digest = hashlib.sha256()
    for name in (ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, ADAPTER_META_FILE):
        digest.update(name.encode() + b"\0" + hashlib.sha256((Path(adapter_dir) / name).read_bytes()).digest())
    fp = base.fingerprint
    digest.update(f"{fp.weights_sha256}:{fp.tokenizer_sha256}:opset{OPSET}:v{EXPORT_FORMAT}:int8={int8}".encode())
    return digest.hexdigest()


class OnnxClassifier:
    """Same answers as ``AdapterClassifier`` (within float rounding), from an ONNX Runtime session."""

    def __init__(self, adapter_dir: Path, base: LoadedBase, meta: AdapterMeta, graph: Path) -> None:
        import onnxruntime as ort

        self.adapter_dir, self.base, self.meta, self.graph = Path(adapter_dir), base, meta, Path(graph)
        self.labels: list[str] = list(meta.labels)
        self._session = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])

    def predict_proba(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """Class probabilities, shape (len(texts), len(labels)), columns in ``labels`` order."""
        out = []
        for start in range(0, len(texts), batch_size):
            enc = self.base.tokenize(texts[start:start + batch_size], self.meta.max_length)
            logits = self._session.run(None, {"input_ids": enc["input_ids"].numpy(),
                                               "attention_mask": enc["attention_mask"].numpy()})[0]  # fmt: skip
            shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
            out.append((shifted / shifted.sum(axis=1, keepdims=True)).astype(np.float32))
        return np.concatenate(out) if out else np.zeros((0, len(self.labels)), dtype=np.float32)

    def predict(self, texts: list[str], batch_size: int = 32) -> list[str]:
        proba = self.predict_proba(texts, batch_size=batch_size)
        return [self.labels[i] for i in proba.argmax(axis=1)]


def export_merged(adapter_dir: Path, base: LoadedBase, dest: Path) -> None:
    """Merge the adapter into a private copy of the base and write the graph to ``dest`` (atomically)."""
    import torch
    from peft import PeftModel

    meta = AdapterMeta.read(adapter_dir)
    skeleton = MeanPoolClassifier(copy.deepcopy(base.encoder), len(meta.labels))
    merged = PeftModel.from_pretrained(skeleton, str(adapter_dir), is_trainable=False).merge_and_unload().eval()
    sample = base.tokenize(["an example text", "a second, longer example text"], meta.max_length)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=dest.name, suffix=".part", dir=dest.parent)
    os.close(fd)
    try:
        with warnings.catch_warnings():
            # The TorchScript exporter is deprecated in favour of dynamo, which needs onnxscript as well.
            warnings.simplefilter("ignore")
            torch.onnx.export(merged, (sample["input_ids"], sample["attention_mask"]), tmp,
                              input_names=["input_ids", "attention_mask"], output_names=["logits"],
                              dynamic_axes={"input_ids": {0: "batch", 1: "tokens"},
                                            "attention_mask": {0: "batch", 1: "tokens"}, "logits": {0: "batch"}},
                              opset_version=OPSET, dynamo=False)  # fmt: skip
        os.replace(tmp, dest)
    finally:
        Path(tmp).unlink(missing_ok=True)


def quantize_int8(src: Path, dest: Path) -> None:
    """Dynamic int8 quantisation of the weights (activations stay float): smaller and usually faster on CPU."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    fd, tmp = tempfile.mkstemp(prefix=dest.name, suffix=".part", dir=dest.parent)
    os.close(fd)
    try:
        quantize_dynamic(str(src), tmp, weight_type=QuantType.QInt8)
        os.replace(tmp, dest)
    finally:
        Path(tmp).unlink(missing_ok=True)


def load_onnx_classifier(adapter_dir: Path, base: LoadedBase, cache_dir: Path, *, int8: bool = False) -> OnnxClassifier:
    """The adapter in ``adapter_dir`` on ``base``, merged and run by ONNX Runtime; exported on first use.

    Raises:
        The errors of ``load_classifier``: the folder is checked the same way (safetensors only, same base).
    """
    checked = load_classifier(adapter_dir, base)  # every refusal of the PyTorch path applies here too
    graph = Path(cache_dir) / f"{cache_key(adapter_dir, base, int8=int8)}.onnx"
    if not graph.is_file():
        if int8:
            full = Path(cache_dir) / f"{cache_key(adapter_dir, base, int8=False)}.onnx"
            if not full.is_file():
                export_merged(adapter_dir, base, full)
            quantize_int8(full, graph)
        else:
            export_merged(adapter_dir, base, graph)
    return OnnxClassifier(adapter_dir, base, checked.meta, graph)
