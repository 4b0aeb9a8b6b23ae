"""`tailor monitor`: live traffic against the production version's reference and holdout.

Three measures, each against a limit of the monitoring file:

- input drift: the drift check's monitored columns and Evidently tests (``pipelines.evaluation.checks.drift``),
  the recorded texts (or the features recorded in their place) against ``reference.csv``, the rows
  production was trained on; the predicted label takes the label column's place;
- label shift: total variation distance between the labels production predicts live and those it
  predicts on the holdout (the holdout's true labels when no holdout is given);
- confidence drop: the holdout's mean top-class probability minus the live one (needs the holdout).

The result is stored under ``monitoring/<name>/`` and, when a limit is crossed, announced to the
webhooks. Each run also expires the traffic past its retention.
"""

from __future__ import annotations

import tempfile
import uuid
from collections import Counter
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np
from pydantic import Field

from pipelines.evaluation.checks import drift
from pipelines.monitoring.config import Monitoring
from pipelines.monitoring.retention import expire
from pipelines.monitoring.traffic_log import read_traffic
from pipelines.records import LabeledBatch, Record, utcnow
from pipelines.webhooks import MonitorAlert
from registry.errors import NotFoundError, TailorError
from serving.traffic import TrafficRow, text_sha256

RESULTS_PREFIX = "monitoring/"
Alert = Callable[[MonitorAlert], object]
MAX_PROBLEMS_SHOWN = 20


def results_prefix(name: str) -> str:
    return f"{RESULTS_PREFIX}{name}/"


class Measure(Record):
    name: str
    value: float | None  # None: not judged
    limit: float
    crossed: bool


class MonitorResult(Record):
    run_id: str
    name: str
    version: str  # production's, whose reference and holdout the traffic is compared with
    at: datetime = Field(default_factory=utcnow)
    since: datetime | None = None
    rows: int
    versions_seen: dict[str, int]  # rows per version that answered them
    unreadable_rows: int = 0
    problems: list[str] = Field(default_factory=list)  # the first unreadable lines, by key and line
    judged: bool
    measures: list[Measure] = Field(default_factory=list)
    drift_columns: dict[str, dict] = Field(default_factory=dict)
    live_labels: dict[str, float] = Field(default_factory=dict)
    holdout_labels: dict[str, float] = Field(default_factory=dict)
    expired_batches: int = 0
    expiry_problem: str | None = None
    key: str = ""
    summary: str

    @property
    def crossed(self) -> list[str]:
        return [m.name for m in self.measures if m.crossed]


def distribution(labels: list[str]) -> dict[str, float]:
    counts = Counter(labels)
    return {label: counts[label] / len(labels) for label in sorted(counts)} if labels else {}


def total_variation(p: dict[str, float], q: dict[str, float]) -> float:
    return 0.5 * sum(abs(p.get(k, 0.0) - q.get(k, 0.0)) for k in set(p) | set(q))


def _live_rows(rows: list[TrafficRow], base_model_dir: Path) -> drift.EmbeddedRows:
    """Recorded rows as the drift columns need them: texts embedded now, hashed ones as recorded."""
    from serving.embeddings import embed

    texts = [i for i, r in enumerate(rows) if r.text is not None]
    per_text = {c: [0.0] * len(rows) for c in drift.PER_TEXT_COLUMNS}
    embeddings: list[np.ndarray | None] = [None] * len(rows)
    if texts:
        computed = drift.per_text_features([rows[i].text for i in texts], base_model_dir)
        vectors = embed([rows[i].text for i in texts], base_model_dir)
        for j, i in enumerate(texts):
            embeddings[i] = vectors[j]
            for c in drift.PER_TEXT_COLUMNS:
                per_text[c][i] = computed[c][j]
    for i, row in enumerate(rows):
        if row.text is None:
            feats = row.features or {}
            if not all(c in feats for c in (*drift.PER_TEXT_COLUMNS, "embedding")):
                raise TailorError(
                    f"a row of request {row.request_id} keeps neither its text nor the features the "
                    "monitor needs (recorded by another version of Tailor?)"
                )
            embeddings[i] = np.asarray(feats["embedding"], dtype=np.float32)
            for c in drift.PER_TEXT_COLUMNS:
                per_text[c][i] = float(feats[c])
    if len({e.shape for e in embeddings}) != 1:
        raise TailorError("recorded embeddings differ in size from the base model's: recorded under another base model")
    return drift.EmbeddedRows(
        ids=[r.text_sha256 for r in rows],
        labels=[r.label for r in rows],
        per_text=per_text,
        embeddings=np.stack(embeddings),
    )


def _sample(rows: list, seed: int) -> list:
    if len(rows) <= drift.MAX_ROWS:
        return rows
    return [rows[i] for i in sorted(np.random.default_rng(seed).choice(len(rows), drift.MAX_ROWS, replace=False))]


