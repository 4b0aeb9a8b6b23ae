"""read_batch on real good and bad files: each refusal names the problem, and no file is touched."""

from __future__ import annotations

import datetime
import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest

from pipelines.batches.read import (
    BatchTooLargeError,
    BinaryFileError,
    EmptyBatchError,
    EncodingError,
    MalformedBatchError,
    MissingColumnError,
    NotAFileError,
    UnsupportedFormatError,
    read_batch,
)
from pipelines.policy import DataPolicy
from registry.errors import NotFoundError, TailorError
from tests.conftest import REPO

BATCH_LIMIT = DataPolicy().max_file_bytes  # the shipped policy's data.max_file_mb

SAMPLE = REPO / "data" / "sample" / "train.csv"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _refused(path: Path, error: type[TailorError], *fragments: str, **kwargs) -> None:
    """read_batch raises ``error`` naming every fragment, and the file is byte-for-byte unchanged."""
    before = _digest(path) if path.is_file() else None
    with pytest.raises(error) as caught:
        read_batch(path, **{"max_bytes": BATCH_LIMIT, **kwargs})
    for fragment in fragments:
        assert fragment in str(caught.value)
    if before is not None:
        assert _digest(path) == before


def test_the_sample_batch_reads_with_ids_groups_and_labels_in_file_order():
    batch = read_batch(SAMPLE, max_bytes=BATCH_LIMIT)
    assert len(batch) == 112
    assert batch.ids[0] == "t0058"
    assert batch.labels[0] == "login_problem"
    assert batch.groups is not None and batch.groups[0] == "chat"
    assert batch.source == str(SAMPLE)


def test_ids_are_row_numbers_when_the_file_has_no_id_column(tmp_path):
    path = tmp_path / "b.csv"
    path.write_text("text,label\nhello there,a\nbye now,b\n")
    batch = read_batch(path, max_bytes=BATCH_LIMIT)
    assert batch.ids == ["1", "2"]
    assert batch.groups is None


def test_a_path_that_does_not_exist_is_not_found(tmp_path):
    _refused(tmp_path / "missing.csv", NotFoundError, "does not exist")


def test_a_directory_is_refused_as_not_a_file(tmp_path):
    folder = tmp_path / "batch.csv"
    folder.mkdir()
    (folder / "inside.csv").write_text("text,label\nx,y\n")
    _refused(folder, NotAFileError, "is a directory")
    assert (folder / "inside.csv").read_text(encoding="utf-8") == "text,label\nx,y\n"


def test_an_unsupported_extension_names_the_supported_ones(tmp_path):
    path = tmp_path / "batch.xlsx"
    path.write_text("text,label\nx,y\n")
    _refused(path, UnsupportedFormatError, "unsupported extension '.xlsx'", ".csv", ".jsonl", ".parquet")


def test_a_file_over_the_size_limit_is_refused_before_it_is_opened(tmp_path, monkeypatch):
    path = tmp_path / "big.csv"
    with path.open("wb") as handle:  # sparse: 2 MB on paper, nothing to read
        handle.truncate(2_000_000)

    def no_open(*args, **kwargs):
        raise AssertionError("the file was opened although its size alone refuses it")

    monkeypatch.setattr(Path, "open", no_open)
    monkeypatch.setattr(Path, "read_bytes", no_open)
    with pytest.raises(BatchTooLargeError, match="2,000,000 bytes, over the limit of 1,000,000"):
        read_batch(path, max_bytes=1_000_000)
    monkeypatch.undo()
    assert path.stat().st_size == 2_000_000


