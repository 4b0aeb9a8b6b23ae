"""Settings come from tailor.toml and TAILOR_* variables, and every bad value names its key."""

import json
from pathlib import Path

import pytest

from pipelines.settings import load_settings
from registry.errors import ConfigError


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for key in list(__import__("os").environ):
        if key.startswith("TAILOR_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


def test_defaults_point_at_the_embedded_store_and_the_shipped_base_model():
    s = load_settings()
    assert s.bucket == "tailor"
    assert s.role == "admin"
    assert s.embedded_store().endpoint == "http://127.0.0.1:8333"
    assert (s.base_model_dir / "config.json").is_file()
    assert s.prefect_dir == Path(".tailor/prefect")


def test_environment_overrides_the_config_file(monkeypatch, tmp_path):
    (tmp_path / "tailor.toml").write_text('bucket = "from-file"\nrole = "reader"\n')
    monkeypatch.setenv("TAILOR_ROLE", "trainer")
    s = load_settings()
    assert s.bucket == "from-file"
    assert s.role == "trainer"


def test_any_s3_endpoint_works_by_configuration_alone(monkeypatch):
    monkeypatch.setenv("TAILOR_ENDPOINT", "https://minio.internal:9000/")
    monkeypatch.setenv("TAILOR_ACCESS_KEY", "AK")
    monkeypatch.setenv("TAILOR_SECRET_KEY", "SK")
    monkeypatch.setenv("TAILOR_ROLE", "approver")
    monkeypatch.setenv("TAILOR_ACTOR", "alice")
    store = load_settings().store()
    assert store.endpoint == "https://minio.internal:9000"
    assert (store.access_key, store.secret_key, store.role, store.actor) == ("AK", "SK", "approver", "alice")
    assert "SK" not in repr(store)


def test_temporary_keys_and_a_private_ca_reach_the_store_settings(monkeypatch, tmp_path):
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    for key, value in {
        "TAILOR_ENDPOINT": "https://s3.internal",
        "TAILOR_ACCESS_KEY": "ASIA",
        "TAILOR_SECRET_KEY": "SK",
        "TAILOR_SESSION_TOKEN": "TOKEN",
        "TAILOR_CA_BUNDLE": str(tmp_path / "ca.pem"),
    }.items():
        monkeypatch.setenv(key, value)
    store = load_settings().store()
    assert (store.session_token, store.ca_bundle) == ("TOKEN", str(tmp_path / "ca.pem"))
    assert "TOKEN" not in repr(store)


def test_an_endpoint_of_ones_own_without_keys_asks_for_them(monkeypatch, tmp_path):
    monkeypatch.setenv("TAILOR_HOME", str(tmp_path))
    monkeypatch.setenv("TAILOR_ENDPOINT", "https://s3.internal")
    with pytest.raises(ConfigError, match="no keys for https://s3.internal: give access_key and secret_key"):
        load_settings().store()


def test_credentials_come_from_the_identities_file_for_the_chosen_role(monkeypatch, tmp_path):
    ids = {"identities": [{"name": "reader", "credentials": [{"accessKey": "RA", "secretKey": "RS"}], "actions": []}]}
    (tmp_path / "ids.json").write_text(json.dumps(ids))
    (tmp_path / "ids.json").chmod(0o600)  # it holds secret keys: an open one is refused
    monkeypatch.setenv("TAILOR_CREDENTIALS_FILE", str(tmp_path / "ids.json"))
    monkeypatch.setenv("TAILOR_ROLE", "reader")
    assert load_settings().store().access_key == "RA"
    with pytest.raises(ConfigError, match="no identity named 'trainer'"):
        load_settings().store("trainer")


def test_keys_the_identities_file_gives_to_another_role_are_refused(monkeypatch, tmp_path):
    ids = {
        "identities": [
            {"name": r, "credentials": [{"accessKey": f"{r}-AK", "secretKey": f"{r}-SK"}], "actions": []}
            for r in ("trainer", "approver")
        ]
    }
    (tmp_path / "ids.json").write_text(json.dumps(ids))
    (tmp_path / "ids.json").chmod(0o600)  # it holds secret keys: an open one is refused
    monkeypatch.setenv("TAILOR_CREDENTIALS_FILE", str(tmp_path / "ids.json"))
    monkeypatch.setenv("TAILOR_ACCESS_KEY", "trainer-AK")
    monkeypatch.setenv("TAILOR_SECRET_KEY", "trainer-SK")
    monkeypatch.setenv("TAILOR_ROLE", "approver")
    with pytest.raises(ConfigError, match="access_key: it belongs to the 'trainer' identity .* but role is 'approver'"):
        load_settings().store()
    monkeypatch.setenv("TAILOR_ROLE", "trainer")
    assert load_settings().store().access_key == "trainer-AK"
    monkeypatch.setenv("TAILOR_ACCESS_KEY", "unlisted-AK")  # keys of another store are not judged
    monkeypatch.setenv("TAILOR_ROLE", "approver")
    assert load_settings().store().access_key == "unlisted-AK"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TAILOR_ROLE": "root"}, "role: Input should be 'admin', 'trainer', 'approver' or 'reader'"),
        ({"TAILOR_ENDPOINT": "ftp://x"}, "endpoint: Value error, must be an http:// or https:// URL with a host"),
        ({"TAILOR_ENDPOINT": "http://"}, "endpoint: Value error, must be an http:// or https:// URL with a host"),
        (
            {"TAILOR_WEBHOOKS": '["https://ci.example/hook", "ci.example/hook"]'},
            "webhooks.1: Value error, must be an http:// or https:// URL with a host, got '… (url sha256 ",
        ),
        (
            {"TAILOR_WEBHOOKS": '["http://ci.example:abc/hook"]'},  # httpx refused it only after the alias moved
            "webhooks.0: Value error, has a port that is not a number from 0 to 65535",
        ),
        ({"TAILOR_ENDPOINT": "http://minio:99999"}, "endpoint: Value error, has a port that is not a number"),
        ({"TAILOR_BUCKET": "Bad_Bucket"}, "bucket: Value error, may hold only lowercase letters, digits, '.' and '-'"),
        ({"TAILOR_STORE_PORT": "80"}, "store_port: Input should be greater than or equal to 1024"),
        ({"TAILOR_STORE_PORT": "eighty"}, "store_port: Input should be a valid integer"),
        ({"TAILOR_ACCESS_KEY": "only-one"}, "access_key and secret_key must be given together"),
        ({"TAILOR_WEBHOOKS": '["http://127.0.0.1:9/hook"]'}, "webhook_secret: required when webhooks are configured"),
        ({"TAILOR_DATA_DIR": ""}, "data_dir: Value error, is empty; give a path"),
        ({"TAILOR_HOME": " "}, "home: Value error, is empty; give a path"),
        ({"TAILOR_OBJECT_LOCK_DAYS": "-1"}, "object_lock_days: Input should be greater than 0"),
        ({"TAILOR_REGION": "eu west 1"}, "region: Value error, must be a region name such as us-east-1"),
        ({"TAILOR_REGION": ""}, "region: Value error, must be a region name such as us-east-1"),
        ({"TAILOR_REGION": "-eu-west-1"}, "region: Value error, must be a region name such as us-east-1"),
        (
            {"TAILOR_SESSION_TOKEN": "tok"},
            "session_token: it belongs to temporary keys; give access_key and secret_key",
        ),
        ({"TAILOR_CA_BUNDLE": "/nonexistent/ca.pem"}, "ca_bundle: /nonexistent/ca.pem is not a file"),
        (
            {"TAILOR_CA_BUNDLE": "/etc/hostname", "TAILOR_ENDPOINT": "http://minio:9000"},
            "ca_bundle: it verifies https endpoints, but endpoint is http://minio:9000",
        ),
    ],
)
def test_a_bad_environment_value_is_refused_naming_the_key(monkeypatch, env, message):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError, match="invalid configuration") as err:
        load_settings()
    assert message in str(err.value)