def run(
    registry,
    name: str,
    monitoring: Monitoring,
    base_model_dir: Path,
    *,
    max_bytes: int,
    since: datetime | None = None,
    holdout: Path | None = None,
    alert: Alert | None = None,
    seed: int = 0,
) -> MonitorResult:
    """Judge the traffic recorded for ``name`` since ``since``, store the result, and hand ``alert``
    the crossed limits, if any. ``max_bytes`` bounds the reference and holdout files read (the policy's
    ``data.max_file_bytes``).

    Raises:
        NotFoundError: no production version of ``name``.
        TailorError: recorded rows the monitor cannot read (named), or the store fails.
    """
    from pipelines.batches.read import read_batch
    from registry.adapter_folder import REFERENCE_FILE

    manifest = registry.resolve(name, "production")
    if manifest is None:
        raise NotFoundError(f"'{name}' has no production version to compare traffic with: promote one first")
    alerts = monitoring.alerts
    traffic = read_traffic(registry.store, name, since)
    rows = traffic.rows
    result = dict(
        run_id=f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}",
        name=name,
        version=manifest.version,
        since=since,
        rows=len(rows),
        versions_seen=dict(Counter(r.version for r in rows)),
        unreadable_rows=len(traffic.problems),
        problems=traffic.problems[:MAX_PROBLEMS_SHOWN],
    )
    if len(rows) < alerts.min_rows:
        outcome = MonitorResult(
            **result,
            judged=False,
            summary=f"{len(rows)} recorded rows, under alerts.min_rows {alerts.min_rows}: not judged",
        )
        return _finish(registry, outcome, monitoring, alert)
    with tempfile.TemporaryDirectory(prefix="tailor-monitor-") as work:
        folder = Path(work) / "adapter"
        registry.download(name, manifest.version, folder)
        outcome = _judge(
            result,
            rows,
            read_batch(folder / REFERENCE_FILE, max_bytes=max_bytes),
            folder,
            read_batch(holdout, max_bytes=max_bytes) if holdout is not None else None,
            monitoring,
            base_model_dir,
            seed,
        )
    return _finish(registry, outcome, monitoring, alert)


def _judge(
    result: dict,
    rows: list[TrafficRow],
    reference: LabeledBatch,
    folder: Path,
    holdout: LabeledBatch | None,
    monitoring: Monitoring,
    base_model_dir: Path,
    seed: int,
) -> MonitorResult:
    alerts = monitoring.alerts
    ref_rows = drift.embedded_rows(reference, base_model_dir)
    ref_rows = replace(ref_rows, ids=[text_sha256(t) for t in ref_rows.ids])  # live rows may keep only hashes
    live = _live_rows(_sample(rows, seed), base_model_dir)
    ref_df, cur_df = drift.feature_frames(ref_rows, live, seed=seed)
    columns, share, _ = drift.evidently_drift(ref_df, cur_df)
    live_labels = distribution([r.label for r in rows])
    live_confidence = float(np.mean([r.confidence for r in rows]))
    holdout_confidence = None
    if holdout is not None:
        from registry.adapter_folder import AdapterMeta
        from serving.model import load_base, load_classifier

        # The name production records for its base: only the hashes decide whether it is the same base.
        base = load_base(base_model_dir, model_id=AdapterMeta.read(folder).base_model_id, cache_dir=None)
        classifier = load_classifier(folder, base)
        probs = classifier.predict_proba(holdout.texts)
        baseline = distribution([classifier.labels[i] for i in probs.argmax(axis=1)])
        holdout_confidence = float(probs.max(axis=1).mean())
    else:
        baseline = distribution(reference.labels)
    shift = total_variation(live_labels, baseline)
    drop = None if holdout_confidence is None else holdout_confidence - live_confidence
    measures = [
        Measure(
            name="drifted_share", value=share, limit=alerts.max_drifted_share, crossed=share > alerts.max_drifted_share
        ),
        Measure(name="label_shift", value=shift, limit=alerts.max_label_shift, crossed=shift > alerts.max_label_shift),
        Measure(
            name="confidence_drop",
            value=drop,
            limit=alerts.max_confidence_drop,
            crossed=drop is not None and drop > alerts.max_confidence_drop,
        ),
    ]
    crossed = [m for m in measures if m.crossed]
    summary = (
        ", ".join(f"{m.name} {m.value:.3f} > {m.limit:g}" for m in crossed) if crossed else "no limit crossed"
    ) + f" ({len(rows)} rows; {sum(v['drifted'] for v in columns.values())} of {len(columns)} columns drifted)"
    return MonitorResult(
        **result,
        judged=True,
        measures=measures,
        drift_columns=columns,
        live_labels=live_labels,
        holdout_labels=baseline,
        summary=summary,
    )


def _finish(registry, outcome: MonitorResult, monitoring: Monitoring, alert: Alert | None) -> MonitorResult:
    """Expire old traffic, store the result, announce a crossed limit."""
    update: dict = {"key": f"{results_prefix(outcome.name)}{outcome.run_id}.json"}
    try:
        update["expired_batches"] = len(
            expire(registry.store, outcome.name, monitoring.recording.retention_days).batches
        )
    except TailorError as err:  # e.g. a reader's monitor: the result is still worth storing
        update["expiry_problem"] = str(err)
    outcome = outcome.model_copy(update=update)
    registry.store.put(outcome.key, outcome.model_dump_json(indent=2).encode(), create_only=True)
    if outcome.crossed and alert is not None:
        alert(
            MonitorAlert(
                name=outcome.name,
                version=outcome.version,
                run_id=outcome.run_id,
                crossed=outcome.crossed,
                summary=outcome.summary,
                at=outcome.at,
            )
        )
    return outcome


def stored_results(store, name: str) -> list[MonitorResult]:
    """Every stored result of ``name``, oldest first (a damaged one is named, not skipped).

    Raises:
        TailorError: a stored result does not parse.
    """
    from pydantic import ValidationError

    out = []
    for info in store.list(results_prefix(name)):
        try:
            out.append(MonitorResult.model_validate_json(store.get(info.key)))
        except ValidationError as err:
            raise TailorError(f"{info.key} is not a monitor result: {err.error_count()} problems") from None
    return out
