"""The watch schedule reads its folder in one encoding (`tailor schedule --encoding`): a batch refused
while read in another is judged again, one judged under it is not."""

from __future__ import annotations

from pipelines.usecases.watch import new_batches
from tests.conftest import run_cli

EXCEL = "text,label\nカードを紛失しました,card_lost\n".encode("cp932")


def test_a_batch_rejected_in_another_encoding_is_new_again_and_one_judged_in_this_encoding_is_not(tmp_path):
    (tmp_path / "excel.csv").write_bytes(EXCEL)
    [arrival] = new_batches(tmp_path, [], 0)[0]
    rejected_as_utf8 = arrival.processed("rejected_data")
    registered_as_utf8 = arrival.processed("registered", "v1")

    assert new_batches(tmp_path, [rejected_as_utf8], 0, None) == ([], [])
    assert [a.sha256 for a in new_batches(tmp_path, [rejected_as_utf8], 0, "cp932")[0]] == [arrival.sha256]
    rejected_as_cp932 = rejected_as_utf8.model_copy(update={"encoding": "cp932"})
    assert new_batches(tmp_path, [rejected_as_utf8, rejected_as_cp932], 0, "cp932") == ([], [])
    assert new_batches(tmp_path, [registered_as_utf8], 0, "cp932") == ([], [])  # registered: done whatever it read as


def test_schedule_refuses_an_encoding_python_does_not_know_before_it_needs_a_prefect_server(tmp_path):
    (tmp_path / "h.csv").write_text("text,label\nhi,a\n")
    (tmp_path / "data" / "incoming").mkdir(parents=True)
    done = run_cli(
        "schedule",
        "--name",
        "tickets",
        "--cron",
        "0 * * * *",
        "--holdout",
        "h.csv",
        "--encoding",
        "sjis-excel",
        cwd=tmp_path,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: --encoding 'sjis-excel' is not a text encoding Python knows")
    assert "Prefect server" not in done.stderr
