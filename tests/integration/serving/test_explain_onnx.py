"""The ONNX backend computes no gradients, so its explanations fall back to occlusion: an ONNX export of a tiny
random-weight adapter takes seconds, so this is not a unit test (tests/unit/serving/test_explain.py)."""

from __future__ import annotations

import pytest

from serving.explain import explain
from tests.tiny_encoders import tiny_adapter
from tests.unit.serving.test_explain import JA


def test_the_onnx_backend_is_explained_by_occlusion(tmp_path):
    pytest.importorskip("onnxruntime")
    from serving.onnx_backend import load_onnx_classifier

    torch_classifier = tiny_adapter("modernbert", tmp_path)
    onnx = load_onnx_classifier(torch_classifier.adapter_dir, torch_classifier.base, tmp_path / "onnx")
    e = explain(onnx, JA)
    assert e.method == "occlusion" and "OnnxClassifier computes no gradients" in e.method_note
    assert e.label == explain(torch_classifier, JA, steps=2).label
    assert "".join(s.text for s in e.spans) == JA.replace(" ", "")
