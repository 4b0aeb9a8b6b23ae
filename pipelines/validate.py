"""Validate an incoming labeled batch: the expectation suite, then the label-noise audit.

The suite lives in ``data/expectations/batch.yaml``: Great Expectations 1.x expectations run on an
ephemeral context with a pandas data source, plus the few checks GE has no expectation for
(computed here in pandas, reported in the same `ExpectationFailure` shape). Thresholds come from
the policy's ``data`` section. `validate_batch` only judges; `validate_and_route` also files the
batch (quarantine or DVC).
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import yaml

from pipelines import yaml_file
from pipelines.batch_io import BatchReadError, NotAFileError, UnsupportedFormatError, megabytes, read_batch
from registry.text import bad_utf8_byte
from pipelines.policy import DataPolicy, Policy
from pipelines.records import ExpectationFailure, LabeledBatch, ValidationReport
from pipelines.text_encoding import codec_name
from registry.errors import ConfigError, TailorError
from registry.settings import StoreSettings
from registry.files import require_file

if TYPE_CHECKING:
    from pipelines.noise_audit import SuspectedMislabel

SUITE_FILE = Path(__file__).resolve().parents[1] / "data" / "expectations" / "batch.yaml"
# Labels that spreadsheet and pandas exports write for "no value".
NULL_LABELS = frozenset({"nan", "null", "none", "n/a"})
NUMERIC_LABEL = re.compile(r"^[+-]?\d+(\.\d+)?$")
MAX_EXAMPLES = 5
MAX_EXAMPLE_CHARS = 120
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


@dataclass(frozen=True)
class SuiteEntry:
    """One line of the suite: a GE expectation (``expectation``) or a Tailor check (``check``)."""

    name: str
    why: str
    expectation: str | None = None
    check: str | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    needs: str | None = None  # "labels" | "holdout": run only when that input was given


@dataclass(frozen=True)
class SuiteResult:
    failures: list[ExpectationFailure]
    checked: list[str]
    notes: list[str]


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
        raise ConfigError(f"labels file {path} is not UTF-8 text ({bad_utf8_byte(err)}); "
                          "save it as UTF-8, one label per line") from None  # fmt: skip
    labels = [line.strip() for line in content.splitlines()]
    labels = [label for label in labels if label and not label.startswith("#")]
    if not labels:
        raise ConfigError(f"labels file {path} holds no labels")
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise ConfigError(f"labels file {path} repeats {', '.join(repeated)}")
    return labels


def load_suite(path: Path = SUITE_FILE) -> list[SuiteEntry]:
    """Read and check the suite file: every entry names a known GE expectation or Tailor check.

    Raises:
        ConfigError: the file is missing, not YAML, or an entry is malformed or unknown.
    """
    import great_expectations as gx

    try:
        doc = yaml_file.safe_load(require_file(path, "expectation suite", ConfigError).read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ConfigError(f"expectation suite {path} is not valid YAML: {yaml_file.one_line(err)}") from None
    raw = doc.get("suite") if isinstance(doc, dict) else None
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"expectation suite {path} must have a non-empty `suite:` list")
    entries = []
    for number, item in enumerate(raw, start=1):
        try:
            entry = SuiteEntry(**item)
        except TypeError as err:
            raise ConfigError(f"expectation suite {path} entry {number}: {err}") from None
        if (entry.expectation is None) == (entry.check is None):
            raise ConfigError(f"expectation suite {path} entry {number} ({entry.name}): give one of expectation/check")
        if entry.expectation and not hasattr(gx.expectations, entry.expectation):
            raise ConfigError(f"expectation suite {path} entry {number}: unknown GE expectation {entry.expectation}")
        if entry.check and entry.check not in CHECKS:
            raise ConfigError(f"expectation suite {path} entry {number}: unknown check {entry.check}")
        if entry.needs not in (None, "labels", "holdout"):
            raise ConfigError(f"expectation suite {path} entry {number}: needs must be labels or holdout")
        if not entry.why.strip():
            raise ConfigError(f"expectation suite {path} entry {number} ({entry.name}) has no why")
        # Results are matched back to entries by name, and the report lists failures by name.
        if any(entry.name == seen.name for seen in entries):
            raise ConfigError(f"expectation suite {path} entry {number}: name '{entry.name}' is used twice")
        entries.append(entry)
    return entries


def normalise_text(text: str) -> str:
    """Width- and case-folded, Latin accents and punctuation removed, whitespace collapsed: near-copies compare equal.

    NFKC folds full-width Latin and half-width katakana to their usual forms. Only the accents of the
    Latin/Greek/Cyrillic block (U+0300–U+036F) are dropped: the kana voicing marks (ガ is カ + U+3099)
    and the vowel signs of Indic scripts are letters of their words, and dropping them made
    ガス and カス one word. A text with no letter or digit ("???", "👍") keeps its symbols, only
    case-folded with whitespace collapsed: stripped of them, every such text would compare equal.
    """
    decomposed = unicodedata.normalize("NFD", unicodedata.normalize("NFKC", text).casefold())
    kept = "".join(_kept_char(ch) for ch in decomposed)
    return unicodedata.normalize("NFC", " ".join(kept.split())) or " ".join(text.casefold().split())


def _kept_char(ch: str) -> str:
    if "\u0300" <= ch <= "\u036f":
        return ""
    # Marks (Mn/Mc) belong to their letter: the Devanagari vowel sign ि is "Mc", not alphanumeric.
    return ch if ch.isalnum() or unicodedata.category(ch).startswith("M") else " "


def batch_frame(batch: LabeledBatch):
    """The batch as the suite sees it: empty cells and null-like labels as nulls, plus text_normalised."""
    import pandas as pd

    texts = [t if t.strip() else None for t in batch.texts]
    labels = [None if (not x.strip() or x.strip().lower() in NULL_LABELS) else x for x in batch.labels]
    return pd.DataFrame(
        {
            "id": batch.ids,
            "text": texts,
            "label": labels,
            "group": batch.groups if batch.groups is not None else [None] * len(batch),
            "text_normalised": [normalise_text(t) if t is not None else None for t in texts],
        }
    )


def run_suite(
    batch: LabeledBatch,
    policy: DataPolicy,
    *,
    labels: list[str] | None = None,
    holdout: LabeledBatch | None = None,
    suite: list[SuiteEntry] | None = None,
) -> SuiteResult:
    """Run every suite entry on the batch and collect every failure (not just the first).

    Raises:
        ConfigError: the suite file is invalid.
    """
    entries = suite if suite is not None else load_suite()
    frame = batch_frame(batch)
    given = {"labels": labels is not None, "holdout": holdout is not None}
    active = [e for e in entries if e.needs is None or given[e.needs]]
    notes = [
        f"skipped '{e.name}': no {e.needs} given" + (" (--labels FILE or --adapter NAME)" if e.needs == "labels" else "")
        for e in entries
        if e.needs is not None and not given[e.needs]
    ]
    parameters = {
        "min_text_chars": policy.min_text_chars,
        "max_text_chars": policy.max_text_chars,
        "duplicates_mostly": 1.0 - policy.max_duplicate_share,
        "labels": list(labels or []),
        "holdout_texts": sorted(set(holdout.texts)) if holdout else [],
        "holdout_normalised": sorted({normalise_text(t) for t in holdout.texts}) if holdout else [],
    }
    failures = _run_expectations([e for e in active if e.expectation], frame, parameters)
    for entry in active:
        if entry.check:
            failure = CHECKS[entry.check](frame, policy, labels)
            if failure is not None:
                count, examples = failure
                failures.append(_failure(entry, count, examples))
    order = {e.name: i for i, e in enumerate(active)}
    failures.sort(key=lambda f: order[f.name])
    return SuiteResult(failures=failures, checked=[e.name for e in active], notes=notes)


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
    max_bytes = megabytes(policy.data.max_file_mb)
    try:
        # --encoding names the batch's encoding, not the holdout's: its fix is to convert the file.
        holdout_batch = read_batch(holdout, max_bytes=max_bytes, encoding_option=None) if holdout is not None else None
    except BatchReadError as err:  # the reader says "batch file …": say which input it was
        raise type(err)(f"--holdout: {err}") from None
    base = {"batch": str(path), "labels": list(labels or []), "policy_sha256": policy.sha256 or None,
            "encoding": codec_name(encoding) if encoding is not None else "utf-8"}
    try:
        batch = read_batch(path, max_bytes=max_bytes, encoding=encoding)
    except NotAFileError:
        raise
    except UnsupportedFormatError as err:
        raise UnsupportedFormatError(f"{err}; it is not a batch, so it was left in place") from None
    except BatchReadError as err:
        failure = READABLE.model_copy(update={"count": 1, "examples": [str(err)]})
        return ValidationReport(**base, rows=0, accepted=False, failures=[failure], checked=[READABLE.name]), []
    result = run_suite(batch, policy.data, labels=labels, holdout=holdout_batch)
    failures, notes, checked = list(result.failures), list(result.notes), [READABLE.name, *result.checked]
    coverage, unreadable = None, False
    if base_model is not None:
        from pipelines.tokenizer_coverage import measure_folder, refusal

        coverage = measure_folder(batch.texts, base_model)
        checked.append(COVERAGE.name)
        if why := refusal(coverage, policy.data.max_unknown_token_share, policy.data.min_chars_per_token):
            failures.append(COVERAGE.model_copy(update={"count": 1, "examples": [why]}))
            unreadable = True
    noise, suspects = None, []
    audit = base_model is not None and noise_audit
    if audit and unreadable:
        notes.append("label-noise audit not run: the base model cannot read the batch")
    elif audit:
        from pipelines.noise_audit import audit_label_noise

        noise, suspects = audit_label_noise(
            batch.texts, batch.labels, batch.ids, model_dir=base_model, max_rate=policy.data.max_noise_rate
        )
        if noise.estimated_rate is not None and noise.estimated_rate > policy.data.max_noise_rate:
            failures.append(
                ExpectationFailure(
                    name="label noise under the limit",
                    why="confident learning estimates this share of rows carries a wrong label; above "
                    "data.max_noise_rate the batch is more likely a broken export than honest mistakes",
                    count=noise.flagged,
                    examples=[f"estimated noise rate {noise.estimated_rate:.3f} > limit {policy.data.max_noise_rate}"]
                    + [_example(f"id {s.id}: {s.given_label} → {s.suggested_label}", s.text) for s in suspects[:4]],
                )
            )
    else:
        notes.append("label-noise audit not run (--no-noise-audit)")
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


def _why_copied(path: Path, incoming: Path) -> str | None:
    """Why a rejected batch is copied into quarantine rather than moved; None: it is moved."""
    from pipelines.git_files import tracked_by_git

    # The folder holding the name the user gave, its own links resolved; never the file's target:
    # a link in ~/Downloads to a file in incoming is not a batch handed in, and moving the link
    # would rename the user's file.
    if not Path(os.path.abspath(path)).parent.resolve().is_relative_to(incoming.resolve()):
        return f"it is not in the incoming folder {incoming}"
    if path.is_symlink():
        return f"it is a symbolic link (to {os.readlink(path)}), so moving it would move the link, not the batch"
    if tracked_by_git(path):
        return "git tracks it, so moving it would delete it from the checkout"
    return None


def validate_and_route(
    path: Path,
    policy: Policy,
    *,
    data_dir: Path,
    labels_file: Path | None = None,
    labels: list[str] | None = None,
    holdout: Path | None = None,
    base_model: Path | None = None,
    noise_audit: bool = True,
    report_dir: Path | None = None,
    track: bool = True,
    store: StoreSettings | None = None,
    encoding: str | None = None,
    incoming: Path | None = None,
) -> ValidationReport:
    """Validate a batch file, then route it: quarantine when rejected, DVC-track when accepted.

    Only a rejected batch in the ``incoming`` folder is moved into quarantine: that folder is where
    batches are handed to Tailor. A batch from anywhere else (``~/Downloads``) is the user's file:
    a copy goes to quarantine and the file stays where it was. So does one that git tracks, even in
    ``incoming`` (moving it would delete it from the checkout).

    `tailor validate`, the ``validate`` stage of ``dvc.yaml`` and the retraining flow all call this,
    so a batch is judged and filed the same way whoever brings it in.

    Args:
        data_dir: holds ``quarantine/<UTC time>-<name>/`` and the default ``reports/<UTC time>-<name>/``.
        labels_file: the allowed labels, one per line (read with `load_labels`); or pass ``labels``.
        base_model: the base model whose tokenizer must read the batch and, with ``noise_audit``,
            whose embeddings audit its label noise; None skips both.
        report_dir: where an accepted batch's report goes (a rejected batch's report always goes
            next to it in quarantine).
        track: ``dvc add`` + ``dvc push`` an accepted batch in the DVC repository holding
            ``data_dir``; False only records its md5.
        store: the DVC remote's store; None means the configured one (``load_settings().store()``).
        encoding: the batch's text encoding (see `read_batch`); None is UTF-8.
        incoming: the folder whose rejected batches are moved, not copied; default ``data_dir/incoming``.

    Returns:
        The report, with the paths of its files and ``quarantined_to`` or ``data_version`` filled in.

    Raises:
        NotFoundError: the batch, holdout or labels path does not exist (nothing is moved).
        NotAFileError: the batch path is a directory (nothing is moved).
        UnsupportedFormatError: the batch is not CSV, JSONL or Parquet (nothing is moved).
        StoreError: the batch was accepted and tracked but ``dvc push`` failed (the report is written).
        RefusedError: the batch was accepted but ``dvc add`` refused it (the report is written).
        IntegrityError: a copy into quarantine did not verify (the original is kept, the report written).
        QuarantineError: a rejected batch cannot be moved or copied (read-only or immutable folder);
            it is kept in place and its report written.
        ConfigError: labels file, policy, suite or DVC configuration is invalid (after acceptance,
            the report is written).
    """
    from pipelines.data_version import dvc_md5, track as dvc_track
    from pipelines.batch_folder import fresh_folder
    from pipelines.quarantine import copy_into, move_into
    from pipelines.validation_report import REVIEW_CSV, write_reports

    path = Path(path)
    if labels_file is not None:
        labels = load_labels(labels_file)
    report, suspects = validate_batch(path, policy, labels=labels, holdout=holdout, base_model=base_model,
                                      noise_audit=noise_audit, encoding=encoding)  # fmt: skip
    now = datetime.now(timezone.utc)
    if not report.accepted:
        folder = fresh_folder(Path(data_dir) / "quarantine", path, now=now)
        why = _why_copied(path, Path(incoming) if incoming is not None else Path(data_dir) / "incoming")
        if why is not None and path.stat().st_size > megabytes(policy.data.max_file_mb):
            # A copy of a file refused for its size would only fill the disk a second time.
            note = f"left in place, not copied to quarantine: {why}, and it is over data.max_file_mb"
            return write_reports(report.model_copy(update={"notes": [*report.notes, note]}), suspects, folder)
        try:
            # Written before the move as well: a run killed between the two must not leave a
            # quarantined batch without the reason it is there.
            write_reports(report, suspects, folder)
            # Absolute, not resolved: the name the batch has in quarantine, whatever links lead there.
            target = Path(os.path.abspath(move_into(path, folder) if why is None else copy_into(path, folder)))
        except TailorError as err:
            left = report.model_copy(update={"notes": [*report.notes, f"left in place, not quarantined: {err}"]})
            written = write_reports(left, suspects, folder)
            failed = ", ".join(f.name for f in report.failures)
            raise type(err)(f"batch {path} was REJECTED ({failed}) but stays in place, not quarantined: {err}; "
                            f"its report is {written.report_markdown}") from None  # fmt: skip
        notes = [*report.notes] + ([] if why is None else [f"copied to quarantine; {path} stays where it was: {why}"])
        update = {"quarantined_to": str(target), "notes": notes}
        return write_reports(report.model_copy(update=update), suspects, folder)

    folder = Path(report_dir) if report_dir else fresh_folder(Path(data_dir) / "reports", path, now=now)
    stale_review = folder / REVIEW_CSV
    if report.noise is None and stale_review.resolve() != path.resolve():
        # A --report-dir given again keeps what an earlier run wrote there: a review from an audit
        # this run skipped would read as this batch's.
        stale_review.unlink(missing_ok=True)
    if not track:
        update = {"data_version": dvc_md5(path), "notes": [*report.notes, "not tracked by DVC (--no-track); data version is the md5"]}
        return write_reports(report.model_copy(update=update), suspects, folder)
    if store is None:
        from pipelines.config import load_settings

        store = load_settings().store()
    try:
        tracked = dvc_track(path, store, project=Path(data_dir))
    except TailorError as err:
        # The batch passed: its report must exist even when DVC fails; then the error is raised.
        written = write_reports(report.model_copy(update={"data_version": dvc_md5(path)}), suspects, folder)
        raise type(err)(f"{err} (the batch passed; its report is {written.report_markdown})") from None
    update = {
        "data_version": tracked.md5,
        "tracked_file": str(tracked.dvc_file) if tracked.dvc_file else None,
        "notes": [*report.notes, *([tracked.note] if tracked.note else [])],
    }
    return write_reports(report.model_copy(update=update), suspects, folder)


def _class_counts(batch: LabeledBatch) -> dict[str, int]:
    counts: dict[str, int] = {}
    for label in batch.labels:
        counts[label] = counts.get(label, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


# --- Great Expectations -------------------------------------------------------------------------


def _run_expectations(entries: list[SuiteEntry], frame, parameters: dict[str, Any]) -> list[ExpectationFailure]:
    if not entries:
        return []
    key = json.dumps([asdict(entry) for entry in entries], sort_keys=True)
    outcome = _validation_definition(key).run(
        batch_parameters={"dataframe": frame},
        expectation_parameters=parameters,
        result_format={
            "result_format": "SUMMARY",
            "unexpected_index_column_names": ["id"],
            "partial_unexpected_count": MAX_EXAMPLES,
        },
    )
    by_name = {entry.name: entry for entry in entries}
    failures = []
    for result in outcome.results:
        if result.success:
            continue
        entry = by_name[result.expectation_config.meta["name"]]
        info = result.exception_info or {}
        if info.get("raised_exception"):
            failures.append(_failure(entry, 0, [f"could not be evaluated: {info.get('exception_message')}"]))
            continue
        failures.append(_failure(entry, *_evidence(result.result)))
    return failures


@lru_cache(maxsize=4)
def _validation_definition(suite_json: str):
    """The GE context, suite and validation definition, built once per process and suite (JSON key).

    Building them costs more than validating a 1,000-row batch (GE serialises every expectation
    through its store); batches and parameters change per run, so the definition is reused.
    """
    import logging

    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    # GE logs every step at INFO and draws progress bars: noise in a CLI whose output is the report.
    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    context = gx.get_context(mode="ephemeral", project_config=config)
    batch = context.data_sources.add_pandas("tailor").add_dataframe_asset("batch")
    entries = [SuiteEntry(**item) for item in json.loads(suite_json)]
    expectations = [
        getattr(gx.expectations, entry.expectation)(**entry.kwargs, meta={"name": entry.name}) for entry in entries
    ]
    suite = context.suites.add(gx.ExpectationSuite(name="batch", expectations=expectations))
    return context.validation_definitions.add(
        gx.ValidationDefinition(name="batch", data=batch.add_batch_definition_whole_dataframe("all"), suite=suite)
    )


def _evidence(result: dict[str, Any]) -> tuple[int, list[str]]:
    """(count, examples) from a GE result: the unexpected rows by id, or the observed value."""
    if "unexpected_count" in result:
        examples = []
        for row in result.get("partial_unexpected_index_list") or []:
            row = dict(row)
            row_id = row.pop("id", "?")
            fields = ", ".join(f"{k}={_short(v)}" for k, v in row.items())
            examples.append(f"id {row_id}: {fields}" if fields else f"id {row_id}")  # the id itself is the finding
        return int(result["unexpected_count"]), list(dict.fromkeys(examples))
    return 1, [f"observed {_short(result.get('observed_value'))}"]


# --- Tailor checks GE has no expectation for (nulls excluded, like GE's column-map expectations) ---

Check = Callable[[Any, DataPolicy, "list[str] | None"], "tuple[int, list[str]] | None"]


def _conflicting_duplicates(frame, policy: DataPolicy, labels: list[str] | None):
    rows = frame.dropna(subset=["text", "label"])
    per_text = rows.groupby("text")["label"].nunique()
    conflicted = per_text[per_text > 1].index
    if len(conflicted) == 0:
        return None
    involved = rows[rows["text"].isin(conflicted)]
    examples = []
    for text, group in list(involved.groupby("text", sort=False))[:MAX_EXAMPLES]:
        parts = "; ".join(f"{label} (id {', '.join(g['id'].head(3))})" for label, g in group.groupby("label"))
        examples.append(_example(parts, text))
    return len(involved), examples


def _mixed_label_types(frame, policy: DataPolicy, labels: list[str] | None):
    present = frame["label"].dropna()
    numeric = present[present.str.match(NUMERIC_LABEL)]
    words = present[~present.str.match(NUMERIC_LABEL)]
    if numeric.empty or words.empty:
        return None
    minority = numeric if len(numeric) <= len(words) else words
    return len(minority), [
        f"numeric labels: {', '.join(sorted(numeric.unique())[:MAX_EXAMPLES])}",
        f"word labels: {', '.join(sorted(words.unique())[:MAX_EXAMPLES])}",
    ]


def _label_spellings(frame, policy: DataPolicy, labels: list[str] | None):
    present = frame["label"].dropna()
    counts = present.value_counts()
    spellings: dict[str, list[str]] = {}
    for label in counts.index:
        spellings.setdefault(normalise_text(label), []).append(label)
    clashes = [group for group in spellings.values() if len(group) > 1]
    if not clashes:
        return None
    rows = sum(int(counts[label]) for group in clashes for label in group)
    return rows, [", ".join(f"{label!r} ({counts[label]} rows)" for label in sorted(group))
                  for group in clashes[:MAX_EXAMPLES]]  # fmt: skip


def _min_examples_per_class(frame, policy: DataPolicy, labels: list[str] | None):
    counts = frame["label"].value_counts()
    for label in labels or []:
        counts[label] = counts.get(label, 0)
    short = counts[counts < policy.min_examples_per_class].sort_values()
    if short.empty:
        return None
    return len(short), [f"{label}: {n} < {policy.min_examples_per_class}" for label, n in short.head(MAX_EXAMPLES).items()]


def _class_imbalance(frame, policy: DataPolicy, labels: list[str] | None):
    counts = frame["label"].value_counts()
    if len(counts) < 2:
        return None
    ratio = counts.iloc[0] / counts.iloc[-1]
    if ratio <= policy.max_imbalance_ratio:
        return None
    return 1, [
        f"largest {counts.index[0]}: {counts.iloc[0]}, smallest {counts.index[-1]}: {counts.iloc[-1]}, "
        f"ratio {ratio:.1f} > {policy.max_imbalance_ratio}"
    ]


CHECKS: dict[str, Check] = {
    "conflicting_duplicates": _conflicting_duplicates,
    "mixed_label_types": _mixed_label_types,
    "label_spellings": _label_spellings,
    "min_examples_per_class": _min_examples_per_class,
    "class_imbalance": _class_imbalance,
}


def _failure(entry: SuiteEntry, count: int, examples: list[str]) -> ExpectationFailure:
    return ExpectationFailure(
        name=entry.name,
        why=" ".join(entry.why.split()),
        expectation=entry.expectation or f"tailor:{entry.check}",
        count=count,
        examples=examples,
    )


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= MAX_EXAMPLE_CHARS else f"{text[:MAX_EXAMPLE_CHARS]}… ({len(text):,} chars)"


def _example(prefix: str, text: str) -> str:
    return f"{prefix}: {_short(text)}"