def test_a_refused_webhook_url_is_named_without_its_credentials_or_token(monkeypatch):
    monkeypatch.setenv("TAILOR_WEBHOOKS", '["ftp://hook-user:pass@ci.example/hook?token=SECRET"]')
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert (
        "webhooks.0: Value error, must be an http:// or https:// URL with a host, got 'ftp://ci.example/… (url"
        in str(err.value)
    )
    assert not any(secret in str(err.value) for secret in ("hook-user", "pass", "SECRET"))


@pytest.mark.parametrize(
    ("bucket", "rule"),
    [
        ("ab", "must be 3 to 63 characters long, got 2"),
        ("a" * 64, "must be 3 to 63 characters long, got 64"),
        ("Tailor", "may hold only lowercase letters, digits, '.' and '-'"),
        ("tailor_models", "may hold only lowercase letters, digits, '.' and '-'"),
        ("-tailor", "must begin and end with a lowercase letter or a digit"),
        ("tailor.", "must begin and end with a lowercase letter or a digit"),
        ("a..b", "must not hold two adjacent periods"),
        ("192.168.10.12", "must not be formatted as an IP address"),
        ("xn--tailor", "must not start with 'xn--'"),
        ("sthree-tailor", "must not start with 'sthree-'"),
        ("amzn-s3-demo-tailor", "must not start with 'amzn-s3-demo-'"),
        ("tailor-s3alias", "must not end with '-s3alias'"),
        ("tailor--ol-s3", "must not end with '--ol-s3'"),
        ("tailor.mrap", "must not end with '.mrap'"),
        ("tailor--x-s3", "must not end with '--x-s3'"),
        ("tailor--table-s3", "must not end with '--table-s3'"),
    ],
)
def test_a_bucket_name_aws_refuses_is_refused_naming_the_rule(monkeypatch, bucket, rule):
    monkeypatch.setenv("TAILOR_BUCKET", bucket)
    with pytest.raises(ConfigError, match="invalid configuration") as err:
        load_settings()
    assert f"bucket: Value error, {rule}" in str(err.value)


