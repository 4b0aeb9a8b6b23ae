"""`tailor retrain` against a store that does not answer stops in one line before any flow: it reaches for the
network, so it is not a unit test."""

from tests.unit.pipelines.cli.test_retrain_cli import _retrain_before_any_flow


def test_a_store_that_does_not_answer_is_one_line_before_the_flow_starts(monkeypatch, capsys):
    code, err = _retrain_before_any_flow(monkeypatch, capsys, "trainer")
    assert code == 1
    assert err.startswith("error: cannot reach the object store") and err.count("\n") == 1, err
