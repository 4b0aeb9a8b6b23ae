"""Banking77 for the benchmarks and the tests that need real data: where it is, how it is sampled and corrupted.

Real online-banking queries, 77 intents (CC BY 4.0), read in place from ``../shared/datasets/banking77``
beside the checkout (``train.csv``, ``test.csv``; columns ``text``, ``category``) and never copied into
the project. One definition here, so every benchmark samples and flips labels the same way.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

FOLDER = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "banking77"


def read(split: str, folder: Path = FOLDER) -> pd.DataFrame:
    """``train`` or ``test``, every column as text (a query like "NA" stays a string)."""
    return pd.read_csv(folder / f"{split}.csv", dtype=str, keep_default_na=False)


def sample(df: pd.DataFrame, per_class: int, seed: int) -> pd.DataFrame:
    """``per_class`` rows of every intent, or all of them where it has fewer (4 intents have 35–61)."""
    rows = [g.sample(min(per_class, len(g)), random_state=seed) for _, g in df.groupby("category")]
    return pd.concat(rows).reset_index(drop=True)


EXTRA_TEST_SEED = 1234  # fixed apart from the sampling seeds, so every seed tests on the same held-out rows


def evaluation_rows(
    train: pd.DataFrame, test: pd.DataFrame, per_class: int, extra_per_class: int | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(train, test)`` of a benchmark run: ``per_class`` rows of each class of the test split (seed 0), plus
    ``extra_per_class`` of the train split held out (``hold_out``) and left out of ``train``."""
    test = sample(test, per_class, seed=0)
    if not extra_per_class:
        return train, test
    train, extra = hold_out(train, extra_per_class, seed=EXTRA_TEST_SEED)
    return train, pd.concat([test, extra], ignore_index=True)


def evaluation_rows_named(per_class: int, extra_per_class: int | None) -> str:
    """How a report names the test rows of :func:`evaluation_rows`."""
    held = f" + {extra_per_class}/class held out of train" if extra_per_class else ""
    return f"test {per_class}/class{held}"


def hold_out(df: pd.DataFrame, per_class: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(rest, held)``: ``per_class`` rows of every class set aside (all of a class that has no more), the rest
    left to sample training rows from, so no held row is ever trained on."""
    held = [g.sample(min(per_class, len(g)), random_state=seed).index for _, g in df.groupby("category")]
    index = held[0].append(held[1:])
    return df.drop(index).reset_index(drop=True), df.loc[index].reset_index(drop=True)


def hold_out_problem(df: pd.DataFrame, per_class: int, largest: int) -> str:
    """Why ``hold_out(df, per_class, ...)`` would shrink a sample of up to ``largest`` rows per class; empty when
    it would not. Held-out rows must not shrink a sample: a table would say 64/class of a class trained on fewer."""
    counts = df.category.value_counts()
    spare = counts - counts.clip(upper=largest)
    if per_class <= spare.min():
        return ""
    short = spare.idxmin()
    return (
        f"{per_class} would leave class {short!r} ({counts[short]} rows in train) fewer than the "
        f"{min(counts[short], largest)} rows a {largest}-per-class sample takes; at most {spare.min()} here"
    )


def flip(labels: list[str], rate: float, seed: int) -> tuple[list[str], list[int]]:
    """Replace ``rate`` of the labels by a different, uniformly chosen class; also the flipped positions."""
    rng = np.random.default_rng(seed + 1000)
    classes = sorted(set(labels))
    out = list(labels)
    chosen = rng.choice(len(labels), size=int(round(rate * len(labels))), replace=False)
    for i in chosen:
        out[i] = rng.choice([c for c in classes if c != labels[i]])
    return out, sorted(int(i) for i in chosen)
