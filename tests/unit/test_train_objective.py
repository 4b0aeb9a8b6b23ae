"""The two pieces of the training objective that the defaults rest on: the probe-initialised head and GCE."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipelines.train import generalized_cross_entropy, logreg_head


@pytest.mark.parametrize("classes", [2, 5])
def test_the_head_starts_as_the_logistic_regression_probe(classes):
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(classes), 12)
    x = (rng.normal(size=(len(y), 16)) + np.eye(classes, 16)[y] * 2).astype(np.float32)
    head = torch.nn.Linear(16, classes)

    logreg_head(head, x, y, C=10.0, seed=0)

    probe = LogisticRegression(C=10.0, max_iter=1000, class_weight="balanced", random_state=0).fit(x, y)
    with torch.no_grad():
        proba = torch.softmax(head(torch.from_numpy(x)), dim=-1).numpy()
    np.testing.assert_allclose(proba, probe.predict_proba(x), atol=1e-5)


def test_gce_scales_each_examples_cross_entropy_gradient_by_its_probability_to_the_q():
    """So an example the model finds implausible (a likely wrong label) pulls far less than under CE."""
    q = 0.7
    logits = torch.tensor([[4.0, 0.0, 0.0], [0.0, 0.0, 4.0]], requires_grad=True)
    target = torch.tensor([0, 0])  # the first plausible, the second implausible
    generalized_cross_entropy(logits, target, q).backward()
    gce_grad = logits.grad.clone()
    logits.grad = None
    torch.nn.functional.cross_entropy(logits, target).backward()
    p_y = torch.softmax(logits, dim=-1)[[0, 1], target].detach()

    torch.testing.assert_close(gce_grad, logits.grad * (p_y**q).unsqueeze(1))
    assert gce_grad[1].norm() < 0.1 * logits.grad[1].norm()  # p_y ≈ 0.018, 0.018 ** 0.7 ≈ 0.06


def test_gce_is_zero_for_a_certain_correct_prediction_and_bounded_by_one_over_q():
    target = torch.tensor([0])
    assert generalized_cross_entropy(torch.tensor([[50.0, 0.0]]), target, 0.7).item() == pytest.approx(0.0, abs=1e-6)
    assert generalized_cross_entropy(torch.tensor([[-50.0, 0.0]]), target, 0.7).item() == pytest.approx(1 / 0.7, rel=1e-4)
