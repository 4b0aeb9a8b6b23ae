"""Noise-robust probe heads on frozen embeddings: Banking77 with uniformly flipped labels (issue 25).

Not a test. The frozen embeddings of each seed's sample are computed once (``max_length`` 64, as
training encodes) and every variant is a few scikit-learn fits on them, each chosen from the noisy
labels alone (only what the trainer sees); the clean labels score the test set, and the one row marked
"oracle" (the ceiling of any row filter), nothing else.
Prints a Markdown table and saves JSON to bench/results/noisy_probe.json.

    PYTHONPATH=$PWD .venv/bin/python bench/noisy_probe.py --per-class 8 --noise 0.0 0.4 --seeds 3
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import arguments  # noqa: E402
from bench.banking77 import flip, read, sample  # noqa: E402

RESULTS = REPO / "bench" / "results" / "noisy_probe.json"


def logreg(emb: np.ndarray, y: np.ndarray, C: float = 10.0, weight: np.ndarray | None = None):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=C, max_iter=1000, class_weight="balanced", random_state=0).fit(
        emb, y, sample_weight=weight
    )


def oof(emb: np.ndarray, y: np.ndarray, num_labels: int, seed: int) -> np.ndarray:
    from pipelines.batches.noise_audit import out_of_sample_proba

    return out_of_sample_proba(emb, y, num_labels, seed=seed)


def flagged(y: np.ndarray, proba: np.ndarray) -> np.ndarray:
    from cleanlab.filter import find_label_issues

    return find_label_issues(y, proba, filter_by="both", min_examples_per_class=2, n_jobs=1)


def trimmed_means(emb: np.ndarray, y: np.ndarray, num_labels: int) -> np.ndarray:
    """Each class's mean after dropping, twice, the 40 % of its rows farthest from the mean (unit norm)."""
    means = np.zeros((num_labels, emb.shape[1]))
    for c in np.unique(y):
        members = emb[y == c]
        m = members.mean(axis=0)
        for _ in range(2):
            sims = members @ (m / max(np.linalg.norm(m), 1e-9))
            m = members[sims >= np.quantile(sims, 0.4)].mean(axis=0) if len(members) > 2 else m
        means[c] = m / max(np.linalg.norm(m), 1e-9)
    return means


@dataclass(frozen=True)
class Fitted:
    """A variant's predictor of class indices, and how many rows it pruned, relabelled or weighted down."""

    predict: Callable[[np.ndarray], np.ndarray]
    changed: int = 0


def lr_predict(clf) -> Callable[[np.ndarray], np.ndarray]:
    return lambda q: clf.classes_[clf.decision_function(q).argmax(1)]


def relabelled(emb: np.ndarray, y: np.ndarray, num_labels: int, seed: int) -> tuple[np.ndarray, int]:
    """Flagged rows take the out-of-fold argmax as their label (they are another class's example)."""
    proba = oof(emb, y, num_labels, seed)
    issues = flagged(y, proba)
    y_new = y.copy()
    y_new[issues] = proba[issues].argmax(1)
    return y_new, int((y_new != y).sum())


def knn_soft(emb: np.ndarray, y: np.ndarray, num_labels: int, k: int, alpha: float) -> np.ndarray:
    """Soft labels: alpha on the given label, 1 - alpha spread over the k nearest rows' labels."""
    sims = emb @ emb.T
    np.fill_diagonal(sims, -np.inf)
    soft = np.zeros((len(y), num_labels))
    soft[np.arange(len(y)), y] = alpha
    for i, nn in enumerate(np.argsort(-sims, axis=1)[:, :k]):
        np.add.at(soft[i], y[nn], (1 - alpha) / k)
    return soft


def soft_logreg(emb: np.ndarray, soft: np.ndarray, C: float = 10.0):
    """Logistic regression on soft labels: each row repeated once per class it carries, weighted by it."""
    rows, cls = np.nonzero(soft > 1e-6)
    return logreg(emb[rows], cls, C, soft[rows, cls] * len(soft) / soft[rows, cls].sum())


