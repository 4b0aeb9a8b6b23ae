"""The simple models a candidate must beat, fitted on the candidate's own training rows.

- ``probe``: logistic regression on the frozen base model's mean-pooled embeddings: what training
  starts from, so a candidate below it lost what its base already knew.
- ``lexical``: character 1–3-gram TF-IDF + logistic regression. It reads any script, so it shows
  when the base model reads the data badly (Japanese with the English default: chABSA at 64 rows a
  class, lexical 0.69 against the probe's 0.54).

Both are deterministic (fixed seeds, lbfgs) and take a few seconds on 1,000 rows. The probe uses the
candidate's own head_C (its train_result.json), with every row weighted alike: on a clean batch the probe
that candidate's training started from, on one found noisy that probe before the noise weighting.

Neither needs the candidate, only the rows it trains on: the flow fits them on the batch while the candidate
trains (``pipelines.evaluation.preparation``). :data:`PREPARED` keeps each call's predictions under a digest
of everything they depend on (rows, labels, texts, the base as loaded, max_length, C), so evaluate reuses them
only when the reference.csv it reads holds exactly the rows fitted on; anything else is fitted again.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict

from pipelines.records import LabeledBatch
from pipelines.training.params import TrainParams
from serving.embeddings import frozen_embeddings
from serving.model import LoadedBase

BASELINES = ("probe", "lexical")
LEXICAL_C = 10.0
PREPARED_CALLS = 4  # a flow prepares one candidate's baselines, evaluate reads them once


class BaselineMemo:
    """Predictions by :func:`baselines_key`, the oldest dropped beyond ``max_calls``; thread-safe."""

    def __init__(self, max_calls: int = PREPARED_CALLS) -> None:
        self.max_calls = max_calls
        self._calls: OrderedDict[str, dict[str, list[str]]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._calls)

    def get(self, key: str) -> dict[str, list[str]] | None:
        with self._lock:
            held = self._calls.get(key)
            return None if held is None else {name: list(pred) for name, pred in held.items()}

    def put(self, key: str, predictions: dict[str, list[str]]) -> None:
        with self._lock:
            self._calls[key] = {name: list(pred) for name, pred in predictions.items()}
            while len(self._calls) > self.max_calls:
                self._calls.popitem(last=False)


PREPARED = BaselineMemo()


def baselines_key(
    reference: LabeledBatch, texts: list[str], base: LoadedBase, max_length: int, probe_C: float
) -> str | None:
    """A digest of everything the baselines' predictions depend on; None for a base built in memory (no identity
    tells it apart from another, as for ``serving.embeddings``' memo)."""
    if base.identity is None:
        return None
    content = json.dumps(
        [reference.texts, reference.labels, texts, repr(base.identity), base.device, max_length, probe_C, LEXICAL_C],
        ensure_ascii=False,
    )
    return hashlib.sha256(content.encode("utf-8", "surrogatepass")).hexdigest()


def predict_baselines(
    reference: LabeledBatch, texts: list[str], base: LoadedBase, max_length: int, probe_C: float = TrainParams().head_C
) -> dict[str, list[str]]:
    """Each baseline's predicted label for ``texts``, fitted on ``reference`` (the rows the candidate trained on);
    ``probe_C``: the candidate's own ``head_C``, every row weighted alike (see the module's note).
    A call with the same inputs as an earlier one in this process (the preparation's) gets its predictions."""
    key = baselines_key(reference, texts, base, max_length, probe_C)
    held = None if key is None else PREPARED.get(key)
    if held is not None:
        return held
    predictions = _fit_predict_baselines(reference, texts, base, max_length, probe_C)
    if key is not None:
        PREPARED.put(key, predictions)
    return predictions


def _fit_predict_baselines(
    reference: LabeledBatch, texts: list[str], base: LoadedBase, max_length: int, probe_C: float
) -> dict[str, list[str]]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    def fit_predict(train_x, test_x, C: float) -> list[str]:
        clf = LogisticRegression(C=C, max_iter=1000, class_weight="balanced", random_state=0)
        return clf.fit(train_x, reference.labels).predict(test_x).tolist()

    vectoriser = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True)
    return {
        "probe": fit_predict(
            frozen_embeddings(reference.texts, base, max_length), frozen_embeddings(texts, base, max_length), probe_C
        ),
        "lexical": fit_predict(vectoriser.fit_transform(reference.texts), vectoriser.transform(texts), LEXICAL_C),
    }
