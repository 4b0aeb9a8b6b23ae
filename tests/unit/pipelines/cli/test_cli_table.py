"""List commands print a table for people: headings, a cell per value, plain text (no rich markup, no wrapping
in a pipe)."""

from pipelines.cli.table import table


def test_a_table_has_headings_and_one_line_per_row_with_empty_cells_as_dashes():
    lines = table(("version", "gate", "aliases"), [("v1", "passed", "production"), ("v2", None, None)]).splitlines()
    assert lines[0].split() == ["version", "gate", "aliases"]
    assert [line.split() for line in lines[2:]] == [["v1", "passed", "production"], ["v2", "-", "-"]]


def test_cells_are_text_not_markup_and_long_cells_are_not_wrapped_in_a_pipe():
    reason = "[bold]not markup[/bold] " + "x" * 300
    lines = table(("who", "reason"), [("bob", reason)]).splitlines()
    assert len(lines) == 3 and lines[2].endswith(reason)
