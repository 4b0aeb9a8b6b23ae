"""Every bad batch from the issue, through validate_and_route as `tailor validate` runs it (no noise
audit, no DVC): the report names the specific problem, and the batch is quarantined byte-for-byte
with its report beside it — nothing is lost."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from pipelines.batches.read import NotAFileError
from pipelines.batches.route import validate_and_route
from pipelines.cli.main import run
from pipelines.policy import load_policy
from pipelines.records import ValidationReport
from pipelines.settings import load_settings
from registry.errors import NotFoundError
from tests.conftest import REPO

LABELS = REPO / "data" / "sample" / "labels.txt"
HOLDOUT = REPO / "data" / "sample" / "holdout.csv"
CLASSES = ["card_lost", "refund_request", "login_problem", "delivery_delay"]


def _rows(per_class: int = 10) -> list[tuple[str, str]]:
    return [
        (f"customer message number {i} about {label.replace('_', ' ')}", label)
        for label in CLASSES
        for i in range(per_class)
    ]


def _csv(rows: list[tuple[str, str]]) -> bytes:
    lines = ["text,label"] + [f'"{text}",{label}' for text, label in rows]
    return ("\n".join(lines) + "\n").encode()


def _route(tmp_path: Path, name: str, content: bytes, **kwargs) -> tuple[ValidationReport, Path, str]:
    batch = tmp_path / "data" / "incoming" / name
    batch.parent.mkdir(parents=True, exist_ok=True)
    batch.write_bytes(content)
    digest = hashlib.sha256(content).hexdigest()
    kwargs.setdefault("labels_file", LABELS)
    kwargs.setdefault("data_dir", tmp_path / "data")
    report = validate_and_route(batch, load_policy(), track=False, **kwargs)
    return report, batch, digest


def _quarantined(report: ValidationReport, batch: Path, digest: str) -> Path:
    """The batch left its place, sits whole in data/quarantine/<time>-<name>/, with its report."""
    assert not report.accepted
    assert not batch.exists()
    moved = Path(report.quarantined_to)
    assert moved.name == batch.name
    assert moved.parent.parent.name == "quarantine"
    assert moved.parent.name.endswith(f"-{batch.name}")
    assert hashlib.sha256(moved.read_bytes()).hexdigest() == digest
    on_disk = ValidationReport.read_json(moved.parent / "validation.json")
    assert on_disk.quarantined_to == str(moved)
    assert "REJECTED" in (moved.parent / "validation.md").read_text(encoding="utf-8")
    return moved


def _failure(report: ValidationReport, name: str):
    matches = [f for f in report.failures if f.name == name]
    assert matches, f"no failure named {name!r} in {[f.name for f in report.failures]}"
    return matches[0]


def test_a_clean_batch_is_accepted_with_its_md5_and_stays_in_place(tmp_path):
    content = _csv(_rows())
    report, batch, digest = _route(tmp_path, "clean.csv", content, holdout=HOLDOUT)
    assert report.accepted, report.failures
    assert batch.read_bytes() == content
    assert report.data_version == hashlib.md5(content).hexdigest()
    assert report.quarantined_to is None
    assert Path(report.report_json).parent.parent == tmp_path / "data" / "reports"
    assert "labels in the allowed set" in report.checked and "no near-copy of a holdout text" in report.checked


UNREADABLE = {
    "an empty file": ("empty.csv", b"", "is empty (0 bytes)"),
    "a header only": ("header.csv", b"text,label\n", "has a header (text, label) but no data rows"),
    "a semicolon file": ("semi.csv", b"text;label\nmy card is gone;card_lost\n", "delimiter looks wrong"),
    "a missing label column": (
        "nolabel.csv",
        b"text,category\nmy card is gone,card_lost\n",
        "lacks required column(s) label",
    ),
    "a binary file": ("photo.csv", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8, "looks binary"),
    "non-UTF-8 bytes": (
        "cp1252.csv",
        "text,label\ncaf\u00e9 order is late,delivery_delay\n".encode("cp1252"),
        "byte 0xe9 at offset 14 (line 2)",
    ),
}


@pytest.mark.parametrize("case", list(UNREADABLE))
def test_an_unreadable_file_is_quarantined_naming_its_problem(tmp_path, case):
    name, content, message = UNREADABLE[case]
    report, batch, digest = _route(tmp_path, name, content)
    _quarantined(report, batch, digest)
    assert report.failures == [_failure(report, "readable batch file")]
    assert message in report.failures[0].examples[0]


def test_a_utf8_bom_file_is_accepted(tmp_path):
    content = b"\xef\xbb\xbf" + _csv(_rows())
    report, batch, _ = _route(tmp_path, "bom.csv", content)
    assert report.accepted, report.failures
    assert batch.read_bytes() == content


def test_one_class_only_is_quarantined(tmp_path):
    rows = [(text, "card_lost") for text, _ in _rows()]
    report, batch, digest = _route(tmp_path, "oneclass.csv", _csv(rows))
    _quarantined(report, batch, digest)
    assert _failure(report, "at least two classes").examples == ["observed 1"]
    assert "login_problem: 0 < 8" in _failure(report, "enough examples per class").examples


def test_unknown_labels_are_quarantined_with_their_ids(tmp_path):
    rows = _rows() + [("please help me with my crypto wallet", "crypto"), ("where is my parcel now", "delivery_delayy")]
    report, batch, digest = _route(tmp_path, "unknown.csv", _csv(rows))
    _quarantined(report, batch, digest)
    failure = _failure(report, "labels in the allowed set")
    assert failure.count == 2
    assert failure.examples == ["id 41: label='crypto'", "id 42: label='delivery_delayy'"]


def test_repeated_ids_are_quarantined_naming_them(tmp_path):
    lines = ["id,text,label"] + [f'{"dup" if i < 3 else i},"{text}",{label}' for i, (text, label) in enumerate(_rows())]
    report, batch, digest = _route(tmp_path, "ids.csv", ("\n".join(lines) + "\n").encode())
    _quarantined(report, batch, digest)
    failure = _failure(report, "ids are unique")
    assert (failure.count, failure.examples) == (3, ["id dup"])


def test_ten_thousand_duplicate_rows_are_quarantined(tmp_path):
    rows = _rows() + [("the very same text", "card_lost")] * 10_000
    report, batch, digest = _route(tmp_path, "dups.csv", _csv(rows))
    _quarantined(report, batch, digest)
    assert _failure(report, "no duplicate rows").count == 10_000
    assert "ratio 1001.0 > 10.0" in _failure(report, "classes balanced enough").examples[0]


def test_a_one_megabyte_text_cell_is_quarantined_with_a_short_example(tmp_path):
    rows = _rows() + [("word " * 200_000, "card_lost")]
    report, batch, digest = _route(tmp_path, "hugecell.csv", _csv(rows))
    _quarantined(report, batch, digest)
    failure = _failure(report, "text length within bounds")
    assert failure.count == 1
    assert failure.examples[0].startswith("id 41: text='word word")
    assert "(1,000,002 chars)" in failure.examples[0]
    assert len(failure.examples[0]) < 200


def test_nan_labels_are_quarantined_as_missing_labels(tmp_path):
    rows = _rows() + [("my card got swallowed by the machine", "NaN"), ("refund for the broken kettle", "")]
    report, batch, digest = _route(tmp_path, "nan.csv", _csv(rows))
    _quarantined(report, batch, digest)
    failure = _failure(report, "every row has a label")
    assert failure.count == 2
    assert [e.split(":")[0] for e in failure.examples] == ["id 41", "id 42"]


def test_numeric_and_string_labels_mixed_are_quarantined_without_a_crash(tmp_path):
    path = tmp_path / "mixed.jsonl"
    rows = [{"text": t, "label": label} for t, label in _rows()] + [{"text": "code three complaint", "label": 3}]
    report, batch, digest = _route(tmp_path, "mixed.jsonl", "\n".join(json.dumps(r) for r in rows).encode())
    assert not path.exists()
    _quarantined(report, batch, digest)
    failure = _failure(report, "labels not mixed numbers and words")
    assert failure.count == 1
    assert failure.examples[0] == "numeric labels: 3"


@pytest.mark.parametrize(
    ("extra", "name", "count", "examples"),
    [
        (
            [("my card is nowhere to be found", "card_lost ")],
            "labels without surrounding spaces",
            1,
            ["id 41: label='card_lost '"],
        ),
        (
            [(f"lost card report {i}", "Card-Lost") for i in range(8)],
            "one spelling per label",
            18,
            ["'Card-Lost' (8 rows), 'card_lost' (10 rows)"],
        ),
    ],
    ids=["stray space", "two spellings"],
)
def test_a_label_written_two_ways_is_named(tmp_path, extra, name, count, examples):
    report, batch, digest = _route(tmp_path, "labels.csv", _csv(_rows() + extra))
    _quarantined(report, batch, digest)
    failure = _failure(report, name)
    assert (failure.count, failure.examples) == (count, examples)


def test_labels_without_letters_or_digits_are_not_taken_for_one_spelling(tmp_path):
    rows = [(f"great service number {i}", "👍") for i in range(10)] + [
        (f"awful service number {i}", "👎") for i in range(10)
    ]
    report, _, _ = _route(tmp_path, "emoji.csv", _csv(rows), labels_file=None)
    assert "one spelling per label" not in [f.name for f in report.failures]


def test_conflicting_duplicates_are_named_with_both_labels(tmp_path):
    rows = _rows() + [("my card is gone", "card_lost"), ("my card is gone", "refund_request")]
    report, batch, digest = _route(tmp_path, "conflict.csv", _csv(rows))
    _quarantined(report, batch, digest)
    failure = _failure(report, "no conflicting duplicates")
    assert failure.count == 2
    assert failure.examples == ["card_lost (id 41); refund_request (id 42): 'my card is gone'"]


def test_holdout_leaks_are_found_exactly_and_after_normalising(tmp_path):
    rows = _rows() + [
        ("Tracking says delivered but there's nothing at my door", "delivery_delay"),
        ("TRACKING says delivered, but there’s nothing at my door!!", "delivery_delay"),
    ]
    report, batch, digest = _route(tmp_path, "leak.csv", _csv(rows), holdout=HOLDOUT)
    _quarantined(report, batch, digest)
    assert _failure(report, "no text in the holdout").count == 1
    assert _failure(report, "no near-copy of a holdout text").count == 2


def test_texts_without_letters_or_digits_are_not_near_copies_of_each_other(tmp_path):
    holdout = tmp_path / "holdout.csv"
    holdout.write_bytes(HOLDOUT.read_bytes() + b"h999,?!?!,card_lost,chat\r\n")
    report, _, _ = _route(tmp_path, "marks.csv", _csv(_rows() + [("!!!!", "card_lost")]), holdout=holdout)
    assert "no near-copy of a holdout text" not in [f.name for f in report.failures]


@pytest.mark.parametrize("where", ["data/incoming", "Downloads"])
def test_a_file_over_the_size_limit_is_refused_without_being_read(tmp_path, monkeypatch, where):
    policy = load_policy()
    limit = policy.data.max_file_bytes
    batch = tmp_path / where / "big.csv"
    batch.parent.mkdir(parents=True)
    with batch.open("wb") as handle:  # sparse: over the limit on paper, nothing to read
        handle.truncate(limit + 1)

    real_open = Path.open

    def guarded_open(self, *args, **kwargs):
        if self.name == batch.name:
            raise AssertionError("the oversized batch was opened")
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", guarded_open)
    report = validate_and_route(batch, policy, data_dir=tmp_path / "data", track=False)
    monkeypatch.undo()
    assert not report.accepted
    assert f"over the limit of {limit:,} bytes" in _failure(report, "readable batch file").examples[0]
    if where == "data/incoming":  # handed in: moved whole
        assert not batch.exists() and Path(report.quarantined_to).stat().st_size == limit + 1
    else:  # the user's file: neither copied (it would fill the disk twice) nor moved
        assert batch.stat().st_size == limit + 1 and report.quarantined_to is None
        assert "left in place, not copied" in report.notes[-1]


def test_a_path_that_does_not_exist_is_an_error_and_nothing_is_created(tmp_path):
    with pytest.raises(NotFoundError, match="does not exist"):
        validate_and_route(tmp_path / "nope.csv", load_policy(), data_dir=tmp_path / "data", track=False)
    assert not (tmp_path / "data").exists()


def test_a_directory_is_an_error_and_stays_untouched(tmp_path):
    folder = tmp_path / "incoming.csv"
    folder.mkdir()
    (folder / "a.csv").write_bytes(_csv(_rows()))
    with pytest.raises(NotAFileError, match="is a directory"):
        validate_and_route(folder, load_policy(), data_dir=tmp_path / "data", track=False)
    assert (folder / "a.csv").read_bytes() == _csv(_rows())
    assert not (tmp_path / "data").exists()


def test_a_batch_noisier_than_the_policy_allows_is_quarantined_with_its_review_file(tmp_path, monkeypatch):
    from pipelines.batches import noise_audit
    from pipelines.batches.noise_audit import SuspectedMislabel
    from pipelines.records import NoiseAudit

    suspect = SuspectedMislabel(
        id="3",
        text="customer message number 2 about card lost",
        given_label="card_lost",
        suggested_label="refund_request",
        confidence=0.9,
        given_label_probability=0.05,
    )

    base = load_settings().base_model_dir

    def noisy_audit(texts, labels, ids, *, model_dir, max_rate):
        assert model_dir == base
        return NoiseAudit(estimated_rate=0.45, flagged=1, max_rate=max_rate, audited_rows=len(texts), folds=5), [
            suspect
        ]

    monkeypatch.setattr(noise_audit, "audit_label_noise", noisy_audit)
    report, batch, digest = _route(tmp_path, "noisy.csv", _csv(_rows()), base_model=base)
    moved = _quarantined(report, batch, digest)
    failure = _failure(report, "label noise under the limit")
    assert failure.examples[0] == "estimated noise rate 0.450 > limit 0.3"
    assert failure.examples[1].startswith("id 3: card_lost → refund_request")
    review = (moved.parent / "noise_review.csv").read_text(encoding="utf-8-sig").splitlines()
    assert review[0] == "id,text,given_label,suggested_label,confidence,given_label_probability"
    assert review[1].startswith("3,customer message number 2 about card lost,card_lost,refund_request,0.9")


def test_validate_names_a_folder_given_as_batch_before_asking_for_the_store(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TAILOR_HOME", str(tmp_path / "no-store-here"))
    (tmp_path / "batches").mkdir()
    with pytest.raises(SystemExit) as exit_info:
        run(["validate", str(tmp_path / "batches")])
    code, err = exit_info.value.code, capsys.readouterr().err
    assert code == 1
    assert err == f"error: batch file {tmp_path / 'batches'} is a folder, not a file\n"


def test_two_accepted_batches_of_one_name_in_the_same_second_get_their_own_reports(tmp_path, monkeypatch):
    from datetime import datetime, timezone

    from pipelines.batches import route

    class Frozen(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime(2026, 11, 29, 8, 0, 0, tzinfo=timezone.utc)

    monkeypatch.setattr(route, "datetime", Frozen)
    first, _, _ = _route(tmp_path / "a", "batch.csv", _csv(_rows()), data_dir=tmp_path / "data")
    second, _, _ = _route(tmp_path / "b", "batch.csv", _csv(_rows(11)), data_dir=tmp_path / "data")
    assert first.accepted and second.accepted
    assert first.report_json != second.report_json
    assert ValidationReport.read_json(Path(first.report_json)).data_version == first.data_version
    assert ValidationReport.read_json(Path(second.report_json)).data_version == second.data_version


@pytest.mark.parametrize("content", [_csv(_rows()), _csv(_rows())[:80]], ids=["accepted", "rejected"])
def test_a_very_long_batch_name_gets_a_short_recognisable_folder_with_its_report(tmp_path, content):
    name = "x" * 240 + ".csv"
    report, batch, _ = _route(tmp_path, name, content)
    folder = Path(report.report_json).parent
    assert len(folder.name.encode()) < 255 and folder.name.endswith(".csv") and "-" + "x" * 64 + "-" in folder.name
    assert ValidationReport.read_json(folder / "validation.json").batch == str(batch)
    if content != _csv(_rows()):
        assert Path(report.quarantined_to) == folder / name


def test_long_batch_names_that_start_alike_get_different_folders():
    from pipelines.batches.folders import short_name

    assert short_name("x" * 200 + "a.csv") != short_name("x" * 200 + "b.csv")
    assert short_name("b.csv") == "b.csv"


def test_an_unreadable_holdout_is_named_as_the_holdout_and_the_batch_stays(tmp_path):
    from pipelines.batches.read import BinaryFileError

    holdout = tmp_path / "holdout.csv"
    holdout.write_bytes(b"\x1f\x8b\x08\x00" + bytes(range(256)) * 4)  # a gzip file named .csv
    with pytest.raises(BinaryFileError, match=f"^--holdout: batch file {holdout} looks binary"):
        _route(tmp_path, "fine.csv", _csv(_rows()), holdout=holdout)
    assert (tmp_path / "data" / "incoming" / "fine.csv").is_file()


JAPANESE = REPO / "data" / "sample_ja" / "train.csv"


def test_a_cp932_holdout_is_told_to_be_converted_not_to_pass_an_encoding_that_names_the_batch(tmp_path):
    from pipelines.batches.read import EncodingError

    holdout = tmp_path / "holdout.csv"
    holdout.write_bytes(JAPANESE.read_text(encoding="utf-8").encode("cp932"))
    with pytest.raises(
        EncodingError, match=r"^--holdout: .* looks like Shift_JIS/CP932 .*; save it again as \"CSV UTF-8\"$"
    ):
        _route(tmp_path, "fine.csv", _csv(_rows()), holdout=holdout, encoding="utf-8")
    holdout.write_bytes(b"text,label\n\xff\xfe\xfa,a\n" * 3)
    with pytest.raises(EncodingError) as raised:
        _route(tmp_path, "fine.csv", _csv(_rows()), holdout=holdout)
    assert str(raised.value).endswith("re-export it as UTF-8") and "--encoding" not in str(raised.value)


@pytest.mark.parametrize(
    ("codec", "named", "fix"),
    [
        ("cp932", "looks like Shift_JIS/CP932", "pass --encoding cp932"),
        ("euc_jp", "looks like EUC-JP", "pass --encoding euc_jp"),
    ],
)
def test_a_japanese_legacy_file_outside_incoming_is_named_copied_and_left_where_it_was(tmp_path, codec, named, fix):
    content = JAPANESE.read_text(encoding="utf-8").encode(codec)  # as Excel / an old Unix export writes it
    batch = tmp_path / "Downloads" / f"{codec}.csv"
    batch.parent.mkdir()
    batch.write_bytes(content)
    report = validate_and_route(batch, load_policy(), data_dir=tmp_path / "data", track=False)
    assert not report.accepted
    message = _failure(report, "readable batch file").examples[0]
    assert named in message and fix in message and "(line 2)" in message
    assert batch.read_bytes() == content  # the user's file is untouched
    copy = Path(report.quarantined_to)
    assert copy.parent.parent == tmp_path / "data" / "quarantine" and copy.read_bytes() == content
    assert f"{batch} stays where it was: it is not in the incoming folder" in report.notes[-1]


@pytest.mark.parametrize("codec", ["cp932", "euc_jp"])
def test_a_japanese_legacy_file_reads_with_its_encoding_named(tmp_path, codec):
    batch = tmp_path / "data" / "incoming" / "ja.csv"
    batch.parent.mkdir(parents=True)
    batch.write_bytes(JAPANESE.read_text(encoding="utf-8").encode(codec))
    report = validate_and_route(
        batch,
        load_policy(),
        data_dir=tmp_path / "data",
        track=False,
        encoding=codec,
        labels_file=REPO / "data" / "sample_ja" / "labels.txt",
    )
    assert "readable batch file" in report.checked and report.rows == 48
    assert "readable batch file" not in [f.name for f in report.failures]
    assert report.encoding == codec and ValidationReport.read_json(Path(report.report_json)).encoding == codec


def test_an_unknown_encoding_name_is_a_config_error_and_nothing_moves(tmp_path):
    from registry.errors import ConfigError

    with pytest.raises(ConfigError, match="'base64' is not a text encoding"):
        _route(tmp_path, "fine.csv", _csv(_rows()), encoding="base64")
    assert (tmp_path / "data" / "incoming" / "fine.csv").is_file()


def test_tracking_without_the_dvc_remote_store_is_refused_before_the_batch_is_read_or_moved(tmp_path):
    # No settings are looked up behind the caller's back: tracking needs the store handed in.
    batch = tmp_path / "incoming" / "batch.csv"
    batch.parent.mkdir()
    batch.write_bytes(_csv(_rows()))
    with pytest.raises(ValueError, match="store settings"):
        validate_and_route(batch, load_policy(), data_dir=tmp_path / "data", incoming=batch.parent)
    assert batch.is_file() and not (tmp_path / "data").exists()
