"""Drift check: the candidate's training batch against the data production was trained on.

Evidently judges each monitored column (its own per-column tests, K-S / chi-square on small data) and
reports the share that drifted; the report is kept as HTML and JSON evidence. Text is never given to
Evidently as a raw text column (slow, and it crashes on low-vocabulary text): the text is turned into
numeric columns here, once:

- ``text_chars``: length in characters;
- ``unknown_token_share``: share of the text's tokens that are the base tokenizer's unknown token (tokens,
  not whitespace words: those mean nothing in Japanese, where a whole sentence is one "word");
- ``chars_per_token``: characters per token of the same tokenizer, which moves where the unknown
  share stays 0 (English words the vocabulary lacks are cut into more pieces);
- ``emb_pc1``, ``emb_pc2``: the base model's embeddings projected on the reference's first principal
  components;
- ``emb_centroid_sim``: cosine similarity of a row's embedding to the reference centroid, and
  ``emb_nearest_sim``: to its nearest reference row of a different text (a reference row leaves itself
  out of both, so that with no drift both sides have the same distribution). A batch from another domain sits farther from
  the reference on both, even when the first two principal components miss the change.
- ``label``: the label distribution (categorical).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipelines.evaluation.checks.report import finish
from pipelines.policy import DriftPolicy
from pipelines.records import CheckResult, LabeledBatch, Threshold
from registry.errors import TailorError

NAME = "drift"
HTML_FILE = "reports/drift.html"
JSON_FILE = "reports/drift_evidently.json"
PER_TEXT_COLUMNS = ("text_chars", "unknown_token_share", "chars_per_token")
NUMERIC_COLUMNS = (
    "text_chars",
    "unknown_token_share",
    "chars_per_token",
    "emb_pc1",
    "emb_pc2",
    "emb_centroid_sim",
    "emb_nearest_sim",
)
CATEGORICAL_COLUMNS = ("label",)
ROUND_DECIMALS = 5
MAX_ROWS = 2000


def run(
    current: LabeledBatch,
    reference: LabeledBatch | None,
    base_model_dir: Path,
    policy: DriftPolicy,
    *,
    reference_name: str | None = None,
    out_dir: Path | None = None,
    seed: int = 0,
) -> CheckResult:
    """Compare ``current`` (the candidate's training batch) with ``reference`` (production's).

    Not judged (passes, the reason in ``details``) when there is no reference or either side has fewer
    than ``drift.min_rows`` rows: a test on a handful of rows has no power to see drift.

    Raises:
        NotFoundError, RefusedError: the base model folder cannot be loaded.
        TailorError: Evidently's report lacks a per-column verdict (an Evidently version this code does not know).
    """
    details: dict = {
        "reference": reference_name,
        "current_rows": len(current),
        "reference_rows": len(reference) if reference is not None else 0,
        "min_rows": policy.min_rows,
        "max_rows_compared": MAX_ROWS,
    }
    if reference is None:
        details["summary"] = "not compared with a production version: not judged"
        return finish(NAME, [], details, out_dir=out_dir)
    if min(len(current), len(reference)) < policy.min_rows:
        details["summary"] = (
            f"{len(reference)} reference vs {len(current)} current rows, under "
            f"{policy.min_rows}: too few to judge drift, not judged"
        )
        return finish(NAME, [], details, out_dir=out_dir)

    ref_df, cur_df = features(_sample(reference, seed), _sample(current, seed + 1), base_model_dir, seed=seed)
    columns, share, snapshot = evidently_drift(ref_df, cur_df)
    drifted = sorted(c for c, v in columns.items() if v["drifted"])
    details.update(columns=columns, drifted_columns=drifted, drifted_share=share)
    details["summary"] = f"{len(drifted)} of {len(columns)} columns drifted ({share:.0%})" + (
        f": {', '.join(drifted)}" if drifted else ""
    )
    evidence = []
    if out_dir is not None:
        for rel, save in ((HTML_FILE, snapshot.save_html), (JSON_FILE, snapshot.save_json)):
            (Path(out_dir) / rel).parent.mkdir(parents=True, exist_ok=True)
            save(str(Path(out_dir) / rel))
            evidence.append(rel)
    thresholds = [Threshold.judge("drifted_share", "drift.max_drifted_share", share, "<=", policy.max_drifted_share)]
    return finish(NAME, thresholds, details, out_dir=out_dir, evidence=evidence)


@dataclass(frozen=True)
class EmbeddedRows:
    """Rows as the monitored columns need them: an identity per row (its text, or the text's hash when
    only that was kept), its label, its per-text features (``PER_TEXT_COLUMNS``) and its embedding."""

    ids: list[str]
    labels: list[str]
    per_text: dict[str, list[float]]
    embeddings: np.ndarray


def per_text_features(texts: list[str], base_model_dir: Path) -> dict[str, list[float]]:
    """The columns that depend on one text alone (what a recorder keeps when it keeps no text), read with
    the base's tokenizer, loaded once per process (``serving.base_cache``).

    Raises:
        NotFoundError, ConfigError, RefusedError: the base's tokenizer cannot be loaded.
    """
    from pipelines.batches.tokenizer_coverage import per_text
    from serving.base_cache import base_tokenizer

    tokenizer = base_tokenizer(base_model_dir)
    with tokenizer.lock:  # the server's recorder calls this from its request threads
        unknown_share, chars_per_token = per_text(texts, tokenizer.tokenizer)
    return {
        "text_chars": [float(len(t)) for t in texts],
        "unknown_token_share": unknown_share,
        "chars_per_token": chars_per_token,
    }


def embedded_rows(batch: LabeledBatch, base_model_dir: Path) -> EmbeddedRows:
    """``batch`` embedded by the base model, each row known by its text."""
    from serving.embeddings import embed

    return EmbeddedRows(
        ids=list(batch.texts),
        labels=list(batch.labels),
        per_text=per_text_features(batch.texts, base_model_dir),
        embeddings=embed(batch.texts, base_model_dir),
    )


def features(reference: LabeledBatch, current: LabeledBatch, base_model_dir: Path, *, seed: int = 0):
    """The monitored columns for both batches, as two data frames."""
    return feature_frames(embedded_rows(reference, base_model_dir), embedded_rows(current, base_model_dir), seed=seed)


def feature_frames(reference: EmbeddedRows, current: EmbeddedRows, *, seed: int = 0):
    """The monitored columns of rows already embedded, as two data frames."""
    import pandas as pd
    from sklearn.decomposition import PCA

    ref_emb, cur_emb = reference.embeddings, current.embeddings
    pca = PCA(n_components=2, random_state=seed).fit(ref_emb)
    total = ref_emb.sum(axis=0)
    # Embeddings are L2-normalised, so a dot product is a cosine similarity. A row's neighbour must be a
    # different text: otherwise a batch that repeats reference rows (a retrain on accumulated data) would
    # look closer to the reference than the reference is to itself.
    ids: dict[str, int] = {}
    ref_ids = np.array([ids.setdefault(t, len(ids)) for t in reference.ids])
    cur_ids = np.array([ids.setdefault(t, len(ids)) for t in current.ids])
    ref_sims = np.where(ref_ids[:, None] == ref_ids[None, :], -np.inf, ref_emb @ ref_emb.T)
    cur_sims = np.where(cur_ids[:, None] == ref_ids[None, :], -np.inf, cur_emb @ ref_emb.T)

    def frame(rows: EmbeddedRows, emb: np.ndarray, centroid: np.ndarray, sims: np.ndarray):
        pcs = pca.transform(emb)
        centroid = centroid / np.linalg.norm(centroid, axis=-1, keepdims=True).clip(min=1e-12)
        return pd.DataFrame(
            {
                **{column: rows.per_text[column] for column in PER_TEXT_COLUMNS},
                "emb_pc1": pcs[:, 0],
                "emb_pc2": pcs[:, 1],
                "emb_centroid_sim": (emb * centroid).sum(axis=-1),
                # A reference made of one repeated text leaves no neighbour: -inf becomes the floor, -1.
                "emb_nearest_sim": np.maximum(sims.max(axis=1), -1.0),
                "label": rows.labels,
            }
        )

    ref_df = frame(reference, ref_emb, total[None, :] - ref_emb, ref_sims)  # leave-one-out centroids
    cur_df = frame(current, cur_emb, np.broadcast_to(total, cur_emb.shape), cur_sims)
    # Float noise (1.0 vs 0.9999999) makes a constant column look like a tiny range, and Evidently's
    # histograms then fail ("Too many bins"): e.g. a retrain on the same texts as production.
    return ref_df.round(ROUND_DECIMALS), cur_df.round(ROUND_DECIMALS)


def _sample(batch: LabeledBatch, seed: int) -> LabeledBatch:
    """At most MAX_ROWS rows (seeded): the tests have ample power there, and time and the
    rows × rows similarity matrix stay small."""
    if len(batch) <= MAX_ROWS:
        return batch
    rows = sorted(np.random.default_rng(seed).choice(len(batch), MAX_ROWS, replace=False).tolist())
    return LabeledBatch(
        source=batch.source,
        texts=[batch.texts[i] for i in rows],
        labels=[batch.labels[i] for i in rows],
        ids=[batch.ids[i] for i in rows],
    )


def evidently_drift(ref_df, cur_df):
    """Evidently's per-column drift verdicts and its share of drifted columns."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=list(NUMERIC_COLUMNS), categorical_columns=list(CATEGORICAL_COLUMNS))
    with warnings.catch_warnings():
        # scipy warns on constant columns (e.g. no out-of-vocabulary word on either side); the test still answers.
        warnings.simplefilter("ignore", RuntimeWarning)
        snapshot = Report([DataDriftPreset()], include_tests=True).run(
            current_data=Dataset.from_pandas(cur_df, data_definition=definition),
            reference_data=Dataset.from_pandas(ref_df, data_definition=definition),
        )
    result = snapshot.dict()
    columns: dict[str, dict] = {}
    share = None
    for metric in result["metrics"]:
        config = metric["config"]
        if config["type"].endswith(":ValueDrift"):
            columns[config["column"]] = {
                "score": metric["value"],
                "method": config.get("method"),
                "threshold": config.get("threshold"),
            }
        elif config["type"].endswith(":DriftedColumnsCount"):
            share = float(metric["value"]["share"])
    for test in result["tests"]:
        column = test["metric_config"]["params"].get("column")
        if column in columns:
            columns[column]["drifted"] = test["status"] == "FAIL"
    missing = [c for c, v in columns.items() if "drifted" not in v]
    if share is None or missing or not columns:
        raise TailorError(f"Evidently's report lacks drift verdicts (share={share}, columns without a test: {missing})")
    return columns, share, snapshot
