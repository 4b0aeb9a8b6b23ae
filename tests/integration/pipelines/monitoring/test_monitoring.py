"""Production monitoring end to end: `tailor serve --record-traffic` on the real store, `tailor monitor`
judging what it recorded, alerts to a loopback webhook receiver, erasure on request.

Two names serve the same tiny adapter (trained once, 4 steps): ``calm`` gets traffic like its
training rows, ``shift`` gets Japanese sentences from chABSA, another language and topic.
"""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest

from pipelines.servers.seaweedfs_identities import RECORDER, read_identities
from pipelines.webhooks import verify
from registry.errors import AccessDeniedError
from registry.settings import StoreSettings
from registry.store import S3ObjectStore
from serving.traffic import traffic_prefix
from tests.conftest import TAILOR, run_cli
from tests.integration.pipelines.test_webhooks import SECRET, receiver_factory  # noqa: F401 - fixture
from tests.integration.serving.test_serving_follow import TOPICS, Roles, _batch, _free_port, base  # noqa: F401 - fixture
from tests.serve_process import start_serve

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHABSA = Path("/work/shared/datasets/chabsa/train.csv")
MONITORING = """
recording: {max_batch_seconds: 0.5, max_rows_per_second: 1000}
alerts: {min_rows: 20}
"""


@pytest.fixture(scope="module")
def adapter(base, tmp_path_factory) -> Path:  # noqa: F811
    from pipelines.training.params import TrainParams
    from pipelines.training.recipe import train

    params = TrainParams(min_steps=4, max_steps=4, noise_filter="none", select="lora")
    return Path(
        train(_batch(TOPICS), tmp_path_factory.mktemp("adapter") / "a", base=base, params=params, seed=1).adapter_dir
    )


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("monitoring")
    (root / "monitoring.yaml").write_text(MONITORING)
    with open(root / "holdout.csv", "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows((t, label) for label, texts in TOPICS.items() for t in texts)
    return {"monitoring": root / "monitoring.yaml", "holdout": root / "holdout.csv"}


@pytest.fixture(scope="module")
def names(s3_server, base, adapter) -> dict[str, str]:  # noqa: F811
    roles = Roles(s3_server, base)
    run = uuid.uuid4().hex[:6]
    names = {key: f"mon-{key}-{run}" for key in ("calm", "shift")}
    for name in names.values():
        roles.trainer.register(adapter, name, reason="monitoring test")
        roles.approver.promote(name, "v1", "production", reason="monitoring test")
    return names


@pytest.fixture(scope="module")
def server(s3_server, names, files, tmp_path_factory):
    logs = tmp_path_factory.mktemp("serve-logs")
    port = _free_port()
    args = [TAILOR, "serve", "--port", str(port), "--record-traffic", "--monitoring", str(files["monitoring"])]
    for name in names.values():
        args += ["--name", name]
    url = f"http://127.0.0.1:{port}"
    proc = start_serve(args, url, s3_server.env(TAILOR_ROLE="reader"), logs)
    yield url
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)


def _send(url: str, name: str, texts: list[str]) -> list[str]:
    ids = []
    for text in texts:
        reply = httpx.post(f"{url}/predict", json={"texts": [text], "adapter": name}, timeout=30)
        assert reply.status_code == 200, reply.text
        ids.append(reply.headers["X-Request-Id"])
    return ids


def _recorded(store: S3ObjectStore, name: str, rows: int, timeout: float = 20) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        found = [
            json.loads(line)
            for info in store.list(traffic_prefix(name))
            for line in store.get(info.key).decode().splitlines()
        ]
        if len(found) >= rows or time.monotonic() > deadline:
            return found
        time.sleep(0.3)


@pytest.fixture(scope="module")
def recorded(s3_server, server, names) -> dict[str, list[str]]:
    calm = [t for texts in TOPICS.values() for t in texts] * 2
    with open(CHABSA, newline="", encoding="utf-8") as f:
        japanese = [row["text"] for row, _ in zip(csv.DictReader(f), range(36))]
    ids = {"calm": _send(server, names["calm"], calm), "shift": _send(server, names["shift"], japanese)}
    admin = S3ObjectStore(s3_server.settings("admin"))
    for key in ids:
        assert len(_recorded(admin, names[key], len(ids[key]))) == len(ids[key])
    return ids


def test_recorded_rows_carry_the_prediction_the_version_and_the_request_id(s3_server, names, recorded):
    rows = _recorded(S3ObjectStore(s3_server.settings("admin")), names["calm"], len(recorded["calm"]))
    assert {r["request_id"] for r in rows} == set(recorded["calm"])
    assert all(r["version"] == "v1" and r["label"] in TOPICS and 0 < r["confidence"] <= 1 for r in rows)
    assert rows[0]["text"] in [t for texts in TOPICS.values() for t in texts]


