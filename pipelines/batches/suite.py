"""The expectation suite (``data/expectations/batch.yaml``): Great Expectations 1.x expectations run
on an ephemeral context with a pandas data source, plus the checks of ``rules.py``, reported in one
`ExpectationFailure` shape. Thresholds come from the policy's ``data`` section."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from pipelines import defaults, typed_files
from pipelines.batches.rules import CHECKS, MAX_EXAMPLES, batch_frame, normalise_text, short_repr
from pipelines.policy import DataPolicy
from pipelines.records import ExpectationFailure, LabeledBatch
from registry.errors import ConfigError
from registry.files import require_file

SUITE_FILE = defaults.SUITE


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


def load_suite(path: Path = SUITE_FILE) -> list[SuiteEntry]:
    """Read and check the suite file: every entry names a known GE expectation or Tailor check.

    Raises:
        ConfigError: the file is missing, not YAML, or an entry is malformed or unknown.
    """
    import great_expectations as gx

    try:
        doc = typed_files.safe_load(require_file(path, "expectation suite", ConfigError).read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ConfigError(f"expectation suite {path} is not valid YAML: {typed_files.one_line(err)}") from None
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
        f"skipped '{e.name}': no {e.needs} given"
        + (" (--labels FILE or --adapter NAME)" if e.needs == "labels" else "")
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
            fields = ", ".join(f"{k}={short_repr(v)}" for k, v in row.items())
            examples.append(f"id {row_id}: {fields}" if fields else f"id {row_id}")  # the id itself is the finding
        return int(result["unexpected_count"]), list(dict.fromkeys(examples))
    return 1, [f"observed {short_repr(result.get('observed_value'))}"]


def _failure(entry: SuiteEntry, count: int, examples: list[str]) -> ExpectationFailure:
    return ExpectationFailure(
        name=entry.name,
        why=" ".join(entry.why.split()),
        expectation=entry.expectation or f"tailor:{entry.check}",
        count=count,
        examples=examples,
    )