@pytest.mark.parametrize(
    "bucket", ["tailor", "tailor-test", "lifecycle", "bkt", "ml-adapters", "my.bucket.2", "a" * 63]
)
def test_bucket_names_aws_accepts_load(monkeypatch, bucket):
    monkeypatch.setenv("TAILOR_BUCKET", bucket)
    assert load_settings().bucket == bucket


def test_a_misspelt_variable_is_refused_and_another_tools_variable_is_not(monkeypatch):
    monkeypatch.setenv("TAILOR_REPO", "/opt/tailor")  # the Prefect deploy scripts' own variable
    assert load_settings().bucket == "tailor"
    monkeypatch.setenv("TAILOR_BUKET", "other")
    with pytest.raises(ConfigError, match="TAILOR_BUKET is not a setting; did you mean TAILOR_BUCKET"):
        load_settings()


def test_an_unknown_key_in_the_config_file_is_refused_by_name(tmp_path):
    (tmp_path / "tailor.toml").write_text('buckett = "typo"\n')
    with pytest.raises(ConfigError, match="buckett: unknown key"):
        load_settings()


@pytest.mark.parametrize("content", [b"bucket = [\n", b"\xff\xfebucket"])
def test_a_config_file_that_is_not_toml_is_refused_by_name(tmp_path, content):
    (tmp_path / "tailor.toml").write_bytes(content)
    with pytest.raises(ConfigError, match="config file tailor.toml is not readable TOML"):
        load_settings()


def test_a_tailor_toml_that_is_a_folder_is_refused_not_ignored(tmp_path):
    (tmp_path / "tailor.toml").mkdir()
    with pytest.raises(ConfigError, match="^config file tailor.toml is a folder, not a file$"):
        load_settings()


def test_an_explicit_config_file_that_does_not_exist_is_refused(monkeypatch):
    monkeypatch.setenv("TAILOR_CONFIG", "/nonexistent/tailor.toml")
    with pytest.raises(ConfigError, match="TAILOR_CONFIG: config file /nonexistent/tailor.toml does not exist"):
        load_settings()


def test_a_list_setting_from_the_environment_that_is_not_json_names_the_variable(monkeypatch):
    monkeypatch.setenv("TAILOR_WEBHOOKS", "https://ci.example/hook")  # the URL itself, not a JSON list
    with pytest.raises(ConfigError, match="^environment variable TAILOR_WEBHOOKS is not valid JSON; a list takes JSON"):
        load_settings()


@pytest.mark.timeout(20)
def test_a_credentials_file_that_is_a_device_is_refused_before_it_is_read(monkeypatch):
    monkeypatch.setenv("TAILOR_CREDENTIALS_FILE", "/dev/zero")  # read to its end, it would never return
    with pytest.raises(ConfigError, match="^credentials_file: /dev/zero is a device, pipe or socket, not a file$"):
        load_settings().store()


def test_a_missing_identities_file_says_how_to_create_it(monkeypatch, tmp_path):
    monkeypatch.setenv("TAILOR_HOME", str(tmp_path / "nothing-here"))
    with pytest.raises(ConfigError, match="run `tailor store start` once"):
        load_settings().store()


