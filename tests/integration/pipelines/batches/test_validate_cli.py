"""`tailor validate` as a user runs it, in a fresh git + DVC project, against a real SeaweedFS and
the real base model: an accepted batch is audited, tracked and pushed; a rejected one is quarantined."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.records import ValidationReport
from registry.store import S3ObjectStore
from tests.conftest import REPO, run_cli

pytestmark = pytest.mark.integration

SAMPLE = REPO / "data" / "sample"
DVC = str(Path(sys.executable).parent / "dvc")
# The five rows data/sample/README.md documents as deliberately mislabelled.
DELIBERATE_ERRORS = {"t0009", "t0023", "t0040", "t0071", "t0102"}


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A git + DVC project like a user's checkout, with nothing tracked yet."""
    root = tmp_path_factory.mktemp("project")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run([DVC, "init", "-q"], cwd=root, check=True, env={"DVC_NO_ANALYTICS": "1", "PATH": "/usr/bin:/bin"})
    (root / "data" / "incoming").mkdir(parents=True)
    return root


def test_an_accepted_batch_is_noise_audited_tracked_and_pushed_to_the_store(project, s3_server):
    batch = project / "data" / "incoming" / "train.csv"
    shutil.copy(SAMPLE / "train.csv", batch)
    md5 = hashlib.md5(batch.read_bytes()).hexdigest()
    result = run_cli(
        "validate",
        str(batch),
        "--labels",
        str(SAMPLE / "labels.txt"),
        "--holdout",
        str(SAMPLE / "holdout.csv"),
        "--json",
        env=s3_server.env(),
        cwd=project,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = ValidationReport.model_validate(json.loads(result.stdout))
    assert report.accepted and report.failures == []
    assert report.data_version == md5

    # The noise audit finds the sample's deliberate mislabels and stays under the policy's limit.
    assert report.noise is not None and report.noise.estimated_rate < report.noise.max_rate
    review = Path(report.review_file).read_text(encoding="utf-8")
    assert all(row_id in review for row_id in DELIBERATE_ERRORS)
    assert "id,text,given_label,suggested_label,confidence" in review.splitlines()[0]

    # Tracked by DVC, the batch left in place, the object in the store, no secret in git's config.
    assert batch.is_file()
    assert f"md5: {md5}" in (project / "data" / "incoming" / "train.csv.dvc").read_text(encoding="utf-8")
    store = S3ObjectStore(s3_server.settings())
    assert [o.key for o in store.list(f"dvc/files/md5/{md5[:2]}/")] == [f"dvc/files/md5/{md5[:2]}/{md5[2:]}"]
    settings = s3_server.settings()
    assert settings.secret_key not in (project / ".dvc" / "config").read_text(encoding="utf-8")
    assert settings.secret_key in (project / ".dvc" / "config.local").read_text(encoding="utf-8")
    assert Path(report.report_markdown).read_text(encoding="utf-8").startswith("# Validation of train.csv: ACCEPTED")

    # Plain `dvc push` works for the user too, with the credentials written at the local level.
    push = subprocess.run(
        [DVC, "push"], cwd=project, capture_output=True, text=True, env={**s3_server.env(), "DVC_NO_ANALYTICS": "1"}
    )
    assert push.returncode == 0, push.stderr
    assert "up to date" in push.stdout.lower()


def test_a_rejected_batch_exits_1_and_lands_in_quarantine_with_its_report(project, s3_server):
    batch = project / "data" / "incoming" / "dirty.csv"
    content = (SAMPLE / "batch2.csv").read_bytes() + b"b9999,my parcel is lost,parcel_lost,chat\n"
    batch.write_bytes(content)
    result = run_cli(
        "validate",
        str(batch),
        "--labels",
        str(SAMPLE / "labels.txt"),
        "--no-noise-audit",
        env=s3_server.env(),
        cwd=project,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "REJECTED dirty.csv (33 rows)" in result.stdout
    assert "labels in the allowed set: 1 — id b9999: label='parcel_lost'" in result.stdout
    quarantined = list((project / "data" / "quarantine").glob("*-dirty.csv/dirty.csv"))
    assert len(quarantined) == 1 and quarantined[0].read_bytes() == content
    assert not batch.exists()
    report = ValidationReport.read_json(quarantined[0].parent / "validation.json")
    assert report.quarantined_to == str(quarantined[0]) and report.data_version is None
    assert not (project / "data" / "incoming" / "dirty.csv.dvc").exists()


def test_a_missing_batch_is_an_error_naming_the_path(project, s3_server):
    result = run_cli("validate", "data/incoming/nope.csv", "--no-noise-audit", env=s3_server.env(), cwd=project)
    assert result.returncode == 1
    assert "error: batch file data/incoming/nope.csv does not exist" in result.stderr


def _accepted_copy(project: Path, name: str) -> Path:
    batch = project / "data" / "incoming" / name
    shutil.copy(SAMPLE / "train.csv", batch)
    return batch


def test_a_reader_cannot_track_a_batch_and_its_keys_are_not_saved(project, s3_server):
    batch = _accepted_copy(project, "by-reader.csv")
    reader = s3_server.settings("reader")
    result = run_cli(
        "validate",
        str(batch),
        "--labels",
        str(SAMPLE / "labels.txt"),
        "--no-noise-audit",
        env=s3_server.env(TAILOR_ROLE="reader"),
        cwd=project,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "role 'reader' cannot write" in result.stderr and "its report is" in result.stderr
    assert not (project / "data" / "incoming" / "by-reader.csv.dvc").exists()
    local = project / ".dvc" / "config.local"
    assert not local.exists() or reader.access_key not in local.read_text(encoding="utf-8")


def test_a_push_to_a_missing_bucket_is_refused_and_does_not_create_it(project, s3_server):
    batch = _accepted_copy(project, "nobucket.csv")
    result = run_cli(
        "validate",
        str(batch),
        "--labels",
        str(SAMPLE / "labels.txt"),
        "--no-noise-audit",
        env={**s3_server.env(), "TAILOR_BUCKET": "no-such-bucket"},
        cwd=project,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "bucket 'no-such-bucket' does not exist" in result.stderr
    buckets = S3ObjectStore(s3_server.settings()).client.list_buckets()["Buckets"]
    assert "no-such-bucket" not in [b["Name"] for b in buckets]
