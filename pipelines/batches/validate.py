"""Judge an incoming labeled batch: readable, the expectation suite, whether the base model reads it,
then the label-noise audit. `validate_batch` only judges; ``route.validate_and_route`` also files
the batch (quarantine or DVC).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.batches.read import (
    BatchReadError,
    NotAFileError,
    UnsupportedFormatError,
    read_batch,
)
from pipelines.batches.rules import example
from pipelines.batches.suite import run_suite
from pipelines.batches.text_encoding import codec_name
from pipelines.policy import Policy
from pipelines.records import ExpectationFailure, LabeledBatch, NoiseAudit, TokenizerCoverage, ValidationReport
from registry.errors import ConfigError
from registry.files import require_file
from registry.text import bad_utf8_byte

if TYPE_CHECKING:
    from pipelines.batches.noise_audit import SuspectedMislabel


COVERAGE = ExpectationFailure(
    name="base model reads the text",
    why="the base model's tokenizer must know the batch's characters (data.max_unknown_token_share) without "
    "shredding them into bytes (data.min_chars_per_token): text it cannot read trains an adapter on noise",
)


READABLE = ExpectationFailure(
    name="readable batch file",
    why="the file must exist, be CSV/JSONL/Parquet, be under data.max_file_mb, be UTF-8 text (or in the "
    "--encoding given) with `text` and `label` columns and have at least one row; anything else is not a "
    "batch we can judge",
)


def load_labels(path: Path) -> list[str]:
    """Read a labels file: one label per line; blank lines and ``#`` comments are skipped.

    Raises:
        NotFoundError: the file does not exist or is not a regular file.
        ConfigError: the file is not UTF-8, holds no labels or repeats one.
    """
    path = require_file(path, "labels file")
    try:
        content = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"labels file {path} is not UTF-8 text ({bad_utf8_byte(err)}); save it as UTF-8, one label per line"
        ) from None
    labels = [line.strip() for line in content.splitlines()]
    labels = [label for label in labels if label and not label.startswith("#")]
    if not labels:
        raise ConfigError(f"labels file {path} holds no labels")
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise ConfigError(f"labels file {path} repeats {', '.join(repeated)}")
    return labels


def validate_batch(
    path: Path,
    policy: Policy,
    *,
    labels: list[str] | None = None,
    holdout: Path | None = None,
    base_model: Path | None = None,
    noise_audit: bool = True,
    encoding: str | None = None,
) -> tuple[ValidationReport, list[SuspectedMislabel]]:
    """Judge a batch file: readable, the suite, then (with ``base_model``) whether its tokenizer reads
    the text and (with ``noise_audit`` too) the label-noise audit on its embeddings.

    The audit is skipped, with a note, when the base model cannot read the batch: its embeddings of
    unknown tokens would flag rows at random.

    A file that exists but cannot be read is a failed batch (``readable batch file``), not an error:
    it is reported and quarantined like any other rejected batch. A file whose extension is not a
    batch format is no batch at all (``params.yaml`` given by mistake): it is refused and stays put.

    Returns:
        The report (``accepted`` is False when anything failed) and the suspected mislabels
        (empty without the audit).

    Raises:
        NotFoundError: the batch or holdout path does not exist.
        NotAFileError: the batch path is a directory.
        UnsupportedFormatError: the batch's extension is not CSV, JSONL or Parquet.
        BatchReadError: the holdout file cannot be read.
        ConfigError: the suite file or the policy is invalid, or ``encoding`` is not a text encoding.
        NotFoundError, RefusedError: ``base_model`` is not a loadable base-model folder.
    """
    max_bytes = policy.data.max_file_bytes
    try:
        # --encoding names the batch's encoding, not the holdout's: its fix is to convert the file.
        holdout_batch = read_batch(holdout, max_bytes=max_bytes, encoding_option=None) if holdout is not None else None
    except BatchReadError as err:  # the reader says "batch file …": say which input it was
        raise type(err)(f"--holdout: {err}") from None
    base = {
        "batch": str(path),
        "labels": list(labels or []),
        "policy_sha256": policy.sha256 or None,
        "encoding": codec_name(encoding) if encoding is not None else "utf-8",
    }
    try:
        batch = read_batch(path, max_bytes=max_bytes, encoding=encoding)
    except NotAFileError:
        raise
    except UnsupportedFormatError as err:
        raise UnsupportedFormatError(f"{err}; it is not a batch, so it was left in place") from None
    except BatchReadError as err:
        failure = READABLE.model_copy(update={"count": 1, "examples": [str(err)]})
        return ValidationReport(**base, rows=0, accepted=False, failures=[failure], checked=[READABLE.name]), []
    # The suite (Great Expectations: its import alone takes seconds, in Python) runs in a thread beside
    # the tokenizer coverage and the noise audit (the base's embeddings, mostly native code outside the GIL).
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="tailor-suite") as pool:
        suite = pool.submit(run_suite, batch, policy.data, labels=labels, holdout=holdout_batch)
        try:
            coverage, unreadable, noise, suspects = _read_by_base(batch, policy, base_model, noise_audit)
        finally:
            result = suite.result()  # the suite's own error first, as when it ran before the base's checks
    failures, notes, checked = list(result.failures), list(result.notes), [READABLE.name, *result.checked]
    if coverage is not None:
        checked.append(COVERAGE.name)
        if unreadable:
            failures.append(COVERAGE.model_copy(update={"count": 1, "examples": [unreadable]}))
    if base_model is None or not noise_audit:
        notes.append("label-noise audit not run (--no-noise-audit)")
    elif unreadable:
        notes.append("label-noise audit not run: the base model cannot read the batch")
    elif noise is not None and noise.estimated_rate is not None and noise.estimated_rate > policy.data.max_noise_rate:
        failures.append(
            ExpectationFailure(
                name="label noise under the limit",
                why="confident learning estimates this share of rows carries a wrong label; above "
                "data.max_noise_rate the batch is more likely a broken export than honest mistakes",
                count=noise.flagged,
                examples=[f"estimated noise rate {noise.estimated_rate:.3f} > limit {policy.data.max_noise_rate}"]
                + [example(f"id {s.id}: {s.given_label} → {s.suggested_label}", s.text) for s in suspects[:4]],
            )
        )
    report = ValidationReport(
        **base,
        rows=len(batch),
        accepted=not failures,
        failures=failures,
        noise=noise,
        coverage=coverage,
        checked=checked + (["label noise under the limit"] if noise else []),
        notes=notes,
        class_counts=_class_counts(batch),
    )
    return report, suspects


def _read_by_base(
    batch: LabeledBatch, policy: Policy, base_model: Path | None, noise_audit: bool
) -> tuple[TokenizerCoverage | None, str | None, NoiseAudit | None, list[SuspectedMislabel]]:
    """What the base model makes of the batch: its tokenizer's coverage, why it cannot read the batch
    (None: it can), and (with ``noise_audit``, when it can read it) the label-noise audit and its suspects."""
    if base_model is None:
        return None, None, None, []
    from pipelines.batches.tokenizer_coverage import measure_folder, refusal

    coverage = measure_folder(batch.texts, base_model)
    unreadable = refusal(coverage, policy.data.max_unknown_token_share, policy.data.min_chars_per_token)
    if unreadable or not noise_audit:
        return coverage, unreadable, None, []
    from pipelines.batches.noise_audit import audit_label_noise

    noise, suspects = audit_label_noise(
        batch.texts, batch.labels, batch.ids, model_dir=base_model, max_rate=policy.data.max_noise_rate
    )
    return coverage, None, noise, suspects


def _class_counts(batch: LabeledBatch) -> dict[str, int]:
    counts: dict[str, int] = {}
    for label in batch.labels:
        counts[label] = counts.get(label, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
