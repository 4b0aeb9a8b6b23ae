"""The ONNX Runtime backend: one version's adapter merged into a private copy of the base, run by ONNX Runtime.

The merged graph is exported on the serving host from the version's verified safetensors, once per
version: it is cached under ``<home>/onnx/`` (mode 0700) by a hash of the adapter's files, the base
model's fingerprint, the export settings and the torch, peft and ONNX Runtime versions, and never
uploaded or taken from anywhere else. A cached graph is still only a file on disk: before it serves,
its answers on a few fixed rows are compared with the PyTorch classifier's, and one that differs is
exported again (fp32: probabilities within 1e-4; int8: the same class wherever PyTorch is clear). Merging costs a
private copy of the base weights per version (~90 MB for MiniLM), so the unmerged PyTorch backend
stays the one for many adapters over one base.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np

from registry.adapter_folder import CONFIG_FILE, META_FILE, WEIGHTS_FILE, AdapterMeta, reference_texts
from serving.embeddings import batches_by_length
from serving.model import LoadedBase, MeanPoolClassifier, load_classifier

log = logging.getLogger(__name__)

OPSET = 17
EXPORT_FORMAT = 1  # bump when the export changes, so older cached graphs are not reused
FP32_TOLERANCE = 1e-4  # largest probability difference from PyTorch a float graph may show
# int8 moves probabilities by about 1e-2: it must pick PyTorch's class wherever PyTorch's top two are
# further apart than this.
INT8_CLEAR_MARGIN = 0.05
CHECK_ROWS = 8
# Graphs kept in the cache, the most recently served first (~90 MB fp32, ~23 MB int8 each for MiniLM):
# a server that followed many versions would otherwise fill the disk.
KEEP_GRAPHS = 8
FALLBACK_TEXTS = [
    "my card was charged twice",
    "how do I reset my password?",
    "the delivery arrived broken",
    "請求書の金額が違います",
    "ログインできません",
    "I want to close my account",
    "配送が遅れています",
    "can I change the shipping address?",
]


class GraphMismatchError(RuntimeError):
    """An exported graph does not answer as the PyTorch classifier does, even freshly exported."""


def _versions() -> str:
    import onnxruntime
    import peft
    import torch

    return f"torch {torch.__version__}, peft {peft.__version__}, onnxruntime {onnxruntime.__version__}"


def cache_key(adapter_dir: Path, base: LoadedBase, *, int8: bool) -> str:
    """What the exported graph is a function of: the adapter's files, the base model, the export settings."""
    digest = hashlib.sha256()
    for name in (CONFIG_FILE, WEIGHTS_FILE, META_FILE):
        digest.update(name.encode() + b"\0" + hashlib.sha256((Path(adapter_dir) / name).read_bytes()).digest())
    fp = base.fingerprint
    digest.update(
        f"{fp.weights_sha256}:{fp.tokenizer_sha256}:opset{OPSET}:v{EXPORT_FORMAT}:int8={int8}:{_versions()}".encode()
    )
    return digest.hexdigest()


def session_options(ort):
    """One intra-op thread pool as wide as torch's, whose threads sleep when idle instead of spinning.

    ONNX Runtime's workers spin by default after each run to catch the next one: on a small host that
    also runs the HTTP server's own threads (tokenizing, answering) and other work, the spinning workers
    hold the cores those threads need, and over HTTP the p95 at batch 1 was 1.29x the bare PyTorch base
    and batch-32 throughput 0.44x, against 0.48x and 1.46x in-process (bench/RESULTS.md).
    """
    import torch

    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


