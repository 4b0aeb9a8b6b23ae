"""One argument style for versions: NAME VERSION, NAME@VERSION, NAME:VERSION, and an alias wherever a version
is accepted; a bad form is refused before the store is reached, naming the accepted forms."""

import json

import pytest

from pipelines.cli.main import run
from pipelines.cli.version_ref import FORMS, VersionRef, parse_ref, split_ref
from registry.errors import ConfigError, NotFoundError


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (("tickets", "v3"), VersionRef("tickets", "v3")),
        (("tickets@v3",), VersionRef("tickets", "v3")),
        (("tickets:v3",), VersionRef("tickets", "v3")),
        (("tickets", "production"), VersionRef("tickets", "production")),
        (("tickets@staging",), VersionRef("tickets", "staging")),
        (("my.adapter-2:v12",), VersionRef("my.adapter-2", "v12")),
    ],
)
def test_every_form_names_the_same_reference(words, expected):
    assert parse_ref(*words) == expected


@pytest.mark.parametrize(
    "words",
    [("tickets",), ("tickets", "3"), ("tickets", "latest"), ("tickets@",), ("@v3",), ("tickets@v3", "v4")],
)
def test_a_bad_form_is_refused_naming_the_accepted_forms(words):
    with pytest.raises(ConfigError) as refused:
        parse_ref(*words)
    assert FORMS in str(refused.value)


def test_a_folder_like_value_is_no_reference_and_an_alias_resolves_only_through_the_registry():
    assert split_ref("runs/adapter") is None
    assert VersionRef("t", "v2").resolved(lambda: pytest.fail("a version id needs no registry")) == ("t", "v2")

    class Registry:
        def state(self, name):
            return type("State", (), {"aliases": {"production": "v7"}})()

    assert VersionRef("t", "production").resolved(Registry) == ("t", "v7")
    with pytest.raises(NotFoundError, match="'t' has no staging alias set"):
        VersionRef("t", "staging").resolved(Registry)


@pytest.mark.parametrize(
    "args",
    [
        ["show", "tickets", "latest"],
        ["promote", "tickets@", "--to", "staging", "--reason", "r"],
        ["archive", "tickets", "--reason", "r"],
        ["report", "tickets:v1", "v2", "--out", "x.html"],
        ["judge-load", "tickets@3"],
        ["download", "tickets@newest", "dest"],
        ["audit", "log", "tickets", "--version", "3"],
    ],
)
def test_commands_refuse_a_bad_form_as_json_before_reaching_the_store(args, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TAILOR_ENDPOINT", "http://127.0.0.1:9")  # nothing listens: reaching it would fail otherwise
    with pytest.raises(SystemExit) as exit_info:
        run([*args, "--json"])
    out, err = capsys.readouterr()
    assert exit_info.value.code == ConfigError.exit_code and out == ""
    assert FORMS in json.loads(err)["error"]
    assert not (tmp_path / "dest").exists()


@pytest.mark.parametrize("version", ["banana", "production"])
def test_a_base_models_log_takes_only_its_one_version_and_says_so_before_reaching_the_store(
    version, capsys, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TAILOR_ENDPOINT", "http://127.0.0.1:9")  # nothing listens: reaching it would fail otherwise
    with pytest.raises(SystemExit) as exit_info:
        run(["audit", "log", "base:ja-bert", "--version", version, "--json"])
    out, err = capsys.readouterr()
    assert exit_info.value.code == ConfigError.exit_code and out == ""
    assert "tailor audit log base:ja-bert --version v1" in json.loads(err)["error"]
