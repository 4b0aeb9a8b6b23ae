"""The frozen base's embeddings, computed once per text (the memo), and the base loaded once per process,
on a tiny random-weight BERT built here: hits, misses on a changed text, truncation or base, the bound."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from registry.errors import RefusedError
from serving import base_cache
from serving.base_cache import base_tokenizer, folder_identity, frozen_encoder
from serving.embeddings import (
    EmbeddingMemo,
    batches_by_length,
    embed,
    frozen_embeddings,
    length_sorted_batches,
    token_lengths,
)
from serving.model import MeanPoolClassifier, load_base
from tests.tiny_encoders import build

SHORT = ["雨が降る", "晴れの日", "今日は寒い"]
LONG = "長い文章です。" * 40  # far over 16 tokens


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory) -> Path:
    return build("bert", tmp_path_factory.mktemp("base") / "bert")


class Counted:
    """Counts the rows the encoder runs on (a forward hook), so a test sees what the memo spared."""

    def __init__(self, encoder: torch.nn.Module) -> None:
        self.rows = 0
        self._handle = encoder.register_forward_hook(self._count)

    def _count(self, module, args, kwargs_or_output, *rest) -> None:
        self.rows += int(kwargs_or_output.last_hidden_state.shape[0])

    def close(self) -> None:
        self._handle.remove()


@pytest.fixture
def counted(tiny_folder):
    counter = Counted(frozen_encoder(tiny_folder).encoder)
    yield counter
    counter.close()


def test_the_one_embedding_matches_the_classifiers_own_embedding(tiny_folder):
    base = frozen_encoder(tiny_folder)
    texts = [*SHORT, LONG]
    got = frozen_embeddings(texts, base, 32, memo=EmbeddingMemo())
    with torch.inference_mode():
        enc = base.tokenizer(texts, padding=True, truncation=True, max_length=32, return_tensors="pt")
        want = MeanPoolClassifier(base.encoder, 1).embed(enc["input_ids"], enc["attention_mask"]).numpy()
    assert got.dtype == np.float32 and got.shape == (4, base.encoder.config.hidden_size)
    np.testing.assert_allclose(got, want, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_length_sorted_batches_cut_the_rows_given_into_length_sorted_parts_holding_each_once():
    lengths = [5, 1, 9, 3, 7, 2, 8]
    parts = length_sorted_batches([6, 0, 2, 4, 1], lengths, size=2)
    assert parts == [[1, 0], [4, 6], [2]]


def test_batches_by_length_hold_every_row_once_shortest_first_and_a_single_batch_keeps_its_order(tiny_folder):
    base = frozen_encoder(tiny_folder)
    texts = [LONG, *SHORT, LONG[:30], SHORT[0] * 3, LONG[:60]]
    batches = batches_by_length(texts, base, 32, batch_size=3)
    assert sorted(i for rows in batches for i in rows) == list(range(len(texts)))
    assert [len(rows) for rows in batches] == [3, 3, 1]
    lengths = token_lengths(texts, base, 32)
    flat = [lengths[i] for rows in batches for i in rows]
    assert flat == sorted(flat) and batches[-1] == [0]  # the longest text last, alone
    assert batches_by_length(texts, base, 32, batch_size=len(texts)) == [list(range(len(texts)))]
    assert batches_by_length([], base, 32, batch_size=3) == []


def test_a_classifier_predicts_in_length_batches_yet_each_row_answers_for_its_own_text(tiny_folder):
    from types import SimpleNamespace

    from serving.model import AdapterClassifier

    base = load_base(tiny_folder, model_id="tiny", cache_dir=None)
    torch.manual_seed(0)
    classifier = AdapterClassifier(
        tiny_folder, base, SimpleNamespace(labels=["a", "b", "c"], max_length=32), MeanPoolClassifier(base.encoder, 3)
    )
    texts = [LONG, SHORT[0], LONG[:30], SHORT[1] * 4, SHORT[2], LONG[:12]]
    alone = np.concatenate([classifier.predict_proba([t]) for t in texts])
    together = classifier.predict_proba(texts, batch_size=2)
    assert together.dtype == np.float32 and np.abs(together - alone).max() < 1e-5
    assert classifier.predict_proba([]).shape == (0, 3)


def test_a_text_seen_before_is_not_embedded_again_and_gets_the_same_vector(tiny_folder, counted):
    base, memo = frozen_encoder(tiny_folder), EmbeddingMemo()
    first = frozen_embeddings(SHORT, base, 32, memo=memo)
    assert counted.rows == 3
    again = frozen_embeddings([SHORT[2], SHORT[0], SHORT[0]], base, 32, memo=memo)
    assert counted.rows == 3  # all three were held
    np.testing.assert_array_equal(again, first[[2, 0, 0]])
    frozen_embeddings([*SHORT, "新しい文"], base, 32, memo=memo)
    assert counted.rows == 4  # only the changed text


def test_a_text_cut_differently_misses_and_one_short_enough_for_both_lengths_hits(tiny_folder, counted):
    base, memo = frozen_encoder(tiny_folder), EmbeddingMemo()
    at_16 = frozen_embeddings([SHORT[0], LONG], base, 16, memo=memo)
    at_32 = frozen_embeddings([SHORT[0], LONG], base, 32, memo=memo)
    assert counted.rows == 3  # the long text twice, the short one once
    np.testing.assert_array_equal(at_16[0], at_32[0])
    assert not np.allclose(at_16[1], at_32[1])


def test_the_memo_keeps_at_most_its_rows_dropping_the_least_recently_used(tiny_folder, counted):
    base, memo = frozen_encoder(tiny_folder), EmbeddingMemo(max_rows=2)
    frozen_embeddings(SHORT, base, 32, memo=memo)
    assert len(memo) == 2 and counted.rows == 3
    frozen_embeddings([SHORT[2]], base, 32, memo=memo)  # the last one embedded: held
    assert counted.rows == 3
    frozen_embeddings([SHORT[0]], base, 32, memo=memo)  # the first one was dropped
    assert counted.rows == 4 and len(memo) == 2


def test_a_base_built_in_memory_is_never_memoised(tiny_folder):
    frozen = frozen_encoder(tiny_folder)
    memo = EmbeddingMemo()

    class InMemory:
        identity = None
        device = "cpu"
        tokenizer = frozen.tokenizer
        tokenizer_lock = frozen.tokenizer_lock
        encoder = frozen.encoder

    frozen_embeddings(SHORT, InMemory(), 32, memo=memo)
    assert len(memo) == 0


def test_no_texts_give_an_empty_matrix_of_the_hidden_width(tiny_folder):
    base = frozen_encoder(tiny_folder)
    assert frozen_embeddings([], base, 32).shape == (0, base.encoder.config.hidden_size)


def test_the_base_is_loaded_once_per_process_and_every_loaded_base_shares_it(tiny_folder, tmp_path):
    assert frozen_encoder(tiny_folder) is frozen_encoder(tiny_folder)
    assert base_tokenizer(tiny_folder) is base_tokenizer(tiny_folder)
    one = load_base(tiny_folder, model_id="tiny", cache_dir=tmp_path)
    two = load_base(tiny_folder, model_id="tiny", cache_dir=tmp_path)
    assert one.encoder is two.encoder and one.tokenizer is two.tokenizer
    assert one.tokenizer_lock is two.tokenizer_lock  # one tokenizer, one lock: threads never share it unlocked
    assert one.identity == folder_identity(tiny_folder)
    assert not any(p.requires_grad for p in one.encoder.parameters()) and not one.encoder.training


def test_a_base_replaced_in_place_is_loaded_again_and_embeds_with_its_new_weights(tmp_path):
    folder = build("bert", tmp_path / "bert", seed=0)
    before_encoder = frozen_encoder(folder)
    before = embed(SHORT, folder, max_length=32)
    shutil.copytree(build("bert", tmp_path / "other", seed=1), folder, dirs_exist_ok=True)
    weights = folder / "model.safetensors"
    stat = weights.stat()  # a copy may keep the size; the mtime moves on
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    after_encoder = frozen_encoder(folder)
    assert after_encoder is not before_encoder
    assert not np.allclose(embed(SHORT, folder, max_length=32), before)
    # the replaced base's entries are dropped, not kept beside the new one
    assert all(key[0].path != str(folder.resolve()) or key[0] == after_encoder.identity for key in base_cache._encoders)


def test_a_folder_that_keeps_changing_while_it_loads_is_refused(tmp_path, monkeypatch):
    folder = build("bert", tmp_path / "bert")
    real = base_cache.load_encoder

    def changing(model_dir):
        (Path(model_dir) / "notes.txt").write_text(str(os.urandom(8)))
        return real(model_dir)

    monkeypatch.setattr(base_cache, "load_encoder", changing)
    with pytest.raises(RefusedError, match="kept changing while it was loaded"):
        frozen_encoder(folder)