def test_the_recorder_identity_may_write_traffic_and_nothing_else(s3_server):
    access, secret = read_identities(s3_server.cfg.identities_file)[RECORDER]
    recorder = S3ObjectStore(
        StoreSettings(
            endpoint=s3_server.cfg.endpoint,
            bucket=s3_server.cfg.bucket,
            access_key=access,
            secret_key=secret,
            role="reader",
        )
    )
    recorder.put("traffic/probe/x.jsonl", b"{}\n")
    for write in (
        lambda: recorder.put("adapters/probe/x", b"x"),
        lambda: recorder.put("audit/probe/x", b"x"),
        lambda: recorder.get("traffic/probe/x.jsonl"),
    ):
        with pytest.raises(AccessDeniedError):
            write()


def _monitor(s3_server, name: str, files: dict[str, Path], receiver) -> tuple[subprocess.CompletedProcess, dict]:
    """`tailor monitor` as a scheduled service would run it: the trainer role, alerts to ``receiver``."""
    env = s3_server.env(TAILOR_ROLE="trainer", TAILOR_WEBHOOKS=json.dumps([receiver.url]), TAILOR_WEBHOOK_SECRET=SECRET)
    return run_cli(
        "monitor",
        "--name",
        name,
        "--since",
        "1h",
        "--holdout",
        str(files["holdout"]),
        "--monitoring",
        str(files["monitoring"]),
        "--json",
        env=env,
    ), env


def test_traffic_like_the_training_rows_is_no_drift(s3_server, names, files, recorded, receiver_factory):  # noqa: F811
    receiver = receiver_factory(0)
    done, _ = _monitor(s3_server, names["calm"], files, receiver)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert result["judged"] and result["rows"] == len(recorded["calm"])
    assert not [m for m in result["measures"] if m["crossed"]], result["summary"]
    assert receiver.requests == []


def test_japanese_traffic_is_drift_and_the_alert_reaches_the_webhook(
    s3_server, names, files, recorded, receiver_factory
):  # noqa: F811
    receiver = receiver_factory(0)
    done, env = _monitor(s3_server, names["shift"], files, receiver)
    assert done.returncode == 1, done.stdout + done.stderr
    result = json.loads(done.stdout)
    crossed = [m["name"] for m in result["measures"] if m["crossed"]]
    assert "drifted_share" in crossed, result["summary"]
    assert {"text_chars", "unknown_token_share"} & {c for c, v in result["drift_columns"].items() if v["drifted"]}
    [(headers, body)] = receiver.requests
    assert verify(SECRET, body, headers["X-Tailor-Signature"])
    alert = json.loads(body)
    assert (
        alert["action"] == "monitor-alert"
        and alert["run_id"] == result["run_id"]
        and "drifted_share" in alert["crossed"]
    )
    listed = run_cli("monitor", "--name", names["shift"], "--list", "--json", env=env)
    assert result["run_id"] in [r["run_id"] for r in json.loads(listed.stdout)]


def test_an_admin_erases_one_request_on_the_record_and_an_unknown_id_is_named(s3_server, names, recorded):
    env = s3_server.env(TAILOR_ROLE="admin")
    gone = recorded["calm"][0]
    done = run_cli(
        "traffic",
        "delete",
        "--name",
        names["calm"],
        "--request-id",
        gone,
        "--reason",
        "APPI request 7",
        "--json",
        env=env,
    )
    assert done.returncode == 0, done.stderr
    admin = S3ObjectStore(s3_server.settings("admin"))
    rows = _recorded(admin, names["calm"], 0, timeout=0)
    assert gone not in {r["request_id"] for r in rows} and len(rows) == len(recorded["calm"]) - 1
    # Erased for good: no object version under traffic/ still holds the request.
    for version in admin.versions(traffic_prefix(names["calm"])):
        if not version.delete_marker:
            body = admin.client.get_object(Bucket=admin.bucket, Key=version.key, VersionId=version.version_id)
            assert gone.encode() not in body["Body"].read()
    log = run_cli("audit", "log", names["calm"], "--json", env=env)
    assert "delete-traffic" in log.stdout and "APPI request 7" in log.stdout
    again = run_cli("traffic", "delete", "--name", names["calm"], "--request-id", gone, "--reason", "again", env=env)
    assert again.returncode != 0 and "no recorded traffic" in again.stderr
    trainer = run_cli(
        "traffic",
        "delete",
        "--name",
        names["calm"],
        "--before",
        "1d",
        "--reason",
        "x",
        env=s3_server.env(TAILOR_ROLE="trainer"),
    )
    assert trainer.returncode != 0 and "delete-traffic needs one of: admin" in trainer.stderr


