"""The traffic recorder's sampling, caps and batching, on an in-memory store."""

from __future__ import annotations

import json
import random
import re
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest

from pipelines.monitoring.config import load_monitoring
from pipelines.monitoring.feedback import FeedbackError, read_feedback
from pipelines.monitoring.monitor import distribution, total_variation
from pipelines.monitoring.traffic_log import parse_row, read_traffic
from registry.errors import ConfigError, StoreError, TailorError
from serving.traffic import (
    RecordingLimits,
    TrafficRecorder,
    TrafficRow,
    key_time,
    text_sha256,
    traffic_prefix,
)
from tests.fake_store import FakeStore


def _offer(recorder: TrafficRecorder, n: int, texts: list[str] = ["a text"]) -> int:  # noqa: B006 - read only
    return sum(
        recorder.offer("ads", "v1", f"r{i}", texts, ["x"] * len(texts), np.full(len(texts), 0.9)) for i in range(n)
    )


def _rows(store: FakeStore) -> list[dict]:
    return [json.loads(line) for key, body in store.objects.items() for line in body.decode().splitlines()]


def test_rows_are_written_only_by_flush_as_one_jsonl_batch_under_the_adapters_prefix():
    store = FakeStore()
    recorder = TrafficRecorder(store, RecordingLimits())
    assert _offer(recorder, 3, ["first", "二つ目"]) == 3
    assert store.objects == {}  # nothing on the request path
    assert recorder.flush() == 6
    [key] = store.objects
    assert key.startswith(traffic_prefix("ads")) and key_time(key) is not None
    rows = _rows(store)
    assert [(r["request_id"], r["index"], r["text"]) for r in rows[:2]] == [("r0", 0, "first"), ("r0", 1, "二つ目")]
    assert rows[1]["text_sha256"] == text_sha256("二つ目") and rows[1]["confidence"] == 0.9


def test_sampling_keeps_about_the_configured_share():
    recorder = TrafficRecorder(
        FakeStore(),
        RecordingLimits(sample_rate=0.25, max_rows_per_second=1e6, max_queue_rows=10**6),
        rng=random.Random(1),
    )
    kept = _offer(recorder, 4000)
    assert 850 < kept < 1150 and recorder.stats.sampled_out == 4000 - kept


def test_a_burst_beyond_the_rate_cap_is_dropped_and_counted():
    recorder = TrafficRecorder(FakeStore(), RecordingLimits(max_rows_per_second=10))
    assert _offer(recorder, 50) == 10
    assert recorder.stats.rate_dropped == 40


def test_a_full_queue_drops_new_rows_instead_of_growing():
    recorder = TrafficRecorder(FakeStore(), RecordingLimits(max_rows_per_second=1e6, max_queue_rows=5))
    assert _offer(recorder, 8) == 5 and recorder.stats.queue_dropped == 3


def test_the_background_thread_writes_a_batch_once_it_is_full_and_close_writes_the_rest():
    store = FakeStore()
    recorder = TrafficRecorder(store, RecordingLimits(max_batch_rows=4, max_batch_seconds=3600))
    recorder.start()
    _offer(recorder, 4)
    deadline = time.monotonic() + 5
    while not store.objects and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(_rows(store)) == 4
    _offer(recorder, 2)
    recorder.close()
    assert len(_rows(store)) == 6 and recorder.stats.recorded == 6


def test_hashed_texts_keep_the_features_and_never_the_words():
    store = FakeStore()
    seen = []
    recorder = TrafficRecorder(
        store,
        RecordingLimits(hash_texts=True),
        features=lambda texts: seen.extend(texts) or [{"text_chars": len(t)} for t in texts],
    )
    _offer(recorder, 1, ["secret customer words"])
    assert seen == []  # computed off the request path
    recorder.flush()
    [row] = _rows(store)
    assert row["text"] is None and row["features"] == {"text_chars": 21}
    assert b"secret" not in b"".join(store.objects.values())


