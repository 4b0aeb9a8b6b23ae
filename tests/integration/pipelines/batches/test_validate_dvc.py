"""DVC tracking without a store: the data version is DVC's md5, and files DVC cannot track (outside a
DVC project, or already in git) keep their md5 with a note instead of failing the batch."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.batches import data_version
from pipelines.batches.data_version import REMOTE, configure_remote, dvc_md5, find_dvc_root, track
from registry.errors import ConfigError, RefusedError, StoreError
from registry.settings import StoreSettings

DVC = str(Path(sys.executable).parent / "dvc")
STORE = StoreSettings(endpoint="http://127.0.0.1:1", bucket="bkt", access_key="AK", secret_key="SECRET-xyz")


@pytest.fixture
def project(tmp_path) -> Path:
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(
        [DVC, "init", "-q"], cwd=tmp_path, check=True, env={"DVC_NO_ANALYTICS": "1", "PATH": "/usr/bin:/bin"}
    )
    (tmp_path / "data").mkdir()
    return tmp_path


def test_dvc_md5_is_the_md5_of_the_bytes(tmp_path):
    path = tmp_path / "b.csv"
    path.write_bytes(b"text,label\r\nhello,a\r\n")
    assert dvc_md5(path) == hashlib.md5(b"text,label\r\nhello,a\r\n").hexdigest()


def test_a_file_outside_any_dvc_project_keeps_its_md5_with_a_note(tmp_path):
    path = tmp_path / "b.csv"
    path.write_bytes(b"text,label\nhello,a\n")
    assert find_dvc_root(tmp_path) is None
    tracked = track(path, STORE, project=tmp_path)
    assert tracked.md5 == dvc_md5(path) and tracked.dvc_file is None and not tracked.pushed
    assert "not inside a DVC repository" in tracked.note


def test_a_batch_is_added_with_a_dvc_file_and_secrets_only_in_the_local_config(project):
    path = project / "data" / "b.csv"
    path.write_bytes(b"text,label\nhello,a\n")
    tracked = track(path, STORE, project=project, push=False)
    assert tracked.dvc_file == project / "data" / "b.csv.dvc"
    assert f"md5: {tracked.md5}" in tracked.dvc_file.read_text(encoding="utf-8")
    local = (project / ".dvc" / "config.local").read_text(encoding="utf-8")
    assert "SECRET-xyz" in local and "endpointurl = http://127.0.0.1:1" in local and f"remote = {REMOTE}" in local
    assert "SECRET-xyz" not in (project / ".dvc" / "config").read_text(encoding="utf-8")
    ignored = subprocess.run(["git", "check-ignore", ".dvc/config.local"], cwd=project, capture_output=True)
    assert ignored.returncode == 0


def test_a_file_already_in_git_keeps_its_md5_with_a_note(project):
    path = project / "data" / "sample.csv"
    path.write_bytes(b"text,label\nhello,a\n")
    subprocess.run(["git", "add", "data/sample.csv"], cwd=project, check=True)
    tracked = track(path, STORE, project=project, push=False)
    assert tracked.dvc_file is None and tracked.md5 == dvc_md5(path)
    assert "tracked by git, not DVC" in tracked.note
    assert path.read_bytes() == b"text,label\nhello,a\n"


def test_the_local_config_holding_the_secret_is_readable_by_its_owner_only(project):
    local = project / ".dvc" / "config.local"
    configure_remote(project, STORE)
    assert local.stat().st_mode & 0o777 == 0o600
    local.chmod(0o644)
    configure_remote(
        project, StoreSettings(endpoint="http://127.0.0.1:2", bucket="bkt", access_key="AK", secret_key="S2")
    )
    assert local.stat().st_mode & 0o777 == 0o600 and "S2" in local.read_text(encoding="utf-8")
    local.chmod(0o644)  # as a Tailor older than the rule left it, with the same keys as now
    configure_remote(
        project, StoreSettings(endpoint="http://127.0.0.1:2", bucket="bkt", access_key="AK", secret_key="S2")
    )
    assert local.stat().st_mode & 0o777 == 0o600


def test_temporary_keys_and_a_private_ca_reach_the_remote_and_leave_it_with_the_settings(project):
    from dvc.repo import Repo

    def remote() -> dict:
        with Repo(str(project)) as repo:
            return dict(repo.config["remote"][REMOTE])

    https = dict(endpoint="https://s3.internal", bucket="bkt", access_key="ASIA", secret_key="SK")
    configure_remote(project, StoreSettings(**https, session_token="TOKEN", ca_bundle="/etc/ca.pem"))
    assert (remote()["session_token"], remote()["ssl_verify"]) == ("TOKEN", "/etc/ca.pem")
    configure_remote(project, StoreSettings(**https))
    assert "session_token" not in remote() and "ssl_verify" not in remote()


def test_configuring_the_remote_twice_changes_nothing(project):
    configure_remote(project, STORE)
    local = project / ".dvc" / "config.local"
    before = local.stat().st_mtime_ns, local.read_text(encoding="utf-8")
    configure_remote(project, STORE)
    assert (local.stat().st_mtime_ns, local.read_text(encoding="utf-8")) == before


def test_a_push_to_an_unreachable_store_is_a_store_error_and_the_batch_stays_tracked(project):
    path = project / "data" / "b.csv"
    path.write_bytes(b"text,label\nhello,a\n")
    with pytest.raises(StoreError, match=r"tracked by DVC \(b.csv.dvc, md5 [0-9a-f]{32}\) but `dvc push` .* failed"):
        track(path, STORE, project=project)
    assert (project / "data" / "b.csv.dvc").is_file()
    assert path.read_bytes() == b"text,label\nhello,a\n"


def test_an_accepted_batch_whose_push_fails_still_gets_its_report(project):
    from pipelines.batches.route import validate_and_route
    from pipelines.policy import load_policy
    from pipelines.records import ValidationReport

    path = project / "data" / "b.csv"
    rows = [f"message {i} about {label}" for label in ("cards", "refunds") for i in range(10)]
    path.write_text("text,label\n" + "\n".join(f"{t},{t.split()[-1]}" for t in rows) + "\n")
    with pytest.raises(StoreError, match="dvc push"):
        validate_and_route(path, load_policy(), data_dir=project / "data", store=STORE)
    (written,) = (project / "data" / "reports").glob("*-b.csv/validation.json")
    report = ValidationReport.read_json(written)
    assert report.accepted and report.data_version == dvc_md5(path)
    assert path.is_file()


def _accepted_batch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [f"message {i} about {label}" for label in ("cards", "refunds") for i in range(10)]
    path.write_text("text,label\n" + "\n".join(f"{t},{t.split()[-1]}" for t in rows) + "\n", encoding="utf-8")
    return path


def _route_fails(path: Path, project: Path, error: type, match: str) -> str:
    from pipelines.batches.route import validate_and_route
    from pipelines.policy import load_policy
    from pipelines.records import ValidationReport

    with pytest.raises(error, match=match) as raised:
        validate_and_route(path, load_policy(), data_dir=project / "data", store=STORE)
    (written,) = (project / "data" / "reports").glob(f"*-{path.name}/validation.json")
    assert ValidationReport.read_json(written).accepted
    assert f"its report is {written.parent / 'validation.md'}" in str(raised.value)
    return str(raised.value)


def test_a_batch_in_a_git_ignored_subfolder_is_refused_by_dvc_add_with_its_report_written(project):
    (project / ".gitignore").write_text("/data/incoming/*\n!/data/incoming/*.dvc\n")
    batch = _accepted_batch(project / "data" / "incoming" / "nov" / "b.csv")
    _route_fails(batch, project, RefusedError, r"`dvc add` refused batch .*b.csv.*FileIsGitIgnored")
    assert batch.is_file()


def test_a_batch_inside_the_dvc_folder_is_refused_by_dvc_add(project):
    batch = _accepted_batch(project / ".dvc" / "b.csv")
    _route_fails(batch, project, RefusedError, r"`dvc add` refused batch .*OutputIsIgnoredError")


def test_a_project_copy_without_git_is_a_config_error_naming_the_cause(project):
    shutil.rmtree(project / ".git")
    batch = _accepted_batch(project / "data" / "b.csv")
    _route_fails(batch, project, ConfigError, r"DVC config in .*SCMError")


def test_a_push_the_store_forbids_is_a_store_error_with_its_report_written(project, monkeypatch):
    from dvc.repo import Repo

    def forbidden(self, *args, **kwargs):
        raise PermissionError("Forbidden")

    monkeypatch.setattr(Repo, "push", forbidden)
    monkeypatch.setattr(data_version, "_require_bucket", lambda store: None)
    batch = _accepted_batch(project / "data" / "b.csv")
    _route_fails(batch, project, StoreError, r"`dvc push` .* failed: PermissionError: Forbidden")


def test_a_batch_inside_another_dvc_repository_is_not_tracked_there(project, tmp_path_factory):
    other = tmp_path_factory.mktemp("other")
    subprocess.run(
        [DVC, "init", "-q", "--no-scm"], cwd=other, check=True, env={"DVC_NO_ANALYTICS": "1", "PATH": "/usr/bin:/bin"}
    )
    path = other / "b.csv"
    path.write_bytes(b"text,label\nhello,a\n")
    tracked = track(path, STORE, project=project / "data")
    assert tracked.dvc_file is None and tracked.md5 == dvc_md5(path)
    assert f"inside another DVC repository ({other})" in tracked.note
    assert not (other / "b.csv.dvc").exists() and not (other / ".dvc" / "config.local").exists()


@pytest.mark.parametrize("role", ["reader", "approver"])
def test_a_role_that_cannot_write_the_remote_is_refused_before_dvc_add_and_its_keys_are_not_saved(project, role):
    path = project / "data" / "b.csv"
    path.write_bytes(b"text,label\nhello,a\n")
    reader = StoreSettings(
        endpoint="http://127.0.0.1:1", bucket="bkt", access_key="AK", secret_key="SECRET-r", role=role
    )
    with pytest.raises(RefusedError, match=f"role '{role}' cannot write s3://bkt/dvc/.*trainer or admin.*--no-track"):
        track(path, reader, project=project)
    assert not (project / "data" / "b.csv.dvc").exists()
    assert not (project / ".dvc" / "config.local").exists()


def test_a_trainer_may_track(project):
    path = project / "data" / "b.csv"
    path.write_bytes(b"text,label\nhello,a\n")
    trainer = StoreSettings(
        endpoint="http://127.0.0.1:1", bucket="bkt", access_key="AK", secret_key="S", role="trainer"
    )
    assert track(path, trainer, project=project, push=False).dvc_file == project / "data" / "b.csv.dvc"
