"""What people expect of a command line: --version, choices, JSON errors with --json, and a missing extra
named instead of a traceback (completion: tests/integration/pipelines/cli/test_cli_completion.py)."""

from __future__ import annotations

import json
import sys
import tomllib
from importlib.metadata import packages_distributions, version

import pytest

from pipelines.cli.extras import EXTRA_OF_MODULE
from pipelines.cli.main import run
from tests.conftest import REPO


def outcome(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        run(list(args))
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


def test_version_prints_the_installed_version(capsys):
    assert outcome(capsys, "--version") == (0, f"tailor {version('tailor')}\n", "")


@pytest.mark.parametrize(
    "args, env, code, error",
    [
        (
            ["promote", "tickets", "v1", "--to", "prod", "--reason", "r", "--json"],
            {},
            2,
            "Invalid value for '--to': Value error, 'prod' is not one of 'staging', 'production'.",
        ),
        (["show", "--json"], {}, 2, "Missing argument 'name'."),
        (
            ["list", "tickets", "--json"],
            {"TAILOR_BUKET": "x"},
            2,
            "environment variable TAILOR_BUKET is not a setting; did you mean TAILOR_BUCKET?",
        ),
        (
            ["validate", "", "--json"],
            {},
            2,
            "the first argument is empty; give a value (a shell variable that expanded to nothing?)",
        ),
        (["validate", "no-such.csv", "--json", "--no-noise-audit"], {}, 1, "batch file no-such.csv does not exist"),
    ],
)
def test_with_json_an_error_is_one_json_object_on_stderr(capsys, monkeypatch, tmp_path, args, env, code, error):
    monkeypatch.chdir(tmp_path)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    if args[1] == "":  # the empty-argument check names the option or position: here the batch is the first
        args = ["", *args[2:]]
        error = "the first argument is empty; give a value (a shell variable that expanded to nothing?)"
    got, out, err = outcome(capsys, *args)
    assert got == code and out == ""
    assert json.loads(err) == {"error": error, "problems": []}


def test_without_json_errors_stay_one_line_for_people(capsys, monkeypatch):
    monkeypatch.setenv("TAILOR_BUKET", "x")
    assert outcome(capsys, "list", "tickets") == (
        2,
        "",
        "error: environment variable TAILOR_BUKET is not a setting; did you mean TAILOR_BUCKET?\n",
    )


def test_choices_are_shown_and_refused_as_choices(capsys):
    code, _, err = outcome(capsys, "train", "--data", "x.csv", "--out", "o", "--device", "tpu")
    assert code == 2 and "'tpu' is not one of 'auto', 'cpu', 'cuda'" in err
    code, out, _ = outcome(capsys, "promote", "--help")
    assert code == 0 and "staging|production" in out


def test_a_command_whose_extra_is_not_installed_names_the_extra(capsys, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "great_expectations", None)  # importing it now raises ModuleNotFoundError
    monkeypatch.chdir(tmp_path)
    batch = tmp_path / "batch.csv"
    batch.write_text("text,label\n" + "".join(f"message {i},{'ab'[i % 2]}\n" for i in range(20)))
    code, out, err = outcome(capsys, "validate", str(batch), "--no-noise-audit", "--no-track", "--json")
    assert code == 2 and out == ""
    assert json.loads(err)["error"] == (
        "this command needs great_expectations, which the 'train' extra installs: pip install 'tailor[train]'"
    )
    assert batch.exists()


def extra_requirements(extra: str, extras: dict[str, list[str]]) -> set[str]:
    """The distributions an extra names, its own `tailor[...]` references followed."""
    names = set()
    for requirement in extras[extra]:
        name = requirement.split(";")[0].split("[")[0].split(">")[0].split("=")[0].split("<")[0].strip().lower()
        if name == "tailor":
            for inner in requirement.split("[", 1)[1].split("]")[0].split(","):
                names |= extra_requirements(inner.strip(), extras)
        else:
            names.add(name)
    return names


def test_every_module_named_for_an_extra_is_installed_by_that_extra():
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"]
    providers = packages_distributions()
    for module, extra in EXTRA_OF_MODULE.items():
        dists = {d.lower().replace("_", "-") for d in providers.get(module, [])}
        assert dists & extra_requirements(extra, extras), (module, extra, dists)
    core = {
        r.split(";")[0].split("[")[0].split(">")[0].split("=")[0].split("<")[0].strip().lower()
        for r in project["dependencies"]
    }
    assert not core & {m for module in EXTRA_OF_MODULE for m in providers.get(module, [])}, (
        "an extra's module is in the core"
    )


def test_exact_pins_live_in_the_constraints_not_in_the_dependencies():
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    runtime = project["dependencies"] + [
        r for name, reqs in project["optional-dependencies"].items() if name != "bench" for r in reqs
    ]
    assert [r for r in runtime if "==" in r] == []