def test_hashing_without_features_is_refused():
    with pytest.raises(ValueError, match="features"):
        TrafficRecorder(FakeStore(), RecordingLimits(hash_texts=True))


def test_a_store_outage_loses_the_batch_counted_and_serving_goes_on():
    class Down(FakeStore):
        def put(self, *args, **kwargs):
            raise StoreError("cannot reach the object store")

    recorder = TrafficRecorder(Down(), RecordingLimits())
    _offer(recorder, 3)
    assert recorder.flush() == 0
    assert recorder.stats.failed_rows == 3 and "cannot reach" in recorder.stats.last_error


@pytest.mark.parametrize("limits", [dict(sample_rate=1.5), dict(max_batch_rows=0), dict(max_rows_per_second=-1)])
def test_impossible_recording_limits_are_refused(limits):
    with pytest.raises(ValueError):
        RecordingLimits(**limits)


def test_lines_that_are_not_recorded_rows_are_named_and_the_rest_read():
    store = FakeStore()
    recorder = TrafficRecorder(store, RecordingLimits())
    _offer(recorder, 2)
    recorder.flush()
    [key] = store.objects
    store.objects[key] += b'not json\n{"request_id": 5}\n[1]\n'
    traffic = read_traffic(store, "ads")
    assert len(traffic.rows) == 2
    assert [p.split(": ", 1)[1] for p in traffic.problems][0].startswith("not JSON")
    assert "mistyped request_id" in traffic.problems[1] and "missing" in traffic.problems[1]
    assert traffic.problems[2].endswith("not a JSON object")
    with pytest.raises(ValueError, match="unknown colour"):
        parse_row(json.dumps({**asdict(traffic.rows[0]), "colour": "red"}))


def test_label_shift_is_the_total_variation_distance():
    assert total_variation(distribution(["a", "a", "b", "b"]), distribution(["a", "a", "a", "a"])) == 0.5
    assert total_variation(distribution(["a"]), distribution(["b"])) == 1.0


def test_the_shipped_monitoring_file_loads_and_a_bad_one_names_every_problem(tmp_path):
    assert load_monitoring().recording.retention_days > 0
    bad = tmp_path / "m.yaml"
    bad.write_text("recording: {sample_rate: yes, retention_days: 0}\nalerts: {min_rows: 1}\n")
    with pytest.raises(ConfigError) as err:
        load_monitoring(bad)
    for key in ("recording.sample_rate", "recording.retention_days", "alerts.min_rows"):
        assert key in str(err.value)
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_monitoring(bad)


@pytest.mark.parametrize(
    "content, message",
    [
        ("id,label\nx,bug\n", "has no column request_id"),
        ("request_id,label\nr1,bug\nr1,login\n", "line 3: request r1 index 0 was corrected on line 2 already"),
        ("request_id,label,index\nr1,bug,first\n", "line 2: index 'first' is not a position"),
        ("request_id,label\nr1,\n", "line 2: label empty or missing"),
        ("request_id,label\n", "no corrections in it"),
    ],
)
def test_a_bad_feedback_file_is_refused_naming_the_line(tmp_path, content, message):
    path = tmp_path / "fixes.csv"
    path.write_text(content)
    with pytest.raises(FeedbackError, match=re.escape(message)):
        read_feedback(path)


def test_feedback_in_jsonl_and_a_file_that_is_not_utf8(tmp_path):
    good = tmp_path / "fixes.jsonl"
    good.write_text('{"request_id": "r1", "label": "bug", "index": 2}\n\n{"request_id": "r2", "label": "ok"}\n')
    assert [(c.request_id, c.index, c.label) for c in read_feedback(good)] == [("r1", 2, "bug"), ("r2", 0, "ok")]
    bad = tmp_path / "fixes.csv"
    bad.write_bytes("request_id,label\nr1,バグ\n".encode("cp932"))
    with pytest.raises(FeedbackError, match="not UTF-8"):
        read_feedback(bad)
    with pytest.raises(FeedbackError, match="does not exist"):
        read_feedback(tmp_path / "missing.csv")


