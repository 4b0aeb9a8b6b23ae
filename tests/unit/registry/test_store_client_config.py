"""What botocore reads besides Tailor's settings (AWS profile, AWS config files, the region) is
refused as a configuration error naming the setting or variable, never a botocore traceback."""

from __future__ import annotations

import boto3
import pytest

from pipelines.cli.main import run
from registry.errors import ConfigError
from registry.settings import StoreSettings
from registry.store import S3ObjectStore

SETTINGS = dict(endpoint="http://127.0.0.1:1", bucket="tailor", access_key="k", secret_key="s")


@pytest.fixture(autouse=True)
def fresh_boto3_session(monkeypatch):
    """boto3's default session reads AWS_* variables and files once: each test gets its own."""
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    for variable in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(variable, raising=False)


@pytest.mark.parametrize("variable", ["AWS_PROFILE", "AWS_DEFAULT_PROFILE"])
def test_an_aws_profile_that_does_not_exist_is_named_with_its_variable(monkeypatch, variable):
    monkeypatch.setenv(variable, "nope")
    with pytest.raises(
        ConfigError, match=f"^{variable}: the AWS profile 'nope' is in no AWS config file; unset {variable}"
    ):
        S3ObjectStore(StoreSettings(**SETTINGS))


@pytest.mark.parametrize("variable", ["AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"])
def test_an_aws_config_file_that_cannot_be_parsed_is_named(monkeypatch, tmp_path, variable):
    (tmp_path / "config").write_text("[default\nregion = eu-west-1\n")
    monkeypatch.setenv(variable, str(tmp_path / "config"))
    with pytest.raises(
        ConfigError,
        match=f"^the AWS config file {tmp_path / 'config'} cannot be parsed; fix it, "
        "or point AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE",
    ):
        S3ObjectStore(StoreSettings(**SETTINGS))


def test_a_region_botocore_refuses_is_named_by_its_setting():
    with pytest.raises(ConfigError, match="^region: 'eu west 1' is not a region name"):
        S3ObjectStore(StoreSettings(**SETTINGS, region="eu west 1"))


def test_the_cli_says_it_in_one_line_with_exit_2(monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)
    for key, value in {
        "TAILOR_ENDPOINT": SETTINGS["endpoint"],
        "TAILOR_ACCESS_KEY": "k",
        "TAILOR_SECRET_KEY": "s",
        "TAILOR_HOME": str(tmp_path / ".tailor"),
        "AWS_PROFILE": "nope",
    }.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SystemExit) as exit_info:
        run(["list", "demo"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert (
        err.startswith("error: AWS_PROFILE: the AWS profile 'nope' is in no AWS config file") and err.count("\n") == 1
    )
