"""The contrastive step's pure parts: its pair loss, its step budget, and when a kept probe gets it."""

from __future__ import annotations

import pytest
import torch

from pipelines.records import Selection
from pipelines.training.contrastive import contrastive_steps_for, embed_in_parts, pair_loss
from pipelines.training.objective import MICRO_BATCH
from pipelines.training.params import TrainParams
from pipelines.training.select import may_run_contrastive, with_contrastive


def _rows(*vectors):
    return torch.nn.functional.normalize(torch.tensor(vectors, dtype=torch.float32), dim=1)


def test_the_pair_loss_is_zero_when_same_labels_coincide_and_different_ones_are_orthogonal():
    emb = _rows([1, 0], [1, 0], [0, 1], [0, 1])
    y = torch.tensor([0, 0, 1, 1])
    assert pair_loss(emb, y, torch.ones(4), torch.arange(4)).item() == pytest.approx(0.0, abs=1e-6)
    # every row the same: the positive pairs are right (0), the negative ones a full unit off (1): half each
    same = _rows([1, 0], [1, 0], [1, 0], [1, 0])
    assert pair_loss(same, y, torch.ones(4), torch.arange(4)).item() == pytest.approx(0.5)


def test_positive_and_negative_pairs_weigh_half_each_however_many_there_are():
    """Five classes of two rows: 5 positive pairs against 40 negative ones; a plain mean over pairs would let the
    negatives decide. Same-label rows apart (cosine 0) and every row orthogonal to every other: only the
    positive half is off, by 1."""
    emb = torch.eye(10)
    y = torch.arange(5).repeat_interleave(2)
    assert pair_loss(emb, y, torch.ones(10), torch.arange(10)).item() == pytest.approx(0.5)


def test_a_row_weighted_zero_takes_no_part_in_any_pair():
    emb = _rows([1, 0], [1, 0], [0, 1], [1, 0])  # the last row sits with class 0 but is labelled 1
    y = torch.tensor([0, 0, 1, 1])
    assert pair_loss(emb, y, torch.tensor([1.0, 1.0, 1.0, 0.0]), torch.arange(4)).item() == pytest.approx(0.0, abs=1e-6)
    assert pair_loss(emb, y, torch.ones(4), torch.arange(4)).item() > 0.3


def test_a_row_twice_in_a_batch_is_not_paired_with_itself():
    """batch_order fills a step's last batch from the next pass: a row's two copies are one row, not a pair
    whose cosine of 1 would count as a perfect positive pair."""
    emb = _rows([1, 0], [0, 1], [1, 0], [1, 0])  # rows 0 and 1 share a label but point apart; row 0 comes back
    y = torch.tensor([0, 0, 1, 0])
    twice = pair_loss(emb, y, torch.ones(4), torch.tensor([0, 1, 2, 0]))
    # positive pairs (0,1), (1,0'): both a unit off; (0,0') is no pair. Negatives (0,2), (0',2): a unit off, (1,2): 0
    assert twice.item() == pytest.approx((1.0 + 2 / 3) / 2)


def test_the_pair_loss_does_not_depend_on_the_order_of_the_batch_rows():
    """The step runs a batch in length-sorted parts and joins their embeddings in the parts' order, not the
    batch's: the loss it backpropagates must be the batch's all the same."""
    generator = torch.Generator().manual_seed(0)
    row = torch.tensor([3, 0, 7, 1, 3, 5, 2, 9, 4, 8, 6, 0])  # rows 3 and 0 twice, as batch_order can give
    emb = torch.nn.functional.normalize(torch.randn(10, 5, generator=generator), dim=1)[row]
    y, weight = torch.tensor([0, 1, 1, 0, 1, 0, 1, 1, 0, 0])[row], torch.rand(10, generator=generator)[row]
    order = torch.randperm(12, generator=generator)
    whole = pair_loss(emb, y, weight, row)
    assert pair_loss(emb[order], y[order], weight[order], row[order]).item() == pytest.approx(whole.item(), rel=1e-6)