class OnnxClassifier:
    """Same answers as ``AdapterClassifier`` (within float rounding), from an ONNX Runtime session."""

    def __init__(self, adapter_dir: Path, base: LoadedBase, meta: AdapterMeta, graph: Path) -> None:
        import onnxruntime as ort

        self.adapter_dir, self.base, self.meta, self.graph = Path(adapter_dir), base, meta, Path(graph)
        self.labels: list[str] = list(meta.labels)
        self._session = ort.InferenceSession(str(graph), session_options(ort), providers=["CPUExecutionProvider"])

    def predict_proba(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """Class probabilities, shape (len(texts), len(labels)), columns in ``labels`` order."""
        proba = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        for rows in batches_by_length(texts, self.base, self.meta.max_length, batch_size):
            enc = self.base.tokenize([texts[i] for i in rows], self.meta.max_length)
            logits = self._session.run(
                None, {"input_ids": enc["input_ids"].numpy(), "attention_mask": enc["attention_mask"].numpy()}
            )[0]
            shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
            proba[rows] = shifted / shifted.sum(axis=1, keepdims=True)
        return proba

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
            torch.onnx.export(
                merged,
                (sample["input_ids"], sample["attention_mask"]),
                tmp,
                input_names=["input_ids", "attention_mask"],
                output_names=["logits"],
                dynamic_axes={
                    "input_ids": {0: "batch", 1: "tokens"},
                    "attention_mask": {0: "batch", 1: "tokens"},
                    "logits": {0: "batch"},
                },
                opset_version=OPSET,
                dynamo=False,
            )
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
        GraphMismatchError: even a fresh export does not answer as PyTorch does on the check rows.
    """
    checked = load_classifier(adapter_dir, base)  # every refusal of the PyTorch path applies here too
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    cache_dir.chmod(0o700)  # merged weights of every version served: not for other users of a shared host
    texts = _check_texts(adapter_dir)
    expected = checked.predict_proba(texts)
    full = cache_dir / f"{cache_key(adapter_dir, base, int8=False)}.onnx"
    graph = cache_dir / f"{cache_key(adapter_dir, base, int8=True)}.onnx" if int8 else full

    def build(fresh: bool) -> tuple[OnnxClassifier, np.ndarray]:
        if fresh or not full.is_file():
            export_merged(adapter_dir, base, full)
        if int8 and (fresh or not graph.is_file()):
            quantize_int8(full, graph)
        classifier = OnnxClassifier(adapter_dir, base, checked.meta, graph)
        return classifier, classifier.predict_proba(texts)

    classifier, got = build(fresh=False)
    if (problem := _mismatch(got, expected, int8=int8)) is not None:
        log.warning("cached ONNX graph %s %s: exporting it again", graph, problem)
        classifier, got = build(fresh=True)
        if (problem := _mismatch(got, expected, int8=int8)) is not None:
            raise GraphMismatchError(
                f"the ONNX graph exported from {adapter_dir} {problem} ({_versions()}): serve "
                "this version with --backend torch"
            )
    log.info(
        "%s: the %s ONNX graph picks PyTorch's class on %d of %d check rows, probabilities within %.2g",
        adapter_dir,
        "int8" if int8 else "fp32",
        int((got.argmax(axis=1) == expected.argmax(axis=1)).sum()),
        len(texts),
        float(np.abs(got - expected).max()),
    )
    _prune(cache_dir, served={full, graph})
    return classifier


def _prune(cache_dir: Path, *, served: set[Path]) -> None:
    """Mark ``served`` as just used and remove all but the ``KEEP_GRAPHS`` most recently used graphs.

    A running session has read its graph into memory: removing a file another server serves costs it
    only a new export should it load that version again.
    """
    for path in served:
        path.touch()
    graphs = sorted(cache_dir.glob("*.onnx"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
    for old in graphs[KEEP_GRAPHS:]:
        if old not in served:
            old.unlink(missing_ok=True)


def _check_texts(adapter_dir: Path) -> list[str]:
    """The version's own reference rows (the first few), or fixed ones where it has none."""
    return reference_texts(adapter_dir, CHECK_ROWS) or FALLBACK_TEXTS


def _mismatch(got: np.ndarray, expected: np.ndarray, *, int8: bool) -> str | None:
    """How a graph's probabilities differ from PyTorch's more than its kind allows, or None."""
    if got.shape != expected.shape:
        return f"answers with shape {got.shape}, PyTorch with {expected.shape}"
    if not int8:
        worst = float(np.abs(got - expected).max())
        return None if worst <= FP32_TOLERANCE else f"differs from PyTorch by {worst:.2g} (allowed {FP32_TOLERANCE:g})"
    top2 = np.sort(expected, axis=1)[:, -2:]
    clear = (top2[:, 1] - top2[:, 0]) > INT8_CLEAR_MARGIN
    wrong = int(((got.argmax(axis=1) != expected.argmax(axis=1)) & clear).sum())
    return None if wrong == 0 else f"picks another class than PyTorch on {wrong} of {int(clear.sum())} clear rows"
