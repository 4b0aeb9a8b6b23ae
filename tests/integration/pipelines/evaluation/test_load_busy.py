"""The load gate judges the adapter, not the minute it was measured in: the demo's candidate passes with two
CPU-bound processes beside it on a 2-core machine, and an adapter three times slower than the base still fails."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest
import yaml

from pipelines.batches.read import read_batch
from pipelines.evaluation import gate
from pipelines.evaluation.checks import load, serving_probe
from pipelines.policy import DEFAULT_POLICY, DataPolicy, load_policy
from pipelines.records import CheckResult
from pipelines.settings import load_settings
from tests.conftest import REPO, run_cli
from tests.unit.pipelines.evaluation.test_gate import by_name, passing_checks, replace, with_value

BATCH_LIMIT = DataPolicy().max_file_bytes  # the shipped policy's data.max_file_mb

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SAMPLE = REPO / "data" / "sample"


# Each busy process ends on its own after HOG_SECONDS, or as soon as its parent is gone: a pytest killed
# with SIGKILL (a CI timeout) leaves no process spinning on a shared runner.
HOG_SECONDS = 240
# The parent's pid comes from the parent: read at the child's start, it may already be init's.
HOG = (
    "import os, time\nparent, end = {parent}, time.monotonic() + {seconds}\n"
    "while time.monotonic() < end and os.getppid() == parent:\n    pass\n"
)


@pytest.fixture
def busy():
    """Two CPU-bound processes: on 2 cores every call of the check now competes for its core."""
    hogs = [
        subprocess.Popen([sys.executable, "-c", HOG.format(parent=os.getpid(), seconds=HOG_SECONDS)]) for _ in range(2)
    ]
    time.sleep(1)
    yield
    for hog in hogs:
        hog.kill()
        hog.wait()


def test_a_busy_process_ends_when_the_test_run_that_started_it_is_killed():
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import os, subprocess, sys, time\n"
            "code = sys.argv[1].replace('PARENT', str(os.getpid()))\n"
            "print(subprocess.Popen([sys.executable, '-c', code]).pid, flush=True)\n"
            "time.sleep(60)",
            HOG.format(parent="PARENT", seconds=60),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    hog = int(parent.stdout.readline())
    parent.kill()  # as CI kills a run past its time: no finaliser runs
    parent.wait()
    deadline = time.monotonic() + 10
    while running(hog):
        assert time.monotonic() < deadline, f"busy process {hog} outlived its killed parent"
        time.sleep(0.1)


def running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text(encoding="utf-8").split()[2] != "Z"  # a zombie has ended
    except FileNotFoundError:
        return False


@pytest.fixture(scope="module")
def candidate(tmp_path_factory) -> Path:
    """An adapter shaped as the demo's (params.yaml's LoRA settings on the sample): speed depends on its
    shape, not on how long it trained, so one step is enough."""
    from pipelines.training.params import load_params
    from pipelines.training.recipe import train
    from serving.model import load_base

    folder = tmp_path_factory.mktemp("candidate")
    settings = load_settings()
    base = load_base(settings.base_model_dir, model_id=settings.base_model_id, cache_dir=folder)
    train(
        read_batch(SAMPLE / "train.csv", max_bytes=BATCH_LIMIT),
        folder / "adapter",
        base=base,
        params=load_params(noise_filter="none", min_steps=1, max_steps=1, select="lora"),
    )
    return folder / "adapter"


def judged(result: CheckResult) -> tuple[str, set[str]] | None:
    """Why the gate would not judge this load result under the shipped policy (None: it is judged)."""
    return gate._not_judged(load_policy(), result)


def measured_judged(measure: Callable[[], CheckResult]) -> CheckResult:
    """``measure()``'s result, measured once more only when the machine was too busy to judge it (a CI
    runner at load 30 can be): a judged result, passed or failed, is never measured again."""
    result = measure()
    if judged(result) is not None:
        result = measure()
    assert judged(result) is None, result.details["summary"]
    return result


def test_the_demo_candidate_passes_load_with_two_cpu_bound_processes_beside_it(candidate, busy):
    texts = read_batch(SAMPLE / "holdout.csv", max_bytes=BATCH_LIMIT).texts
    result = measured_judged(
        lambda: load.run(load.measure(candidate, load_settings().base_model_dir, texts), load_policy().load)
    )
    assert result.passed, [(t.metric, t.value, t.limit) for t in result.thresholds if not t.passed]
    assert result.details["load_average_before"] > 0 and "load average" in result.details["summary"]


def test_an_adapter_three_times_slower_than_the_base_still_fails(candidate, busy):
    import torch

    from serving.model import load_base, load_classifier

    settings = load_settings()
    base = load_base(settings.base_model_dir, model_id=settings.base_model_id, cache_dir=candidate.parent)
    classifier = load_classifier(candidate, base)

    def slow(batch):  # the adapter's forward pass three times: about 3x the base's latency
        for _ in range(3):
            proba = classifier.predict_proba(batch)
        return proba

    bare = serving_probe.bare_base(base, len(classifier.labels), classifier.meta.max_length)

    def measure() -> CheckResult:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # as the serving probe measures
        try:
            measured = serving_probe.timings(
                bare, slow, read_batch(SAMPLE / "holdout.csv", max_bytes=BATCH_LIMIT).texts
            )
        finally:
            torch.set_num_threads(threads)
        return load.run({**measured, "rss_mb": 500.0, "adapter_mb": load.adapter_mb(candidate)}, load_policy().load)

    result = measured_judged(measure)
    assert {t.metric for t in result.thresholds if not t.passed} == {"p95_ratio", "throughput_ratio"}, result.details[
        "summary"
    ]
    assert result.details["p95_ratio"] > 2.0


def test_a_version_not_judged_is_judged_again_later_as_a_new_audit_event(s3_server, candidate, unique_name, tmp_path):
    # A spread limit that a busy test machine meets when judged again, but the first measurement did not.
    doc = yaml.safe_load(DEFAULT_POLICY.read_text(encoding="utf-8"))
    doc["load"]["max_base_spread"] = 1000
    later = tmp_path / "later.yaml"
    later.write_text(yaml.safe_dump(doc))
    policy = load_policy(later)
    checks = passing_checks(policy)
    checks = replace(checks, with_value(by_name(checks, "load"), "base_spread", 1001.0))
    folder = shutil.copytree(candidate, tmp_path / "adapter")
    gate.decide(policy, checks, adapter=f"{unique_name}:candidate").write_json(folder / "gate_decision.json")
    trainer = s3_server.env(TAILOR_ROLE="trainer", TAILOR_ACTOR="alice", TAILOR_POLICY=str(later))
    approver = s3_server.env(TAILOR_ROLE="approver", TAILOR_ACTOR="bob", TAILOR_POLICY=str(later))
    shipped = s3_server.env(TAILOR_ROLE="trainer", TAILOR_ACTOR="alice")

    assert run_cli("register", str(folder), "--name", unique_name, "--reason", "busy", env=trainer).returncode == 0
    refused = run_cli("promote", unique_name, "v1", "--to", "production", "--reason", "r", env=approver)
    assert refused.returncode != 0 and "load: not judged: machine too busy" in refused.stderr

    elsewhere = run_cli("judge-load", unique_name, "v1", env=shipped)  # the shipped policy: not the gate's
    assert elsewhere.returncode != 0 and "was decided under policy" in elsewhere.stderr
    done = run_cli("judge-load", unique_name, "v1", "--policy", str(later), env=trainer)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("gate PASSED") and "recorded as a judge event" in done.stdout
    log = json.loads(run_cli("audit", "log", unique_name, "--json", env=trainer).stdout)
    events = log["events"] if isinstance(log, dict) else log
    assert [e["action"] for e in events] == ["register", "judge"]
    judge = events[-1]
    assert judge["gate"]["passed"] is True and judge["content_sha256"] == events[0]["content_sha256"]
    assert judge["gate"]["evidence"]["details"]["load_average_before"] >= 0
    assert events[0]["gate"]["passed"] is False  # the register event keeps what was true then

    promoted = run_cli("promote", unique_name, "v1", "--to", "production", "--reason", "judged", env=approver)
    assert promoted.returncode == 0, promoted.stderr
    again = run_cli("judge-load", unique_name, "v1", "--policy", str(later), env=trainer)
    assert again.returncode != 0 and "has a verdict already (passed)" in again.stderr
    assert run_cli("audit", "verify", unique_name, env=trainer).returncode == 0
