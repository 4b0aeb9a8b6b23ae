"""Label-noise audit: confident learning (cleanlab) on out-of-sample probabilities.

The probabilities come from a logistic regression and nearest class means on the frozen base
model's sentence embeddings, averaged and predicted by cross-validation so that no row is scored by
a model that saw its own label. Training weights its noisy rows with the same probabilities. Confident
learning then counts the rows whose given label disagrees with a confidently predicted one (the
off-diagonal of the calibrated confident joint: the noise rate) and lists the rows whose given
label is most likely wrong.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.records import NoiseAudit, Record, listed

if TYPE_CHECKING:
    import numpy as np

# Inverse regularisation for the probe. Embeddings are L2-normalised (norm 1), so sklearn's default
# C=1 shrinks every class towards the prior and flattens the probabilities confident learning
# thresholds on; 10 is stronger yet still stable at 8 examples per class (bench/noise_audit.py).
PROBE_C = 10.0
DEFAULT_FOLDS = 5
# Embedding is the audit's whole cost (~10 ms a row on two cores): 100,000 rows took over 20 minutes.
# A seeded sample stratified by label estimates the rate as well; as many rows as training visits.
MAX_AUDIT_ROWS = 10_000
REVIEW_COLUMNS = ("id", "text", "given_label", "suggested_label", "confidence", "given_label_probability")


class SuspectedMislabel(Record):
    """One row whose given label confident learning doubts, for a person to review."""

    id: str
    text: str
    given_label: str
    suggested_label: str
    confidence: float  # out-of-sample probability of the suggested label
    given_label_probability: float


def audit_label_noise(
    texts: list[str],
    labels: list[str],
    ids: list[str],
    *,
    model_dir: Path,
    max_rate: float,
    folds: int = DEFAULT_FOLDS,
    seed: int = 0,
    max_rows: int = MAX_AUDIT_ROWS,
) -> tuple[NoiseAudit, list[SuspectedMislabel]]:
    """Embed the texts with the frozen base model, then run `audit_embeddings`.

    Rows with an empty label are left out (validation reports them as missing labels). Above
    ``max_rows`` labeled rows a seeded sample stratified by label is audited, with a note.

    Raises:
        NotFoundError: the base model folder is missing or incomplete.
        RefusedError: the base model would need remote code or pickle weights.
    """
    from serving import progress
    from serving.embeddings import embed

    keep = [i for i, label in enumerate(labels) if label.strip()]
    labeled = len(keep)
    if labeled > max_rows:
        keep = stratified_sample(keep, [labels[i] for i in keep], max_rows, seed)
    progress.step(f"label-noise audit: {len(keep)} rows")
    embeddings = embed([texts[i] for i in keep], model_dir)
    audit, suspects = audit_embeddings(
        embeddings,
        [labels[i] for i in keep],
        [ids[i] for i in keep],
        [texts[i] for i in keep],
        max_rate=max_rate,
        folds=folds,
        seed=seed,
    )
    if len(keep) < labeled:  # with thousands of two-row classes the "sample" may be every row
        sampled = (
            f"audited a seeded sample of {len(keep):,} of {labeled:,} labeled rows, stratified by label: the "
            "rate is estimated on it and suspects are listed from it"
        )
        audit = audit.model_copy(update={"notes": [sampled, *audit.notes]})
    return audit, suspects


def stratified_sample(rows: list[int], labels: list[str], size: int, seed: int) -> list[int]:
    """About ``size`` of ``rows`` in their order, each label in its share and with at least two rows
    where it has them (cross-validation needs two)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    by_label: dict[str, list[int]] = {}
    for row, label in zip(rows, labels):
        by_label.setdefault(label, []).append(row)
    chosen: list[int] = []
    for members in by_label.values():
        share = max(min(2, len(members)), round(size * len(members) / len(rows)))
        chosen.extend(rng.choice(members, size=share, replace=False).tolist())
    return sorted(chosen)


def audit_embeddings(
    embeddings: np.ndarray,
    labels: list[str],
    ids: list[str],
    texts: list[str],
    *,
    max_rate: float,
    folds: int = DEFAULT_FOLDS,
    seed: int = 0,
) -> tuple[NoiseAudit, list[SuspectedMislabel]]:
    """Estimate the noise rate and list suspected mislabels from precomputed embeddings.

    Classes with fewer than two rows cannot be cross-validated: they are left out with a note; with
    fewer than two classes left the audit is skipped (``estimated_rate`` None) with a note saying why.
    The number of folds drops to the smallest class size when a class has fewer rows than ``folds``.

    Returns:
        The audit summary and the suspects, most doubtful first.
    """
    import numpy as np

    counts: dict[str, int] = {}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    notes: list[str] = []
    too_small = sorted(label for label, n in counts.items() if n < 2)
    if too_small:
        notes.append(
            f"left out of the noise audit: {len(too_small)} class(es) with a single example "
            f"({listed(too_small)}); cross-validation needs two"
        )
    classes = sorted(label for label, n in counts.items() if n >= 2)
    rows = [i for i, label in enumerate(labels) if counts[label] >= 2]
    if len(classes) < 2:
        notes.append("noise audit skipped: fewer than two classes with at least two examples each")
        return NoiseAudit(estimated_rate=None, flagged=0, max_rate=max_rate, audited_rows=len(rows), notes=notes), []
    smallest = min(counts[c] for c in classes)
    used_folds = min(folds, smallest)
    if used_folds < folds:
        notes.append(
            f"cross-validation used {used_folds} folds instead of {folds}: the smallest class has {smallest} examples"
        )

    index = {label: k for k, label in enumerate(classes)}
    y = np.array([index[labels[i]] for i in rows])
    pred_probs = out_of_sample_proba(embeddings[rows], y, len(classes), folds=used_folds, seed=seed)
    rate, issues = _confident_learning(y, pred_probs)

    suspects = []
    for r in issues:
        row = rows[r]
        suggested = int(np.argmax(pred_probs[r]))
        suspects.append(
            SuspectedMislabel(
                id=ids[row],
                text=texts[row],
                given_label=labels[row],
                suggested_label=classes[suggested],
                confidence=round(float(pred_probs[r, suggested]), 4),
                given_label_probability=round(float(pred_probs[r, y[r]]), 4),
            )
        )
    audit = NoiseAudit(
        estimated_rate=round(rate, 4),
        flagged=len(suspects),
        max_rate=max_rate,
        audited_rows=len(rows),
        folds=used_folds,
        notes=notes,
    )
    return audit, suspects