def test_a_bad_monitoring_file_is_refused_naming_the_key(s3_server, tmp_path):
    bad = tmp_path / "monitoring.yaml"
    bad.write_text("alerts: {max_label_shift: 2, colour: red}\n")
    done = run_cli("monitor", "--name", "whatever", "--monitoring", str(bad), env=s3_server.env())
    assert done.returncode == 2
    assert "alerts.max_label_shift" in done.stderr and "alerts.colour: unknown key" in done.stderr


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_corrected_labels_arrive_as_a_batch_that_validates_with_their_provenance(s3_server, names, recorded, tmp_path):
    admin = S3ObjectStore(s3_server.settings("admin"))
    rows = {r["request_id"]: r for r in _recorded(admin, names["calm"], len(recorded["calm"]))}
    fixed = {
        rid: {"billing": "bug", "bug": "login", "login": "billing"}[rows[rid]["label"]] for rid in recorded["calm"][5:7]
    }
    feedback = _write(
        tmp_path / "fixes.csv", "request_id,label\n" + "".join(f"{r},{label}\n" for r, label in fixed.items())
    )
    incoming = tmp_path / "incoming"
    env = s3_server.env(TAILOR_ROLE="trainer")
    done = run_cli("feedback", str(feedback), "--name", names["calm"], "--incoming", str(incoming), "--json", env=env)
    assert done.returncode == 0, done.stderr
    made = json.loads(done.stdout)
    with open(made["path"], newline="", encoding="utf-8") as f:
        batch = list(csv.DictReader(f))
    added = {row["text"]: row["label"] for row in batch if row["id"].startswith("feedback-")}
    assert added == {rows[rid]["text"]: label for rid, label in fixed.items()}
    assert len(batch) == sum(len(t) for t in TOPICS.values())  # a corrected training text replaces its row
    provenance = json.loads(Path(made["provenance"]).read_text(encoding="utf-8"))
    assert provenance["production_version"] == "v1" and {c["request_id"] for c in provenance["corrections"]} == set(
        fixed
    )
    assert json.loads(admin.get(made["record_key"])) == provenance
    policy = _write(tmp_path / "policy.yaml", "version: feedback-test\ndata: {min_examples_per_class: 4}\n")
    labels = _write(tmp_path / "labels.txt", "\n".join(TOPICS) + "\n")
    valid = run_cli(
        "validate",
        made["path"],
        "--labels",
        str(labels),
        "--no-noise-audit",
        "--no-track",
        "--policy",
        str(policy),
        "--report-dir",
        str(tmp_path / "report"),
        env=env,
    )
    assert valid.returncode == 0, valid.stdout + valid.stderr


def test_corrections_of_unknown_requests_and_labels_are_all_named_and_nothing_is_written(
    s3_server,
    base,
    names,  # noqa: F811
    recorded,
    tmp_path,
):
    from pipelines.monitoring.feedback import FeedbackError, make_batch
    from pipelines.policy import DataPolicy

    feedback = _write(tmp_path / "fixes.csv", f"request_id,label\nno-such-request,bug\n{recorded['calm'][9]},weather\n")

    def make():
        trainer = Roles(s3_server, base).trainer
        return make_batch(
            trainer, names["calm"], feedback, tmp_path / "incoming", "alice", max_bytes=DataPolicy().max_file_bytes
        )

    with pytest.raises(FeedbackError) as err:
        make()
    assert "line 2: no recorded prediction" in str(err.value) and "'no-such-request'" in str(err.value)
    assert "line 3: label 'weather' is not one of production's (billing, bug, login)" in str(err.value)
    # The calm traffic sent every text twice: one text, two requests, corrected two ways.
    twice = len(recorded["calm"]) // 2
    _write(feedback, f"request_id,label\n{recorded['calm'][3]},bug\n{recorded['calm'][3 + twice]},login\n")
    with pytest.raises(FeedbackError, match="line 3: the same text as line 2 is labelled 'login' here and 'bug' there"):
        make()
    assert not (tmp_path / "incoming").exists()


def test_batches_under_their_retention_survive_an_early_expiry_by_the_monitors_role(s3_server, names, recorded):
    from datetime import datetime, timedelta, timezone

    from pipelines.monitoring.retention import expire

    trainer = S3ObjectStore(s3_server.settings("trainer"))
    before = [o.key for o in trainer.list(traffic_prefix(names["shift"]))]
    # As if run 2 days later with a 1-day retention: the batches carry the recorder's 90 days of Object Lock.
    erased = expire(trainer, names["shift"], 1, now=datetime.now(timezone.utc) + timedelta(days=2))
    assert erased.batches == [] and sorted(erased.retained) == sorted(before)
    assert [o.key for o in trainer.list(traffic_prefix(names["shift"]))] == before
