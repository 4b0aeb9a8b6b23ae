"""The watch schedule reads its folder in one encoding (`tailor schedule --encoding`): a batch refused
while read in another is judged again, one judged under it is not."""

from __future__ import annotations

from pipelines.usecases.watch import new_batches

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