def out_of_sample_proba(
    embeddings: np.ndarray, y: np.ndarray, num_labels: int, *, folds: int = DEFAULT_FOLDS, seed: int = 0
) -> np.ndarray:
    """Cross-validated class probabilities: each row predicted by models that never saw it.

    In-sample probabilities would agree with the (possibly wrong) label they were fit on, which is
    exactly what confident learning must avoid. Two models, averaged: a logistic regression
    (sharp, but it partly fits the wrong labels of its folds) and nearest class means (blunt, but
    a class mean averages the wrong labels out). On Banking77 with 40 % flipped labels the average
    left fewer wrong labels and gave a better probe than either alone (bench/train.py), and the
    audit flagged the flipped rows with better precision (bench/noise_audit.py).
    ``folds`` drops to the size of the smallest class present; every class present needs two rows.
    """
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from threadpoolctl import threadpool_limits

    folds = int(min(folds, np.bincount(y, minlength=num_labels)[np.unique(y)].min()))
    proba = np.zeros((len(y), num_labels))
    splits = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(embeddings, y)
    # One BLAS thread: these products (a thousand rows by a few hundred dimensions) are too small to share,
    # and OpenBLAS's second thread spins for the core the embedding, the suite or a training child holds.
    # Banking77 at 16/class, five folds: 14 s with two threads against 0.6 s with one at load 5, the same
    # estimate and suspects (probabilities within 2e-6: only the order of the sums changes).
    with threadpool_limits(limits=1, user_api="blas"):
        for train_idx, test_idx in splits:
            # tol 1e-3 instead of 1e-4: the same noise estimate (0.179 either way on Banking77 at 20 % flips,
            # measured before the class means joined the average) for a third of the CPU time at 77 classes.
            clf = LogisticRegression(C=PROBE_C, tol=1e-3, max_iter=1000).fit(embeddings[train_idx], y[train_idx])
            nearest_mean = class_mean_proba(embeddings[train_idx], y[train_idx], clf.classes_, embeddings[test_idx])
            proba[np.ix_(test_idx, clf.classes_)] = (clf.predict_proba(embeddings[test_idx]) + nearest_mean) / 2
    return proba


def class_mean_proba(
    embeddings: np.ndarray, y: np.ndarray, classes: np.ndarray, queries: np.ndarray, scale: float = 20.0
) -> np.ndarray:
    """Softmax over scaled cosine similarity to each class mean (columns in ``classes`` order)."""
    import numpy as np
    from scipy.special import softmax

    means = np.stack([embeddings[y == c].mean(axis=0) for c in classes])
    means /= np.linalg.norm(means, axis=1, keepdims=True).clip(min=1e-9)
    return softmax(scale * queries @ means.T, axis=1)


def _confident_learning(y: np.ndarray, pred_probs: np.ndarray) -> tuple[float, list[int]]:
    """(estimated noise rate, indices of label issues ranked most doubtful first)."""
    from cleanlab.count import num_label_issues
    from cleanlab.filter import find_label_issues

    # Off-diagonal count of the calibrated confident joint (cleanlab's own estimate of how many labels
    # are wrong). On Banking77 it tracked the true flip rate more closely than 1 - trace of the
    # estimated joint, which over-counted at 20-40 % noise (bench/noise_audit.py).
    rate = num_label_issues(y, pred_probs) / len(y)
    # n_jobs=1: the batches are small and forking workers costs more than it saves on two cores.
    issues = find_label_issues(y, pred_probs, return_indices_ranked_by="self_confidence", n_jobs=1)
    return rate, [int(i) for i in issues]


def write_review(suspects: list[SuspectedMislabel], path: Path) -> Path:
    """Write the suspects as a CSV a reviewer opens in a spreadsheet (columns `REVIEW_COLUMNS`).

    Text cells a spreadsheet would run as a formula get a leading apostrophe (`spreadsheet_cell`).
    UTF-8 with a byte-order mark: without one, Japanese Excel opens a CSV as CP932 and shows the
    Japanese text as garbage.
    """
    from pipelines.batches.inert_text import spreadsheet_cell

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8-sig") as handle:
        writer = csv.DictWriter(handle, fieldnames=REVIEW_COLUMNS)
        writer.writeheader()
        for suspect in suspects:
            row = suspect.model_dump()
            writer.writerow(
                {key: spreadsheet_cell(value) if isinstance(value, str) else value for key, value in row.items()}
            )
    return path