def test_an_empty_file_is_refused(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    _refused(path, EmptyBatchError, "is empty (0 bytes)")


def test_a_header_without_rows_is_refused(tmp_path):
    path = tmp_path / "header.csv"
    path.write_text("text,label,group\n")
    _refused(path, EmptyBatchError, "has a header (text, label, group) but no data rows")


def test_a_semicolon_csv_is_refused_naming_the_wrong_delimiter(tmp_path):
    path = tmp_path / "semi.csv"
    path.write_text("text;label\nmy card is gone;card_lost\n")
    _refused(path, MissingColumnError, "lacks required column(s) text, label", "delimiter looks wrong", "';'")


def test_a_missing_label_column_is_named(tmp_path):
    path = tmp_path / "nolabel.csv"
    path.write_text("id,text,group\n1,my card is gone,chat\n")
    _refused(path, MissingColumnError, "lacks required column(s) label", "'id', 'text', 'group'")


def test_a_missing_text_column_in_jsonl_is_named(tmp_path):
    path = tmp_path / "b.jsonl"
    path.write_text('{"message": "hi", "label": "a"}\n')
    _refused(path, MissingColumnError, "lacks required column(s) text", "'message', 'label'")


def test_a_binary_file_with_a_csv_name_is_refused_as_binary(tmp_path):
    path = tmp_path / "photo.csv"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    _refused(path, BinaryFileError, "looks binary")


def test_a_gzip_file_named_csv_is_refused_as_binary(tmp_path):
    import gzip

    path = tmp_path / "batch.csv"
    path.write_bytes(gzip.compress(b"text,label\n" + b"some words here,a\n" * 200))
    _refused(path, BinaryFileError, "looks binary")


def test_non_utf8_bytes_are_refused_naming_byte_offset_and_line(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("text,label\nfine row,a\ncaf\u00e9 is closed,b\n".encode("latin-1"))
    offset = len(b"text,label\nfine row,a\ncaf")
    _refused(path, EncodingError, "not valid UTF-8", f"byte 0xe9 at offset {offset}", "(line 3)")


def test_a_utf16_file_is_refused_asking_for_utf8(tmp_path):
    path = tmp_path / "utf16.csv"
    path.write_bytes("text,label\nhello,a\n".encode("utf-16"))
    _refused(path, EncodingError, "UTF-16")


def test_a_utf8_bom_is_accepted_transparently(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes("text,label\nhello there,a\n".encode("utf-8-sig"))
    batch = read_batch(path, max_bytes=BATCH_LIMIT)
    assert batch.texts == ["hello there"]
    assert batch.labels == ["a"]


def test_labels_stay_strings_so_1_and_01_differ_and_words_mix_with_numbers(tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_text("text,label\nfirst text,1\nsecond text,01\nthird text,card_lost\nfourth,NA\n")
    assert read_batch(path, max_bytes=BATCH_LIMIT).labels == ["1", "01", "card_lost", "NA"]


def test_jsonl_numbers_and_nulls_become_strings_and_missing(tmp_path):
    path = tmp_path / "b.jsonl"
    rows = [{"text": "a b", "label": 1}, {"text": "c d", "label": "01"}, {"text": "e f", "label": None}, {"text": "g"}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    batch = read_batch(path, max_bytes=BATCH_LIMIT)
    assert batch.labels == ["1", "01", "", ""]
    assert batch.ids == ["1", "2", "3", "4"]


def test_a_lone_surrogate_escape_in_jsonl_is_refused_naming_line_and_field(tmp_path):
    path = tmp_path / "b.jsonl"
    # json.dumps writes the lone surrogate as the escape \ud800: valid JSON, but no valid text.
    path.write_text(
        json.dumps({"text": "fine", "label": "a"}) + "\n" + json.dumps({"text": "bad \ud800", "label": "b"}) + "\n"
    )
    _refused(path, EncodingError, "line 2: 'text' holds an unpaired UTF-16 surrogate at character 4")


def test_an_invalid_jsonl_line_is_named(tmp_path):
    path = tmp_path / "b.jsonl"
    path.write_text('{"text": "a", "label": "x"}\n{"text": "b", label: y}\n')
    _refused(path, MalformedBatchError, "line 2 is not valid JSON")


@pytest.mark.parametrize(
    "line, message",
    [
        (
            '{"text": {"body": "my card is gone"}, "label": "card_lost"}',
            "line 2: 'text' is a JSON object, expected a string",
        ),
        ('{"text": "my card is gone", "label": ["card_lost"]}', "line 2: 'label' is a JSON array, expected a string"),
        ('{"text": "my card is gone", "label": "card_lost", "text": "refund"}', "line 2 names 'text' more than once"),
    ],
)
def test_a_jsonl_object_or_array_in_place_of_a_text_or_label_or_a_repeated_key_is_refused(tmp_path, line, message):
    path = tmp_path / "b.jsonl"
    path.write_text('{"text": "fine", "label": "x"}\n' + line + "\n")
    _refused(path, MalformedBatchError, message)


def test_a_parquet_column_of_lists_or_bytes_is_refused_and_dates_read_as_written(tmp_path):
    nested = tmp_path / "nested.parquet"
    pd.DataFrame({"text": [["my", "card"], ["a", "refund"]], "label": ["x", "y"]}).to_parquet(nested)
    _refused(nested, MalformedBatchError, "column 'text' holds list<element: string> values")
    raw = tmp_path / "raw.parquet"
    pd.DataFrame({"text": [b"my card", b"a refund"], "label": ["x", "y"]}).to_parquet(raw)
    _refused(raw, MalformedBatchError, "column 'text' holds binary values")
    dated = tmp_path / "dated.parquet"
    pd.DataFrame({"text": ["my card", "a refund"], "label": [datetime.date(2026, 1, 1), None]}).to_parquet(dated)
    assert read_batch(dated, max_bytes=BATCH_LIMIT).labels == ["2026-01-01", ""]


@pytest.mark.parametrize(
    "content, message",
    [
        (
            "text,label\nmy card, the blue one,card_lost\nrefund please,refund\n",
            "the first data row has more fields than the header; quote texts that hold commas",
        ),
        (
            "text,label\nrefund please,refund\nmy card, the blue one,card_lost\n",
            "Expected 2 fields in line 3, saw 3; quote texts that hold commas",
        ),
        ("text,label,text\nmy card,card_lost,gone\n", "names column(s) 'text' more than once in its header"),
    ],
    ids=["first row too long", "later row too long", "column named twice"],
)
def test_a_csv_whose_rows_do_not_fit_its_header_is_refused(tmp_path, content, message):
    path = tmp_path / "b.csv"
    path.write_text(content)
    _refused(path, MalformedBatchError, message)


def test_nan_labels_in_csv_and_parquet_read_as_missing(tmp_path):
    csv = tmp_path / "nan.csv"
    csv.write_text("text,label\nhello there,\nbye now,a\n")
    assert read_batch(csv, max_bytes=BATCH_LIMIT).labels == ["", "a"]
    parquet = tmp_path / "nan.parquet"
    pd.DataFrame({"text": ["x y", "z w"], "label": [float("nan"), 2.0], "group": ["g", None]}).to_parquet(parquet)
    batch = read_batch(parquet, max_bytes=BATCH_LIMIT)
    assert batch.labels == ["", "2.0"]
    assert batch.groups == ["g", ""]


def test_a_broken_parquet_file_is_refused(tmp_path):
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"PAR1" + b"not really parquet" * 10)
    _refused(path, MalformedBatchError, "not a valid Parquet file")


def test_a_parquet_file_naming_a_column_twice_is_refused_as_a_csv_is(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "dup.parquet"
    pq.write_table(pa.table([["my card"], ["card_lost"], ["refund"]], names=["text", "label", "label"]), path)
    with pytest.raises(MalformedBatchError) as refused:
        read_batch(path, max_bytes=BATCH_LIMIT)
    assert str(refused.value) == f"batch file {path} names column(s) 'label' more than once in its header"


def test_ten_thousand_duplicate_rows_are_read_all(tmp_path):
    path = tmp_path / "dups.csv"
    path.write_text("text,label\n" + "the same text,a\n" * 10_000)
    batch = read_batch(path, max_bytes=BATCH_LIMIT)
    assert len(batch) == 10_000
    assert set(batch.texts) == {"the same text"}


def test_a_one_megabyte_text_cell_is_read_intact(tmp_path):
    path = tmp_path / "huge_cell.csv"
    big = "word " * 200_000
    path.write_text(f'text,label\n"{big}",a\nshort one,b\n')
    batch = read_batch(path, max_bytes=BATCH_LIMIT)
    assert batch.texts[0] == big
    assert len(batch.texts[0]) == 1_000_000


def test_a_csv_with_old_mac_line_endings_reads_like_one_with_newlines(tmp_path):
    path = tmp_path / "cr.csv"
    path.write_bytes(b"text,label\rmy card is gone,card_lost\rwhere is my parcel,delivery_delay\r")
    batch = read_batch(path, max_bytes=BATCH_LIMIT)
    assert (batch.texts, batch.labels) == (["my card is gone", "where is my parcel"], ["card_lost", "delivery_delay"])


def test_a_jsonl_text_may_hold_a_raw_line_separator(tmp_path):
    path = tmp_path / "u2028.jsonl"
    rows = [{"text": "furni\u2028ture late", "label": "delivery_delay"}, {"text": "x\u0085y", "label": "card_lost"}]
    path.write_text("\r\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    batch = read_batch(path, max_bytes=BATCH_LIMIT)
    assert batch.texts == ["furni\u2028ture late", "x\u0085y"] and batch.ids == ["1", "2"]


@pytest.mark.parametrize("encoding", ["utf-16", "UTF16", "utf-16-le", "utf_32"])
def test_a_utf16_or_utf32_encoding_is_refused_up_front_asking_for_utf8(tmp_path, encoding):
    from registry.errors import ConfigError

    path = tmp_path / "wide.csv"
    path.write_bytes("text,label\nhello,a\n".encode("utf-16"))
    _refused(
        path,
        ConfigError,
        f"--encoding {encoding!r}: UTF-16 and UTF-32 files are not read",
        "as UTF-8",
        encoding=encoding,
    )


def test_a_utf8_file_read_with_another_encoding_is_told_to_drop_it(tmp_path):
    path = tmp_path / "ja.csv"
    path.write_bytes("text,label\n請求が二重です,a\n".encode("utf-8"))
    _refused(path, EncodingError, "is not valid euc_jp", "this file is UTF-8: drop --encoding", encoding="euc_jp")
    path.write_bytes("text,label\n請求が二重です,a\n".encode("cp932"))
    _refused(path, EncodingError, "check --encoding", encoding="euc_jp")