def test_a_damaged_identities_file_is_refused(monkeypatch, tmp_path):
    (tmp_path / "ids.json").write_text('{"identities": [{"name": "admin"}]}')
    (tmp_path / "ids.json").chmod(0o600)  # it holds secret keys: an open one is refused
    monkeypatch.setenv("TAILOR_CREDENTIALS_FILE", str(tmp_path / "ids.json"))
    with pytest.raises(ConfigError, match="not in SeaweedFS identities format"):
        load_settings().store()


def _model_folder(folder: Path, name_or_path: str | None) -> Path:
    folder.mkdir(parents=True)
    config = {"model_type": "bert"} | ({"_name_or_path": name_or_path} if name_or_path is not None else {})
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "model.safetensors").write_bytes(b"same weights")
    (folder / "vocab.txt").write_text("[UNK]\n")
    return folder


def test_the_base_model_id_is_the_hub_id_the_folder_records_so_two_copies_get_one_name(tmp_path):
    from registry.adapter_folder import same_base
    from registry.fingerprint import base_model_fingerprint

    a = _model_folder(tmp_path / "host-a" / "models" / "ruri", "cl-nagoya/ruri-v3-30m")
    b = _model_folder(tmp_path / "host-b" / "snapshots" / "1f2e3d", "cl-nagoya/ruri-v3-30m")
    ids = [load_settings(base_model=str(f)).base_model_id for f in (a, b)]
    assert ids == ["cl-nagoya/ruri-v3-30m"] * 2
    assert same_base(base_model_fingerprint(a, "name on host a"), base_model_fingerprint(b, "name on host b"))


def test_the_shipped_model_set_explicitly_keeps_its_upstream_id_and_a_set_id_wins(tmp_path):
    shipped = load_settings().base_model_dir
    assert load_settings(base_model=str(shipped)).base_model_id == "sentence-transformers/all-MiniLM-L6-v2"
    assert load_settings().base_model_id == "sentence-transformers/all-MiniLM-L6-v2"
    folder = _model_folder(tmp_path / "m", "./out/checkpoint-500")
    assert load_settings(base_model=str(folder), base_model_id="acme/encoder").base_model_id == "acme/encoder"


@pytest.mark.parametrize("name_or_path", [None, "", "./out/checkpoint-500", "/home/me/model", "model"])
def test_a_base_model_folder_naming_no_hub_id_asks_for_base_model_id(tmp_path, name_or_path):
    folder = _model_folder(tmp_path / "models" / "ruri", name_or_path)
    with pytest.raises(ConfigError, match=r"base_model_id is not set.*names no hub id.*TAILOR_BASE_MODEL_ID"):
        load_settings(base_model=str(folder))
    with pytest.raises(ConfigError, match="base_model_id is not set"):
        load_settings(base_model=str(tmp_path / "."))


def test_another_folder_given_on_the_command_line_is_named_by_its_hub_id_or_refused(tmp_path):
    settings = load_settings()
    assert settings.model_id_of(None) == settings.model_id_of(settings.base_model_dir) == settings.base_model_id
    assert settings.model_id_of(_model_folder(tmp_path / "a", "cl-nagoya/ruri-v3-30m")) == "cl-nagoya/ruri-v3-30m"
    with pytest.raises(
        ConfigError, match=r"^--base-model .*/b: its config.json names no hub id .*TAILOR_BASE_MODEL_ID="
    ):
        settings.model_id_of(_model_folder(tmp_path / "b", None))


def test_the_embedded_store_keys_are_judged_even_when_its_url_is_given_as_endpoint(monkeypatch, tmp_path):
    # Review F4: TAILOR_ENDPOINT set to the embedded store's own URL switched the role check off.
    store = tmp_path / "home" / "store"
    store.mkdir(parents=True)
    ids = {
        "identities": [{"name": "trainer", "credentials": [{"accessKey": "T-AK", "secretKey": "T-SK"}], "actions": []}]
    }
    (store / "identities.json").write_text(json.dumps(ids))
    (store / "identities.json").chmod(0o600)  # it holds secret keys: an open one is refused
    monkeypatch.setenv("TAILOR_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TAILOR_ENDPOINT", "http://127.0.0.1:18633")
    monkeypatch.setenv("TAILOR_ACCESS_KEY", "T-AK")
    monkeypatch.setenv("TAILOR_SECRET_KEY", "T-SK")
    monkeypatch.setenv("TAILOR_ROLE", "approver")
    with pytest.raises(ConfigError, match="it belongs to the 'trainer' identity"):
        load_settings().store()
