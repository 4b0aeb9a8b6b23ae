"""Corrected labels for recorded predictions, turned into a batch the scheduled retrain picks up.

A feedback file names recorded predictions by request id (``request_id``, ``label``, optional
``index`` for a text after the first of its request). Each is looked up in the recorded traffic,
and the batch written to the incoming folder is the production version's training rows
(``reference.csv``) with the corrected rows added, so it validates on its own (every class keeps its
examples) and the retrain learns from production's mistakes. A corrected text that production was
trained on replaces that row: the correction is the newer judgement. Where the batch came from is
recorded beside it and in the store (``monitoring/<name>/feedback/``).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from pipelines.monitoring.monitor import results_prefix
from pipelines.monitoring.traffic_log import read_traffic
from pipelines.records import LabeledBatch
from registry.errors import NotFoundError, RefusedError
from registry.files import write_atomic

MAX_FEEDBACK_BYTES = 10 * 1024 * 1024
COLUMNS = ("request_id", "label")


class FeedbackError(RefusedError):
    """A feedback file that cannot be used, with every problem named."""


@dataclass(frozen=True)
class Correction:
    request_id: str
    index: int
    label: str
    line: int  # in the feedback file, for messages


@dataclass(frozen=True)
class FeedbackBatch:
    path: Path
    provenance: Path
    record_key: str
    production_version: str
    reference_rows: int
    feedback_rows: int
    replaced_rows: int


def read_feedback(path: Path) -> list[Correction]:
    """A CSV or JSONL file of corrections.

    Raises:
        FeedbackError: not a file, too large, not UTF-8, a missing column, a bad index, an empty
            value, or one prediction corrected twice (every problem named by line).
    """
    path = Path(path)
    if not path.is_file():
        raise FeedbackError(f"feedback file {path} {'is not a file' if path.exists() else 'does not exist'}")
    if path.stat().st_size > MAX_FEEDBACK_BYTES:
        raise FeedbackError(f"feedback file {path} is larger than {MAX_FEEDBACK_BYTES // 2**20} MB: split it")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise FeedbackError(f"feedback file {path} is not UTF-8 (byte {err.start}): save it as UTF-8") from None
    records = _jsonl(path, text) if path.suffix.lower() in (".jsonl", ".ndjson") else _csv(path, text)
    problems, out, seen = [], [], {}
    for line, raw in records:
        missing = [c for c in COLUMNS if not str(raw.get(c) or "").strip()]
        index = str(raw.get("index") or "0").strip()
        if missing:
            problems.append(f"line {line}: {', '.join(missing)} empty or missing")
            continue
        if not index.isdigit():
            problems.append(f"line {line}: index {index!r} is not a position (0, 1, …)")
            continue
        item = Correction(str(raw["request_id"]).strip(), int(index), str(raw["label"]).strip(), line)
        first = seen.setdefault((item.request_id, item.index), item)
        if first is not item:
            problems.append(
                f"line {line}: request {item.request_id} index {item.index} was corrected on line {first.line} already"
            )
            continue
        out.append(item)
    if not out and not problems:
        problems.append("no corrections in it")
    if problems:
        raise FeedbackError(f"feedback file {path}: " + "; ".join(problems[:20]) + (" …" if len(problems) > 20 else ""))
    return out


def _csv(path: Path, text: str) -> list[tuple[int, dict]]:
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise FeedbackError(
            f"feedback file {path} has no column {', '.join(missing)}: give a header row request_id,label[,index]"
        )
    return [(reader.line_num, row) for row in reader]


def _jsonl(path: Path, text: str) -> list[tuple[int, dict]]:
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as err:
            raise FeedbackError(f"feedback file {path} line {number} is not JSON: {err.msg}") from None
        if not isinstance(raw, dict):
            raise FeedbackError(f"feedback file {path} line {number} is not a JSON object")
        out.append((number, raw))
    return out


def make_batch(
    registry, name: str, feedback_file: Path, incoming: Path, actor: str, *, max_bytes: int
) -> FeedbackBatch:
    """Write ``incoming/feedback-<name>-<time>.csv``: production's training rows plus the corrections.

    Production's training rows are read under ``max_bytes`` (the policy's ``data.max_file_bytes``).

    Raises:
        FeedbackError: a bad file, request ids that were never recorded, labels production does not
            know, or predictions recorded as hashes (there is no text to learn from).
        NotFoundError: no production version of ``name``.
    """
    import tempfile

    from pipelines.batches.read import read_batch
    from registry.adapter_folder import REFERENCE_FILE

    corrections = read_feedback(feedback_file)
    manifest = registry.resolve(name, "production")
    if manifest is None:
        raise NotFoundError(f"'{name}' has no production version: feedback is merged with its training rows")
    with tempfile.TemporaryDirectory(prefix="tailor-feedback-") as work:
        registry.download(name, manifest.version, Path(work))
        reference = read_batch(Path(work) / REFERENCE_FILE, max_bytes=max_bytes)
    recorded = {(r.request_id, r.index): r for r in read_traffic(registry.store, name).rows}
    known = set(reference.labels)
    problems = []
    for c in corrections:
        row = recorded.get((c.request_id, c.index))
        if row is None:
            problems.append(
                f"line {c.line}: no recorded prediction of '{name}' has request id {c.request_id!r}"
                + (f" index {c.index}" if c.index else "")
                + " (erased, expired, or never sampled)"
            )
        elif row.text is None:
            problems.append(
                f"line {c.line}: request {c.request_id} was recorded as a hash (hash_texts): no text to learn from"
            )
        if c.label not in known:
            problems.append(f"line {c.line}: label {c.label!r} is not one of production's ({', '.join(sorted(known))})")
    corrected: dict[str, Correction] = {}
    for c in corrections if not problems else []:
        first = corrected.setdefault(recorded[(c.request_id, c.index)].text, c)
        if first.label != c.label:
            problems.append(
                f"line {c.line}: the same text as line {first.line} is labelled {c.label!r} here and "
                f"{first.label!r} there"
            )
    if problems:
        raise FeedbackError(f"feedback file {feedback_file}: " + "; ".join(problems[:20]))
    keep = [i for i, text in enumerate(reference.texts) if text not in corrected]
    texts = [reference.texts[i] for i in keep] + list(corrected)
    labels = [reference.labels[i] for i in keep] + [c.label for c in corrected.values()]
    ids = [f"reference-{reference.ids[i]}" for i in keep] + [
        f"feedback-{c.request_id}-{c.index}" for c in corrected.values()
    ]
    groups = None if reference.groups is None else [reference.groups[i] for i in keep] + ["feedback"] * len(corrected)
    batch = LabeledBatch(source="feedback", texts=texts, labels=labels, ids=ids, groups=groups)
    stamp = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}"
    path = Path(incoming) / f"feedback-{name}-{stamp}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, _csv_text(batch))
    provenance = {
        "name": name,
        "production_version": manifest.version,
        "production_sha256": manifest.content_sha256,
        "feedback_file": str(Path(feedback_file).resolve()),
        "feedback_sha256": hashlib.sha256(Path(feedback_file).read_bytes()).hexdigest(),
        "batch": path.name,
        "batch_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "by": actor,
        "at": datetime.now(timezone.utc).isoformat(),
        "reference_rows": len(keep),
        "corrections": [
            {
                "request_id": c.request_id,
                "index": c.index,
                "label": c.label,
                "predicted": recorded[(c.request_id, c.index)].label,
                "version": recorded[(c.request_id, c.index)].version,
            }
            for c in corrections
        ],
    }
    sidecar = path.with_name(path.stem + ".provenance.json")
    write_atomic(sidecar, json.dumps(provenance, indent=2, ensure_ascii=False))
    key = f"{results_prefix(name)}feedback/{stamp}-{provenance['batch_sha256'][:12]}.json"
    registry.store.put(key, json.dumps(provenance, indent=2, ensure_ascii=False).encode(), create_only=True)
    return FeedbackBatch(
        path=path,
        provenance=sidecar,
        record_key=key,
        production_version=manifest.version,
        reference_rows=len(keep),
        feedback_rows=len(corrected),
        replaced_rows=len(reference) - len(keep),
    )


def _csv_text(batch: LabeledBatch) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["id", "text", "label"] + (["group"] if batch.groups is not None else []))
    for i in range(len(batch)):
        writer.writerow([batch.ids[i], batch.texts[i], batch.labels[i]] + ([batch.groups[i]] if batch.groups else []))
    return out.getvalue()
