"""The shipped base model (all-MiniLM-L6-v2) embeds as a sentence encoder should: a claim about its real weights,
so not a unit test (base-model folders themselves: tests/unit/serving/test_encoder_and_fingerprint.py)."""

import numpy as np

from pipelines.settings import load_settings
from serving.embeddings import embed


def test_embeddings_are_normalised_and_similar_texts_are_close():
    base_dir = load_settings().base_model_dir
    vecs = embed(["my card has not arrived", "my card still hasn't come", "what is the exchange rate"], base_dir)
    assert vecs.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert vecs[0] @ vecs[1] > vecs[0] @ vecs[2] + 0.2
