"""Reading recorded traffic back: the batches of one adapter in a period, each line checked.

Whoever can write ``traffic/`` could put anything there; a line that is not a row as the recorder
writes it is reported with its object key and line number, never guessed at and never fatal to the
rest of the period.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from datetime import datetime

from registry.object_store import ObjectInfo, ObjectStore
from serving.traffic import TrafficRow, key_time, traffic_prefix

MAX_BATCH_BYTES = 64 * 1024 * 1024
_TYPES = {
    "request_id": str,
    "index": int,
    "time": str,
    "adapter": str,
    "version": str,
    "label": str,
    "confidence": (int, float),
    "text_sha256": str,
    "text": (str, type(None)),
    "features": (dict, type(None)),
}


@dataclass
class Traffic:
    rows: list[TrafficRow] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)  # the batches read
    problems: list[str] = field(default_factory=list)  # lines that are not rows, by key and line


def batches(
    store: ObjectStore, name: str, since: datetime | None = None, before: datetime | None = None
) -> list[ObjectInfo]:
    """The batch objects of ``name`` recorded in [since, before), by the time in their key."""
    out = []
    for info in store.list(traffic_prefix(name)):
        at = key_time(info.key)
        if at is not None and (since is None or at >= since) and (before is None or at < before):
            out.append(info)
    return out


def parse_row(line: str) -> TrafficRow:
    """Raises: ValueError: naming what is wrong with the line."""
    try:
        raw = json.loads(line)
    except json.JSONDecodeError as err:
        raise ValueError(f"not JSON ({err.msg})") from None
    if not isinstance(raw, dict):
        raise ValueError("not a JSON object")
    names = {f.name for f in fields(TrafficRow)}
    missing = [n for n in names if n not in raw and n not in ("text", "features")]
    unknown = sorted(set(raw) - names)
    wrong = [
        n for n, kinds in _TYPES.items() if n in raw and (not isinstance(raw[n], kinds) or isinstance(raw[n], bool))
    ]
    if missing or unknown or wrong:
        raise ValueError(
            "; ".join(
                filter(
                    None,
                    [
                        missing and f"missing {', '.join(sorted(missing))}",
                        unknown and f"unknown {', '.join(unknown)}",
                        wrong and f"mistyped {', '.join(wrong)}",
                    ],
                )
            )
        )
    return TrafficRow(**raw)


def read_traffic(
    store: ObjectStore, name: str, since: datetime | None = None, before: datetime | None = None
) -> Traffic:
    """Every row of ``name`` recorded in [since, before); unreadable lines are listed, not raised."""
    traffic = Traffic()
    for info in batches(store, name, since, before):
        traffic.keys.append(info.key)
        try:
            text = store.get(info.key, max_bytes=MAX_BATCH_BYTES).decode("utf-8")
        except UnicodeDecodeError as err:
            traffic.problems.append(f"{info.key}: not UTF-8 at byte {err.start}")
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                traffic.rows.append(parse_row(line))
            except (ValueError, TypeError) as err:
                traffic.problems.append(f"{info.key} line {number}: {err}")
    return traffic
