"""The retrain, promote and rollback flows end to end: real SeaweedFS, Prefect's test harness,
the real base model trained on tiny data, a real webhook receiver on loopback.

One adapter name runs through the module in order: a passing retrain (v1 → staging), a human
promotion to production, a rejected batch, a gate-rejected candidate (v2), a rollback.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
import yaml

from pipelines.context import Context
from pipelines.records import RetrainOutcome
from pipelines.usecases import watch as watching
from tests.conftest import ANY_MACHINE_LOAD, REPO, run_cli
from tests.integration.pipelines.test_webhooks import Receiver

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SAMPLE = REPO / "data" / "sample"
SECRET = "e2e-webhook-secret"
# Tiny training so the module stays within a few minutes on 2 cores; every other default stays.
TINY_PARAMS = {"train": {"min_steps": 12, "max_steps": 12, "noise_filter": "none", "select": "lora"}}


@pytest.fixture(scope="module")
def receiver():
    r = Receiver(failures=1)  # the first POST fails: every announcement goes through a retry
    yield r
    r.close()


@pytest.fixture(scope="module")
def world(s3_server, tmp_path_factory, receiver):
    """A project folder with tiny params, relaxed and strict policies, and the env pointing at the test store."""
    from prefect.testing.utilities import prefect_test_harness

    root = tmp_path_factory.mktemp("flow-project")
    (root / "params.yaml").write_text(yaml.safe_dump(TINY_PARAMS))
    policy = yaml.safe_load((REPO / "policy.yaml").read_text(encoding="utf-8"))
    # Latency and memory on a shared 2-core test machine say nothing about production hardware.
    policy["load"].update(ANY_MACHINE_LOAD, max_rss_mb=16_384)
    (root / "policy.yaml").write_text(yaml.safe_dump(policy))
    policy["load"]["max_p95_ratio"] = 0.001  # no adapter can pass this: the gate must reject
    (root / "strict.yaml").write_text(yaml.safe_dump(policy))
    batch = root / "incoming" / "train.csv"
    batch.parent.mkdir()
    lines = (SAMPLE / "train.csv").read_text(encoding="utf-8").splitlines()
    header, rows = lines[0], lines[1:]
    # 12 rows per class, without the deliberate label errors (this test is about the flow, not noise).
    keep, per_class = [], {}
    for row in rows:
        label = row.rsplit(",", 2)[-2]
        if row.split(",", 1)[0] not in {"t0009", "t0023", "t0040", "t0071", "t0102"} and per_class.get(label, 0) < 12:
            per_class[label] = per_class.get(label, 0) + 1
            keep.append(row)
    batch.write_text("\n".join([header, *keep]) + "\n")
    env = {k: v for k, v in s3_server.env().items() if k.startswith("TAILOR_")}
    # The project's policy is the relaxed one: production takes only gates decided under it.
    env.update(
        TAILOR_DATA_DIR=str(root / "data"),
        TAILOR_ACTOR="trainer-tom",
        TAILOR_ROLE="trainer",
        TAILOR_WEBHOOKS=json.dumps([receiver.url]),
        TAILOR_WEBHOOK_SECRET=SECRET,
        TAILOR_POLICY=str(root / "policy.yaml"),
    )
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        mp.chdir(root)
        with prefect_test_harness(server_startup_timeout=120):
            from prefect.settings import PREFECT_API_URL

            yield {"root": root, "batch": batch, "env": env, "api": PREFECT_API_URL.value()}


@pytest.fixture(scope="module")
def name():
    import uuid

    return f"flow{uuid.uuid4().hex[:8]}"


def registry():
    return Context.load().registry()


def retrain(world, name, batch, policy="policy.yaml"):
    from pipelines.orchestration import flows

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TAILOR_POLICY", str(world["root"] / policy))  # as `tailor retrain --policy` configures it
        state = flows.retrain(batch, name, SAMPLE / "holdout.csv", labels=SAMPLE / "labels.txt", return_state=True)
    return state, state.result(raise_on_failure=False)


@pytest.fixture(scope="module")
def first(world, name):
    return retrain(world, name, world["batch"])


def test_a_passing_retrain_registers_the_candidate_and_promotes_it_to_staging_only(world, name, first):
    state, outcome = first

    assert state.is_completed(), state.message
    assert outcome.status == "promoted" and outcome.version == "v1" and outcome.promoted_to == ["staging"]
    assert outcome.gate.passed
    assert registry().aliases(name) == {"staging": "v1"}  # production needs a person (policy + four-eyes)
    manifest = registry().manifest(name, "v1")
    assert manifest.gate.passed and manifest.created_by == "trainer-tom"
    assert "reports/validation/validation.json" in manifest.files and "gate_decision.json" in manifest.files
    assert 0 < outcome.train_seconds < outcome.total_seconds


def test_a_promotion_through_the_flow_is_audited_and_announced_like_one_from_the_cli(
    world, name, first, receiver, monkeypatch
):
    from pipelines import webhooks
    from pipelines.orchestration import flows

    monkeypatch.setenv("TAILOR_ACTOR", "approver-ann")  # four-eyes: not the trainer
    monkeypatch.setenv("TAILOR_ROLE", "approver")

    event = flows.promote(name, "v1", "production", "reviewed the v1 report")

    assert registry().aliases(name)["production"] == "v1"
    last = registry().events(name)[-1]
    assert (last.action, last.actor, last.role, last.alias_after, last.reason) == (
        "promote",
        "approver-ann",
        "approver",
        "v1",
        "reviewed the v1 report",
    )
    assert last.sha256 == event.sha256
    headers, body = receiver.requests[-1]
    assert webhooks.verify(SECRET, body, headers[webhooks.SIGNATURE_HEADER])
    assert json.loads(body)["alias"] == "production" and json.loads(body)["actor"] == "approver-ann"
    [delivery] = [d for d in webhooks.delivery_log(registry().store, name) if d.event.seq == event.seq]
    assert delivery.delivered and len(delivery.attempts) >= 1


def test_a_rejected_batch_is_quarantined_and_nothing_is_registered_or_promoted(world, name, first):
    bad = world["root"] / "incoming" / "bad.csv"
    original = (SAMPLE / "train.csv").read_text(encoding="utf-8").replace(",card_lost,", ",pizza_order,")
    bad.write_text(original)
    before = registry().state(name)

    state, outcome = retrain(world, name, bad)

    assert state.is_failed() and outcome.status == "rejected_data"
    assert "labels in the allowed set" in [f.name for f in outcome.validation.failures]
    assert bad.read_text(encoding="utf-8") == original  # the user's file, outside data/incoming: copied, never moved
    quarantined = Path(outcome.validation.quarantined_to)
    assert quarantined.is_file() and quarantined.read_text(encoding="utf-8") == original  # copied whole, nothing lost
    after = registry().state(name)
    assert after.aliases == before.aliases and after.head_seq == before.head_seq
    assert [m.version for m in registry().versions(name)] == ["v1"]


def test_a_gate_rejected_candidate_is_registered_as_failed_and_production_is_unchanged(world, name, first):
    state, outcome = retrain(world, name, world["batch"], policy="strict.yaml")

    assert state.is_failed() and outcome.status == "rejected_gate"
    assert outcome.version == "v2" and outcome.promoted_to == []
    assert [f.check for f in outcome.gate.failures] == ["load"]
    assert registry().aliases(name) == {"staging": "v1", "production": "v1"}
    manifest = registry().manifest(name, "v2")
    assert manifest.gate is not None and not manifest.gate.passed  # the decision is recorded with the version
    register_event = [e for e in registry().events(name) if e.action == "register" and e.version == "v2"][0]
    assert register_event.gate["passed"] is False


def test_a_rollback_through_the_flow_restores_the_previous_version_and_is_announced(world, name, first, receiver):
    from pipelines.orchestration import flows

    registry_ = registry()
    if registry_.aliases(name).get("staging") != "v2":
        flows.promote(name, "v2", "staging", "try v2 on staging")

    event = flows.rollback(name, "v2 misbehaves on staging", alias="staging")

    assert (event.action, event.alias_before, event.alias_after) == ("rollback", "v2", "v1")
    assert registry().aliases(name)["staging"] == "v1"
    assert json.loads(receiver.requests[-1][1])["action"] == "rollback"


def test_tailor_retrain_exits_1_and_names_the_failure_for_a_batch_it_cannot_read(world, name):
    empty = world["root"] / "incoming" / "empty.csv"
    empty.write_text("")
    env = {**os.environ, **world["env"], "PREFECT_API_URL": world["api"]}

    result = run_cli(
        "retrain",
        "--data",
        str(empty),
        "--name",
        name,
        "--holdout",
        str(SAMPLE / "holdout.csv"),
        "--labels",
        str(SAMPLE / "labels.txt"),
        "--json",
        env=env,
        cwd=world["root"],
    )

    assert result.returncode == 1, result.stderr
    outcome = json.loads(result.stdout)
    assert outcome["status"] == "rejected_data" and outcome["version"] is None
    assert empty.exists() and Path(outcome["validation"]["quarantined_to"]).read_text(encoding="utf-8") == ""
    shutil.rmtree(world["root"] / "data" / "quarantine", ignore_errors=True)


def test_a_retrain_keeps_the_newest_run_folders_and_never_touches_other_folders(world, name, monkeypatch):
    from pipelines.orchestration import flows

    runs = world["root"] / "runs" / f"{name}-kept"
    old = [runs / f"2020010{day}T000000000000Z" for day in range(1, 6)]
    for folder in old:
        (folder / "adapter").mkdir(parents=True)
        (folder / "adapter" / "reference.csv").write_text("text,label\n")
        (folder / "outcome.json").write_text("{}")  # finished
    crashed = runs / "20191231T000000000000Z"  # no outcome: a run that crashed, kept for its owner
    (crashed / "adapter").mkdir(parents=True)
    (runs / "notes").mkdir()
    (runs / "20190101T000000000000Z.txt").write_text("a file of the user's")
    empty = world["root"] / "incoming" / "kept.csv"
    empty.write_text("")
    monkeypatch.setenv("TAILOR_KEEP_RUNS", "3")

    state = flows.retrain(
        empty, f"{name}-kept", SAMPLE / "holdout.csv", labels=SAMPLE / "labels.txt", return_state=True
    )

    assert state.result(raise_on_failure=False).status == "rejected_data"
    # The newest keep_runs - 1 finished ones, and this run's own, which holds its outcome.
    assert sorted(p.name for p in runs.iterdir() if p in old) == [old[3].name, old[4].name]
    [own] = [p for p in runs.iterdir() if p not in old and p.name.startswith("2026")]
    assert json.loads((own / "outcome.json").read_text(encoding="utf-8"))["status"] == "rejected_data"
    assert crashed.is_dir() and (runs / "notes").is_dir() and (runs / "20190101T000000000000Z.txt").is_file()
    shutil.rmtree(world["root"] / "data" / "quarantine", ignore_errors=True)


def test_a_watched_batch_registered_by_a_run_that_died_before_recording_it_is_not_registered_again(world, name, first):
    from pipelines.batches.data_version import dvc_md5
    from pipelines.orchestration import flows
    from pipelines.settings import load_settings

    watch_dir = world["root"] / "watch-died"
    watch_dir.mkdir()
    shutil.copy(world["batch"], watch_dir / "again.csv")  # the first retrain registered these bytes
    os.utime(watch_dir / "again.csv", (time.time() - 600, time.time() - 600))  # and it settled long ago
    heads = registry().head_seq(name)

    [entry] = flows.watch(watch_dir, name, SAMPLE / "holdout.csv", labels=SAMPLE / "labels.txt")

    newest = [m.version for m in registry().versions(name) if m.data_version == dvc_md5(world["batch"])][-1]
    assert (entry.file, entry.status, entry.version) == ("again.csv", "registered by an earlier run", newest)
    assert registry().head_seq(name) == heads  # nothing trained, registered or promoted
    recorded = watching.processed_batches(watching.state_file(load_settings().home, name))
    assert recorded[-1].sha256 == entry.sha256


def test_a_watched_batch_whose_run_died_after_registering_gets_the_promotions_that_run_would_have_made(
    world, name, first, monkeypatch
):
    from datetime import timedelta

    from pipelines.orchestration import flows

    monkeypatch.setattr(watching, "RECOVERY_GRACE", timedelta(0))  # the run died long ago, not seconds ago
    from pipelines.batches.data_version import dvc_md5

    watch_dir = world["root"] / "watch-died-early"
    watch_dir.mkdir()
    batch = watch_dir / "died.csv"
    batch.write_text(world["batch"].read_text(encoding="utf-8") + "\n")
    os.utime(batch, (time.time() - 600, time.time() - 600))
    folder = world["root"] / "died-adapter"  # what that run trained and registered, with a passed gate, then died
    shutil.copytree(first[1].adapter_dir, folder)
    result = json.loads((folder / "train_result.json").read_text(encoding="utf-8"))
    (folder / "train_result.json").write_text(json.dumps({**result, "data_version": dvc_md5(batch)}))
    version = Context.load().registry(with_base=True).register(folder, name, reason="died after this").version
    before = registry().aliases(name)

    [entry] = flows.watch(watch_dir, name, SAMPLE / "holdout.csv", labels=SAMPLE / "labels.txt")

    assert (entry.version, entry.status) == (version, "registered by an earlier run; promoted to staging now")
    assert registry().aliases(name) == {**before, "staging": version}  # production is a person's to move
    policy_version = yaml.safe_load((world["root"] / "policy.yaml").read_text(encoding="utf-8"))["version"]
    assert registry().events(name)[-1].reason == (
        f"gate passed under policy {policy_version}; promoted on recovery: "
        "the run that registered it stopped before promoting"
    )
    assert watching.staging_owed(Context.snapshot(), name, version) is False  # a second try moves nothing


def test_a_watched_batch_that_fails_does_not_block_newer_ones_and_a_store_failure_is_retried(world, name, monkeypatch):
    from pipelines.orchestration import flows
    from pipelines.settings import load_settings
    from registry.errors import RefusedError, StoreError

    class Finished:
        def __init__(self, value):
            self.value = value

        def result(self, raise_on_failure):
            return self.value

    outcomes = {
        "refused.csv": RefusedError("dvc add refused it: the folder is git-ignored"),
        "store-down.csv": StoreError("cannot reach the object store"),
        "fine.csv": RetrainOutcome.model_construct(status="promoted", version="v7"),
    }
    monkeypatch.setattr(flows, "retrain", lambda path, *a, **k: Finished(outcomes[path.name]))
    watch_dir = world["root"] / "watch-fails"
    watch_dir.mkdir()
    for i, file in enumerate(outcomes):  # oldest first: the refusal comes before the others
        (watch_dir / file).write_text(f"text,label\nbatch {i},a\n")
        os.utime(watch_dir / file, (time.time() - 100 + i, time.time() - 100 + i))

    done = flows.watch(watch_dir, name, SAMPLE / "holdout.csv")

    assert [(e.file, e.status, e.version) for e in done] == [
        ("refused.csv", "failed: dvc add refused it: the folder is git-ignored", None),
        ("fine.csv", "promoted", "v7"),
    ]
    recorded = {e.file for e in watching.processed_batches(watching.state_file(load_settings().home, name))}
    assert {"refused.csv", "fine.csv"} <= recorded and "store-down.csv" not in recorded  # tried again next run


def test_a_retrain_whose_load_could_not_be_judged_is_registered_not_promoted_and_names_judge_load(world, name, first):
    policy = yaml.safe_load((world["root"] / "policy.yaml").read_text(encoding="utf-8"))
    policy["load"]["max_base_spread"] = 1.0001  # no real minute is this quiet: the load is never judged
    (world["root"] / "busy.yaml").write_text(yaml.safe_dump(policy))
    before = registry().aliases(name)

    state, outcome = retrain(world, name, world["batch"], policy="busy.yaml")

    assert state.is_completed() and outcome.status == "registered", state.message
    assert outcome.gate.verdict == "not judged" and outcome.promoted_to == []
    assert any(f"tailor judge-load {name} {outcome.version}" in note for note in outcome.notes), outcome.notes
    assert registry().aliases(name) == before  # not even staging


def test_a_cp932_batch_dropped_into_the_watched_folder_is_named_and_judged_again_under_schedule_encoding(
    world, name, first, monkeypatch
):
    from pipelines.orchestration import flows
    from pipelines.settings import load_settings

    watch_dir = world["root"] / "watch-cp932"
    watch_dir.mkdir()
    excel = "text,label\nカードを紛失しました,card_lost\n返金をお願いします,refund_request\n".encode("cp932")
    (watch_dir / "excel.csv").write_bytes(excel)  # as Japanese Excel saves "CSV"
    os.utime(watch_dir / "excel.csv", (time.time() - 600, time.time() - 600))

    [refused] = flows.watch(watch_dir, name, SAMPLE / "holdout.csv", labels=SAMPLE / "labels.txt")

    assert (refused.file, refused.status, refused.encoding) == ("excel.csv", "rejected_data", None)
    quarantined = next((world["root"] / "data" / "quarantine").glob("*excel*/excel.csv"))
    assert quarantined.read_bytes() == excel and not (watch_dir / "excel.csv").exists()
    report = json.loads((quarantined.parent / "validation.json").read_text(encoding="utf-8"))
    assert "Shift_JIS/CP932" in json.dumps(report, ensure_ascii=False) and "--encoding cp932" in json.dumps(report)

    # The user restarts `tailor schedule --encoding cp932` and copies the same bytes back in.
    shutil.copy(quarantined, watch_dir / "excel.csv")
    os.utime(watch_dir / "excel.csv", (time.time() - 600, time.time() - 600))
    assert flows.watch(watch_dir, name, SAMPLE / "holdout.csv", labels=SAMPLE / "labels.txt") == []  # same encoding
    read_in = []

    class Finished:
        def result(self, raise_on_failure):
            return RetrainOutcome.model_construct(status="registered", version="v99")

    monkeypatch.setattr(flows, "retrain", lambda path, *a, encoding, **k: read_in.append(encoding) or Finished())
    [judged] = flows.watch(watch_dir, name, SAMPLE / "holdout.csv", labels=SAMPLE / "labels.txt", encoding="cp932")

    assert read_in == ["cp932"] and (judged.status, judged.encoding) == ("registered", "cp932")
    recorded = watching.processed_batches(watching.state_file(load_settings().home, name))
    assert [(e.status, e.encoding) for e in recorded if e.sha256 == judged.sha256] == [
        ("rejected_data", None),
        ("registered", "cp932"),
    ]
