"""The simple models a candidate must beat, fitted on the candidate's own training rows.

- ``probe``: logistic regression on the frozen base model's mean-pooled embeddings: what training
  starts from, so a candidate below it lost what its base already knew.
- ``lexical``: character 1–3-gram TF-IDF + logistic regression. It reads any script, so it shows
  when the base model reads the data badly (Japanese with the English default: chABSA at 64 rows a
  class, lexical 0.69 against the probe's 0.54).

Both are deterministic (fixed seeds, lbfgs) and take a few seconds on 1,000 rows. The probe uses the
candidate's own head_C (its train_result.json), so it is the probe that candidate's training started from.
"""

from __future__ import annotations

from pipelines.records import LabeledBatch
from pipelines.training.params import TrainParams
from serving.embeddings import frozen_embeddings
from serving.model import LoadedBase

BASELINES = ("probe", "lexical")
LEXICAL_C = 10.0


def predict_baselines(
    reference: LabeledBatch, texts: list[str], base: LoadedBase, max_length: int, probe_C: float = TrainParams().head_C
) -> dict[str, list[str]]:
    """Each baseline's predicted label for ``texts``, fitted on ``reference`` (the rows the candidate trained on);
    ``probe_C``: the candidate's own ``head_C``, so the probe baseline is the probe its training started from."""
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