def variants(
    emb: np.ndarray, y: np.ndarray, truth: np.ndarray, num_labels: int, seed: int
) -> dict[str, Callable[[], Fitted]]:
    """Each variant sees the noisy labels ``y`` only, but ``oracle prune``, the ceiling of any row filter."""
    from pipelines.training.class_margin import margin_weights
    from pipelines.training.objective import noise_weights
    from pipelines.training.params import TrainParams

    def trainer(action: str) -> Callable[[], Fitted]:
        """The head training fits: the label-noise filter with ``action``, gated by ``noise_filter: auto``."""

        def fit() -> Fitted:
            noise = noise_weights(emb, y, num_labels, TrainParams(noise_action=action), seed)
            return Fitted(lr_predict(logreg(emb, y, 10.0, noise.weights)), changed=noise.downweighted)

        return fit

    def prune() -> Fitted:
        issues = flagged(y, oof(emb, y, num_labels, seed))
        return Fitted(lr_predict(logreg(emb[~issues], y[~issues])), changed=int(issues.sum()))

    def relabel() -> Fitted:
        y_new, n = relabelled(emb, y, num_labels, seed)
        return Fitted(lr_predict(logreg(emb, y_new)), changed=n)

    def centroid_trimmed() -> Fitted:
        means = trimmed_means(emb, y, num_labels)
        return Fitted(lambda q: (q @ means.T).argmax(1))

    def knn() -> Fitted:
        soft = knn_soft(emb, y, num_labels, 5, 0.5)
        return Fitted(lr_predict(soft_logreg(emb, soft)), changed=int((soft.argmax(1) != y).sum()))

    def margin_always() -> Fitted:
        w = margin_weights(emb, y, TrainParams().noise_margin_temperature)
        return Fitted(lr_predict(logreg(emb, y, 10.0, w)), changed=int((w < 0.5).sum()))

    def oracle_prune() -> Fitted:
        right = y == truth
        return Fitted(lr_predict(logreg(emb[right], y[right])), changed=int((~right).sum()))

    return {
        "plain": lambda: Fitted(lr_predict(logreg(emb, y))),
        "weight": trainer("weight"),
        "prune flagged": prune,
        "relabel flagged": relabel,
        "trimmed class means": centroid_trimmed,
        "kNN soft labels": knn,
        "margin, every batch": margin_always,
        "margin, when auto finds the batch noisy": trainer("margin"),
        "oracle prune (clean labels)": oracle_prune,
    }


def main() -> None:
    from threadpoolctl import threadpool_limits

    from pipelines.metrics import quality_metrics
    from pipelines.settings import load_settings
    from serving.base_cache import frozen_encoder
    from serving.embeddings import frozen_embeddings

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-class", type=arguments.at_least(2), nargs="+", default=[8])
    ap.add_argument("--noise", type=arguments.fraction, nargs="+", default=[0.0, 0.4])
    ap.add_argument("--seeds", type=arguments.at_least(1), default=3)
    ap.add_argument("--test-per-class", type=arguments.at_least(1), default=20)
    ap.add_argument("--only", nargs="*", default=None, help="variant names to run (default all)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    threadpool_limits(1)
    encoder = frozen_encoder(load_settings().base_model_dir, "cpu")
    test = sample(read("test"), args.test_per_class, seed=0)
    classes = sorted(set(test.category))
    index = {c: i for i, c in enumerate(classes)}
    test_emb = frozen_embeddings(test.text.tolist(), encoder, 64)
    train = read("train")
    rows = []
    for per_class in args.per_class:
        for seed in range(args.seeds):
            df = sample(train, per_class, seed)
            emb = frozen_embeddings(df.text.tolist(), encoder, 64)
            for rate in args.noise:
                noisy, flipped = flip(df.category.tolist(), rate, seed)
                y = np.array([index[c] for c in noisy])
                truth = np.array([index[c] for c in df.category])
                for name, fit in variants(emb, y, truth, len(classes), seed).items():
                    if args.only and name not in args.only:
                        continue
                    start = time.perf_counter()
                    fitted = fit()
                    seconds = time.perf_counter() - start
                    pred = [classes[i] for i in fitted.predict(test_emb)]
                    f1 = quality_metrics(test.category.tolist(), pred, classes).macro_f1
                    row = {
                        "per_class": per_class,
                        "noise": rate,
                        "seed": seed,
                        "variant": name,
                        "macro_f1": round(f1, 4),
                        "rows_changed": fitted.changed,
                        "flipped": len(flipped),
                        "seconds": round(seconds, 2),
                        "load": os.getloadavg()[0],
                    }
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    table = report(rows)
    print("\n" + table)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO).stdout
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "commit": commit.strip(),
                "machine": platform.platform(),
                "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                "rows": rows,
                "table": table,
            },
            indent=2,
        ),
        encoding="utf-8",
    )
    print(f"saved {args.out}")


def report(rows: list[dict]) -> str:
    settings = sorted({(r["per_class"], r["noise"]) for r in rows})
    names = list(dict.fromkeys(r["variant"] for r in rows))
    head = "| variant | " + " | ".join(f"{n}/class, {p:.0%} flipped" for n, p in settings) + " |"
    lines = [head, "|---" * (len(settings) + 1) + "|"]
    for name in names:
        cells = []
        for n, p in settings:
            f1 = [r["macro_f1"] for r in rows if r["variant"] == name and (r["per_class"], r["noise"]) == (n, p)]
            cells.append(
                f"{statistics.mean(f1):.3f} ± {statistics.stdev(f1):.3f}"
                if len(f1) > 1
                else f"{f1[0]:.3f}"
                if f1
                else "–"
            )
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
