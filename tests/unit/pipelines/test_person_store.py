"""A person's store settings: a refusal names where that person's keys came from (their credentials
file, or the console account they signed in with), never the server's own credentials file."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.settings import Settings
from registry.errors import ConfigError
from registry.people import Credentials, write_credentials
from registry.signing import new_private_key

CAROL = Credentials(
    name="carol",
    role="approver",
    kind="person",
    access_key="AK",
    secret_key="secret-key-of-carol",
    signing_key=new_private_key(),
    trust_root="t" * 64,
    bucket="carols-bucket",
)


@pytest.fixture
def server_file(tmp_path) -> Path:
    """The console server's own credentials file (an admin's), configured where the console runs."""
    path = tmp_path / "server-admin.json"
    write_credentials(path, Credentials(**{**CAROL.__dict__, "name": "root", "role": "admin", "bucket": "tailor"}))
    return path


def test_a_console_persons_other_bucket_is_worded_with_their_account(server_file):
    settings = Settings(credentials_file=server_file, bucket="tailor")
    with pytest.raises(ConfigError) as err:
        settings.store(person=CAROL)
    assert "bucket: carol's console account is for bucket 'carols-bucket', not 'tailor'" in str(err.value)
    assert str(server_file) not in str(err.value)


def test_a_console_persons_other_actor_is_worded_with_their_account(server_file):
    settings = Settings(credentials_file=server_file, bucket="carols-bucket", actor="root")
    with pytest.raises(ConfigError) as err:
        settings.store(person=CAROL)
    assert "TAILOR_ACTOR is 'root' but carol's console account belongs to 'carol'" in str(err.value)
    assert str(server_file) not in str(err.value)


def test_a_configured_credentials_file_is_still_named_in_its_own_refusals(tmp_path):
    own = tmp_path / "carol.json"
    write_credentials(own, CAROL)
    with pytest.raises(ConfigError) as err:
        Settings(credentials_file=own, bucket="tailor").store()
    assert f"bucket: {own} is for bucket 'carols-bucket', not 'tailor'" in str(err.value)
    with pytest.raises(ConfigError) as err:
        Settings(credentials_file=own, bucket="carols-bucket", actor="dave").store()
    assert f"TAILOR_ACTOR is 'dave' but {own} belongs to 'carol'" in str(err.value)


def test_a_console_person_in_the_servers_bucket_gets_their_own_keys_and_name(server_file):
    acting = Settings(credentials_file=server_file, bucket="carols-bucket").store(person=CAROL)
    assert (acting.actor, acting.role, acting.access_key) == ("carol", "approver", "AK")