def test_a_batch_is_embedded_in_length_sorted_parts_each_embedding_beside_its_row():
    lengths = [5, 1, 9, 3, 7, 2, 8, 4, 6, 1, 2]
    hidden = [torch.full((n, 2), float(i)) for i, n in enumerate(lengths)]
    idx = [4, 0, 10, 2, 7, 0, 9, 5, 1, 8, 3]  # row 0 twice
    padded = []

    def embed(states, mask):
        padded.append(states.shape[1])
        return (states * mask[..., None]).sum(1)

    embedded, order = embed_in_parts(embed, hidden, idx)
    assert sorted(order) == sorted(idx)
    assert [lengths[i] for i in order] == sorted(lengths[i] for i in idx)
    for k, i in enumerate(order):
        assert torch.equal(embedded[k], hidden[i].sum(0)), (k, i)
    # two parts of at most 8 rows, each padded only to its own longest row: the 8 shortest to 5 tokens, not 9
    assert padded == [5, 9] and MICRO_BATCH == 8


def test_a_batch_with_no_negative_pair_keeps_the_positive_half_and_stays_differentiable():
    emb = _rows([1, 0], [0, 1]).requires_grad_()
    loss = pair_loss(emb, torch.tensor([0, 0]), torch.ones(2), torch.arange(2))
    loss.backward()
    assert loss.item() == pytest.approx(1.0) and emb.grad is not None


@pytest.mark.parametrize(
    "rows, steps",
    [
        (16, 2),  # 16 rows, batch 16: a pass gives each row 15 pairs, 25 pairs take 2 passes of one step
        (32, 4),  # 2 steps a pass: ceil(32 × 25 / 15 / 16)
        (3, 13),  # a batch of 3 rows: 2 pairs a row a step
        (2, 25),
        (9600, 300),  # a forced step on a large batch: capped at max_steps, not 1,000 steps
    ],
)
def test_the_step_budget_gives_each_row_its_pairs(rows, steps):
    assert contrastive_steps_for(rows, TrainParams()) == steps


def _selection(kept):
    return Selection(kept=kept, default="probe", reason="out of fold", estimates={})


ON = TrainParams(contrastive=True)  # the step is off by default: it lost to the probe on tasks it was not tuned on


def test_a_probe_the_batch_chose_gets_the_contrastive_step_when_it_is_on_and_says_so():
    chosen = with_contrastive(_selection("probe"), ON, classes=2, noisy=False)
    assert chosen.kept == "contrastive" and chosen.reason.startswith("out of fold; ") and "contrastive" in chosen.reason


def test_a_batch_the_noise_filter_acted_on_keeps_the_probe_itself_and_says_why():
    """Pairs with wrong labels pull the wrong rows together: with 40 % of labels flipped the step lost 0.032."""
    kept = with_contrastive(_selection("probe"), ON, classes=2, noisy=True)
    assert kept.kept == "probe"
    assert kept.reason == "out of fold; no contrastive step: the label-noise filter acted on this batch"


def test_a_batch_of_more_classes_than_contrastive_max_classes_keeps_the_probe_itself_and_says_why():
    """Five topics the probe already separates lost 0.02 with the step (as with SetFit): it is for few classes."""
    kept = with_contrastive(_selection("probe"), ON, classes=3, noisy=False)
    assert kept.kept == "probe"
    assert kept.reason == "out of fold; no contrastive step: 3 classes, above contrastive_max_classes (2)"
    assert (
        with_contrastive(
            _selection("probe"), ON.model_copy(update={"contrastive_max_classes": 5}), classes=5, noisy=False
        ).kept
        == "contrastive"
    )


@pytest.mark.parametrize(
    "selection, params",
    [
        (_selection("lora"), ON),  # fine-tuning won out of fold: it stays
        (_selection("probe"), TrainParams()),  # off by default
        # a large batch whose probe beat fine-tuning, the default there: not a small batch's probe
        (Selection(kept="probe", default="lora", reason="out of fold", estimates={}), ON),
        # a probe asked for (select: probe) is the probe itself: a forced recipe has no default
        (Selection(kept="probe", reason="select: probe in the train parameters", estimates={}), ON),
    ],
)
def test_anything_else_is_left_as_it_was(selection, params):
    assert with_contrastive(selection, params, classes=2, noisy=False) == selection


@pytest.mark.parametrize(
    "params, classes, may",
    [
        (ON, 2, True),
        (ON, 3, False),
        (TrainParams(), 2, False),  # off by default
        (ON.model_copy(update={"select": "lora"}), 2, False),
        (TrainParams(select="contrastive", contrastive=False), 9, True),  # asked for, whatever the batch
    ],
)
def test_whether_a_batch_may_end_in_the_contrastive_step(params, classes, may):
    assert may_run_contrastive(params, classes) is may
