"""Long steps show progress to a person at a terminal, and never into --json output or a log."""

from __future__ import annotations

import sys

import pytest

from pipelines.cli.main import run
from pipelines.evaluation.checks.suite import _guarded
from pipelines.records import CheckResult
from serving import progress


@pytest.fixture(autouse=True)
def quiet_after():
    yield
    progress.show(False)


def test_nothing_shows_unless_turned_on(capsys):
    progress.step("check: quality")
    with progress.bar(3, "embedding") as shown:
        shown.update(3)
    assert capsys.readouterr().err == ""


def test_each_check_and_each_embedding_says_so_when_shown(capsys):
    progress.show(True)
    result = _guarded("bias", lambda: CheckResult.failed("bias", "no groups"))
    with progress.bar(3, "embedding") as shown:
        shown.update(3)
    err = capsys.readouterr().err
    assert result.name == "bias" and err.startswith("check: bias\n") and "embedding" in err


@pytest.mark.parametrize("args, shown", [(["promote", "--help"], True), (["promote", "--help", "--json"], False)])
def test_the_cli_shows_progress_on_a_terminal_unless_json(monkeypatch, capsys, args, shown):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    with pytest.raises(SystemExit):
        run(args)
    assert progress._shown is shown