def test_since_and_before_take_an_iso_time_or_a_duration_and_refuse_anything_else():
    from datetime import datetime, timedelta, timezone

    from pipelines.cli.monitor import parse_when

    assert parse_when("2026-12-01T09:00", "--since") == datetime(2026, 12, 1, 9, tzinfo=timezone.utc)
    assert abs(parse_when("2h", "--since") - (datetime.now(timezone.utc) - timedelta(hours=2))) < timedelta(seconds=5)
    assert parse_when(None, "--since") is None
    with pytest.raises(ConfigError, match="--before 'yesterday' is neither"):
        parse_when("yesterday", "--before")


def test_too_few_recorded_rows_are_stored_as_not_judged_and_alert_nobody():
    from types import SimpleNamespace

    from pipelines.monitoring.config import Monitoring
    from pipelines.monitoring.monitor import results_prefix, run, stored_results

    store = FakeStore()
    recorder = TrafficRecorder(store, RecordingLimits())
    _offer(recorder, 3)
    recorder.flush()
    registry = SimpleNamespace(store=store, resolve=lambda name, alias: SimpleNamespace(version="v4"))
    alerts = []
    result = run(registry, "ads", Monitoring(), Path("no-model-needed"), max_bytes=1_000_000, alert=alerts.append)
    assert not result.judged and result.rows == 3 and "under alerts.min_rows 30" in result.summary
    assert alerts == [] and result.key.startswith(results_prefix("ads"))
    assert [r.run_id for r in stored_results(store, "ads")] == [result.run_id]


def test_monitoring_given_without_recording_is_refused(capsys):
    from pipelines.cli.main import run

    with pytest.raises(SystemExit) as code:
        run(["serve", "--name", "ads", "--monitoring", "monitoring.yaml"])
    assert code.value.code == 2 and "give it with --record-traffic" in capsys.readouterr().err


def _hashed_row(i: int, embedding: list[float], **features) -> TrafficRow:
    feats = {"text_chars": 10.0, "unknown_token_share": 0.0, "chars_per_token": 3.0, "embedding": embedding, **features}
    return TrafficRow(
        request_id=f"r{i}",
        index=0,
        time="2026-12-06T00:00:00+00:00",
        adapter="ads",
        version="v1",
        label="x",
        confidence=0.8,
        text_sha256=f"h{i}",
        features=feats,
    )


def test_rows_recorded_as_hashes_are_judged_on_the_features_recorded_in_their_place():
    from pipelines.monitoring.monitor import _live_rows

    live = _live_rows([_hashed_row(0, [1.0, 0.0]), _hashed_row(1, [0.0, 1.0], text_chars=4.0)], Path("unused"))
    assert live.ids == ["h0", "h1"] and live.per_text["text_chars"] == [10.0, 4.0]
    assert live.embeddings.tolist() == [[1.0, 0.0], [0.0, 1.0]]
    with pytest.raises(TailorError, match="neither its text nor the features"):
        _live_rows([replace(_hashed_row(0, [1.0]), features={"embedding": [1.0]})], Path("unused"))
    with pytest.raises(TailorError, match="differ in size"):
        _live_rows([_hashed_row(0, [1.0, 0.0]), _hashed_row(1, [1.0])], Path("unused"))


def test_features_that_fail_lose_their_rows_counted_and_the_rest_is_written():
    store = FakeStore()

    def features(texts):
        if "bad" in texts:
            raise RuntimeError("tokenizer broke")
        return [{} for _ in texts]

    recorder = TrafficRecorder(store, RecordingLimits(hash_texts=True), features=features)
    _offer(recorder, 1, ["bad"])
    _offer(recorder, 1, ["fine"])
    assert recorder.flush() == 1
    assert recorder.stats.failed_rows == 1 and "tokenizer broke" in recorder.stats.last_error
