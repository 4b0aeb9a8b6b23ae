"""The pieces of the training objective the defaults rest on: the probe-initialised head, GCE, and per-example
weights applied to a batch run in length-sorted parts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipelines.training.cache import pad_batch
from pipelines.training.objective import backward_in_parts, generalized_cross_entropy, logreg_head
from serving.embeddings import mean_pool


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
    generalized_cross_entropy(logits, target, q).mean().backward()
    gce_grad = logits.grad.clone()
    logits.grad = None
    torch.nn.functional.cross_entropy(logits, target).mean().backward()
    p_y = torch.softmax(logits, dim=-1)[[0, 1], target].detach()

    torch.testing.assert_close(gce_grad, logits.grad * (p_y**q).unsqueeze(1))
    assert gce_grad[1].norm() < 0.1 * logits.grad[1].norm()  # p_y ≈ 0.018, 0.018 ** 0.7 ≈ 0.06


def test_gce_is_zero_for_a_certain_correct_prediction_and_bounded_by_one_over_q():
    target = torch.tensor([0])
    assert generalized_cross_entropy(torch.tensor([[50.0, 0.0]]), target, 0.7).item() == pytest.approx(0.0, abs=1e-6)
    assert generalized_cross_entropy(torch.tensor([[-50.0, 0.0]]), target, 0.7).item() == pytest.approx(
        1 / 0.7, rel=1e-4
    )


def _toy_batch():
    torch.manual_seed(0)
    lengths = [3, 17, 5, 9, 2, 30, 11, 4, 8, 21, 6, 13]
    states = [torch.randn(n, 6) for n in lengths]
    layer, head = torch.nn.Linear(6, 6), torch.nn.Linear(6, 3)

    def forward(part):
        hidden, mask = pad_batch([states[i] for i in part])
        return head(mean_pool(torch.tanh(layer(hidden)), mask))

    return lengths, forward, [layer, head], torch.tensor([0, 1, 2] * 4)


def _grads(modules):
    grads = [p.grad.clone() for m in modules for p in m.parameters()]
    for m in modules:
        m.zero_grad(set_to_none=True)
    return grads


@pytest.mark.parametrize("loss", ["gce", "ce"])
def test_running_a_batch_in_parts_gives_the_whole_batchs_weighted_mean_gradient(loss):
    from pipelines.training.objective import loss_function
    from pipelines.training.params import TrainParams

    lengths, forward, modules, target = _toy_batch()
    loss_fn = loss_function(TrainParams(loss=loss))
    weight = torch.tensor([1.0, 0.5, 0.0, 2.0] * 3)
    idx = list(range(len(lengths)))

    total = backward_in_parts(idx, lengths, forward, loss_fn, target, weight)
    parts = _grads(modules)
    whole = (loss_fn(forward(idx), target) * weight).mean()
    whole.backward()

    assert total == pytest.approx(whole.item(), rel=1e-5)
    for a, b in zip(parts, _grads(modules)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_an_example_of_weight_zero_does_not_move_the_model():
    lengths, forward, modules, target = _toy_batch()
    loss_fn = generalized_cross_entropy
    weight = torch.ones(len(lengths))
    weight[5] = 0.0
    with_zero = list(range(len(lengths)))
    backward_in_parts(with_zero, lengths, forward, lambda lo, t: loss_fn(lo, t, 0.7), target, weight)
    a = _grads(modules)
    without = [i for i in with_zero if i != 5]
    backward_in_parts(without, lengths, forward, lambda lo, t: loss_fn(lo, t, 0.7), target, weight)
    for ga, gb in zip(a, _grads(modules)):  # same sum over the other examples; the mean divides by 12 vs 11
        torch.testing.assert_close(ga * 12, gb * 11, rtol=1e-5, atol=1e-6)
