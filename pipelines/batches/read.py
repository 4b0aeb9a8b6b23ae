"""Read a labeled batch (CSV, JSONL or Parquet) into a `LabeledBatch`, refusing unreadable files.

Validation, training and evaluation all read data through `read_batch`, so every step sees the same
rows and the same refusals. It only reads: no file is written, moved or cached.

Labels are kept as the strings in the file ("1" and "01" stay distinct); judging them (unknown,
missing, numeric mixed with words) is validation's job, not the reader's.
"""

from __future__ import annotations

import csv
import io
import json
import warnings
from pathlib import Path

from pipelines.batches.text_encoding import codec_name, guess_japanese
from pipelines.records import LabeledBatch
from registry.errors import NotFoundError, RefusedError, first_line
from registry.text import bad_utf8_byte, unpaired_surrogate

REQUIRED_COLUMNS = ("text", "label")
OPTIONAL_COLUMNS = ("group", "id")
CSV_SUFFIXES = (".csv",)
JSONL_SUFFIXES = (".jsonl", ".ndjson")
PARQUET_SUFFIXES = (".parquet", ".pq")
SUPPORTED_SUFFIXES = CSV_SUFFIXES + JSONL_SUFFIXES + PARQUET_SUFFIXES
_OTHER_DELIMITERS = (";", "\t", "|")
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
# Control bytes other than tab/newline/carriage return never occur in exported text; a few percent
# of them in the first block means an archive, image or database file was saved under a text name.
_CONTROL_BYTES = bytes(b for b in range(32) if b not in (9, 10, 13)) + b"\x7f"
_SNIFF_BYTES = 8192
_MAX_CONTROL_SHARE = 0.05


class BatchReadError(RefusedError):
    """A batch file cannot be read as a labeled batch; the message says what is wrong and where."""


class NotAFileError(BatchReadError):
    """The batch path is a directory or another non-regular file."""


class UnsupportedFormatError(BatchReadError):
    """The file extension is not one of CSV, JSONL or Parquet."""


class BatchTooLargeError(BatchReadError):
    """The file is over the size limit; refused from its size alone, before reading it."""


class EmptyBatchError(BatchReadError):
    """The file is empty, or has a header but no data rows."""


class BinaryFileError(BatchReadError):
    """A text format (CSV/JSONL) holds binary content."""


class EncodingError(BatchReadError):
    """A text format holds bytes that are not UTF-8, or text that UTF-8 cannot encode (a lone surrogate)."""


class MissingColumnError(BatchReadError):
    """A required column (text, label) is absent; a wrong CSV delimiter is named when it is the cause."""


class MalformedBatchError(BatchReadError):
    """The content does not parse in its format (bad CSV quoting, invalid JSON line, broken Parquet)."""


def read_batch(
    path: Path, *, max_bytes: int, encoding: str | None = None, encoding_option: str | None = "--encoding"
) -> LabeledBatch:
    """Read a labeled batch file with columns ``text``, ``label`` and optional ``group``, ``id``.

    Args:
        path: a ``.csv`` (comma-separated, UTF-8, a BOM is accepted), ``.jsonl``/``.ndjson`` (one JSON
            object per line) or ``.parquet``/``.pq`` file. Other columns are ignored.
        max_bytes: refuse larger files before reading them: the caller's policy ``data.max_file_bytes``
            (the run's snapshot, so a configured policy is what applies, never a file looked up here).
        encoding: the text encoding of a CSV/JSONL file (``cp932``, ``euc_jp``, …); None is UTF-8.
            Parquet stores UTF-8 itself and ignores it.
        encoding_option: the option that sets ``encoding`` for this file, named in the fix for a
            file in another encoding; None where there is none (a holdout, a watched batch): the
            fix is then to convert the file.

    Returns:
        The rows in file order. Ids are the file's ``id`` column, else the 1-based row number. Missing
        values (empty cells, JSON null) become empty strings.

    Raises:
        NotFoundError: the path does not exist.
        NotAFileError: the path is a directory (or another non-regular file).
        UnsupportedFormatError: the extension is not a supported format.
        BatchTooLargeError: the file is over ``max_bytes``.
        EmptyBatchError: the file is empty or has no data rows.
        BinaryFileError: a CSV/JSONL file holds binary content.
        EncodingError: a CSV/JSONL file is not UTF-8, or not ``encoding`` (the message names byte
            offset and line, and a legacy Japanese encoding the bytes look like).
        MissingColumnError: ``text`` or ``label`` is missing (a wrong CSV delimiter is named).
        MalformedBatchError: the content does not parse.
        ConfigError: ``encoding`` is not a text encoding.
    """
    path = Path(path)
    codec = codec_name(encoding) if encoding is not None else None
    if not path.exists():
        raise NotFoundError(f"batch file {path} does not exist")
    if path.is_dir():
        raise NotAFileError(f"batch path {path} is a directory, not a file; give one CSV, JSONL or Parquet file")
    if not path.is_file():
        raise NotAFileError(f"batch path {path} is not a regular file")
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise UnsupportedFormatError(
            f"batch file {path} has unsupported extension '{path.suffix}'; use one of {', '.join(SUPPORTED_SUFFIXES)}"
        )
    size = path.stat().st_size
    if size > max_bytes:
        raise BatchTooLargeError(
            f"batch file {path} is {size:,} bytes, over the limit of {max_bytes:,} bytes "
            "(policy data.max_file_mb); split it into smaller batches"
        )
    if size == 0:
        raise EmptyBatchError(f"batch file {path} is empty (0 bytes)")
    with path.open("rb") as handle:
        # Read at most one byte past the limit: a file that grew after stat() is still refused.
        raw = handle.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise BatchTooLargeError(f"batch file {path} grew past the limit of {max_bytes:,} bytes while being read")

    if suffix in PARQUET_SUFFIXES:
        return _to_batch(path, _parse_parquet(path, raw))  # Parquet's strings are UTF-8 whatever --encoding says
    content = _decode(path, raw, codec, encoding_option)
    columns = _parse_csv(path, content) if suffix in CSV_SUFFIXES else _parse_jsonl(path, content)
    return _to_batch(path, columns).model_copy(update={"encoding": codec or "utf-8"})


def _decode(path: Path, raw: bytes, codec: str | None, option: str | None) -> str:
    if raw.startswith(_UTF16_BOMS):
        raise EncodingError(f"batch file {path} is UTF-16 encoded; re-export it as UTF-8")
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise BinaryFileError(
            f"batch file {path} looks binary (NUL byte at offset {nul}), not {path.suffix.lower()} text"
        )
    head = raw[:_SNIFF_BYTES]
    control = len(head) - len(head.translate(None, _CONTROL_BYTES))
    if control > _MAX_CONTROL_SHARE * len(head):
        raise BinaryFileError(
            f"batch file {path} looks binary ({control} control bytes in its first {len(head)}), "
            f"not {path.suffix.lower()} text"
        )
    # utf-8-sig drops a leading byte-order mark, which spreadsheet exports add.
    codec = "utf-8-sig" if codec in (None, "utf-8") else codec
    try:
        text = raw.decode(codec)
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        where = f"{bad_utf8_byte(err)} (line {line})"
        if codec != "utf-8-sig":
            fix = f"this file is UTF-8: drop {option}" if _is_utf8(raw) else f"check {option or 'its encoding'}"
            raise EncodingError(f"batch file {path} is not valid {codec}: {where}; {fix}") from None
        if (legacy := guess_japanese(raw)) is not None:
            legacy_codec, known_as, convert = legacy
            fix = f"{convert}, or pass {option} {legacy_codec}" if option else convert
            raise EncodingError(f"batch file {path} is not UTF-8 but looks like {known_as}: {where}; {fix}") from None
        named = f", or name its encoding with {option}" if option else ""
        raise EncodingError(f"batch file {path} is not valid UTF-8: {where}; re-export it as UTF-8{named}") from None
    if not text.strip():
        raise EmptyBatchError(f"batch file {path} holds only whitespace")
    return text


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _parse_csv(path: Path, content: str) -> dict[str, list[str]]:
    import pandas as pd

    # newline="": the csv module then reads old Mac `\r` line endings as it reads `\n` (it raised on them)
    try:
        header = [name.strip() for name in next(csv.reader(io.StringIO(content, newline="")), [])]
    except csv.Error as err:
        raise MalformedBatchError(f"batch file {path} is not valid CSV: {err}") from None
    _require_unique_columns(path, header)
    try:
        with warnings.catch_warnings():
            # A first row longer than the header is a warning, and the rows after it a ParserError.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            # Everything as strings, nothing turned into NaN: "01" stays "01" and "NA" stays a label.
            # index_col=False: otherwise a first row longer than the header turns its leading fields
            # into an index and shifts every column (a text field became the label).
            frame = pd.read_csv(
                io.StringIO(content),
                dtype=str,
                keep_default_na=False,
                na_filter=False,
                skip_blank_lines=True,
                index_col=False,
            )
    except pd.errors.EmptyDataError:
        raise EmptyBatchError(f"batch file {path} has no header and no rows") from None
    except pd.errors.ParserWarning:
        raise MalformedBatchError(
            f"batch file {path}: the first data row has more fields than the header; quote texts that hold commas"
        ) from None
    except (pd.errors.ParserError, ValueError) as err:
        hint = "; quote texts that hold commas" if "fields in line" in str(err) else ""
        raise MalformedBatchError(f"batch file {path} is not valid CSV: {str(err).strip()}{hint}") from None
    names = [str(c).strip() for c in frame.columns]
    frame.columns = names
    _require_columns(path, names)
    if len(frame) == 0:
        raise EmptyBatchError(f"batch file {path} has a header ({', '.join(names)}) but no data rows")
    # Short rows leave NaN even with na_filter off.
    return {name: frame[name].fillna("").tolist() for name in _wanted(names)}


def _parse_jsonl(path: Path, content: str) -> dict[str, list[str]]:
    names: dict[str, None] = {}  # every key seen, in first-seen order, for the missing-column message
    rows: list[dict[str, str]] = []
    # JSON Lines ends records at "\n" only: splitlines() also broke at U+2028, U+0085 and friends, which
    # JSON allows raw inside a string, and called the rest of such a line invalid JSON.
    for number, line in enumerate(content.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line, object_pairs_hook=_pairs)
        except json.JSONDecodeError as err:
            raise MalformedBatchError(f"batch file {path} line {number} is not valid JSON: {err.msg}") from None
        except _RepeatedKey as err:
            raise MalformedBatchError(f"batch file {path} line {number} names {err.key!r} more than once") from None
        if not isinstance(row, dict):
            raise MalformedBatchError(
                f"batch file {path} line {number} is a JSON {type(row).__name__}, expected an object"
            )
        names.update(dict.fromkeys(row))
        for key in _wanted(list(row)):
            if isinstance(row[key], (dict, list)):
                # An exported message object instead of its body, most likely; never a text or a label.
                kind = "object" if isinstance(row[key], dict) else "array"
                raise MalformedBatchError(
                    f"batch file {path} line {number}: {key!r} is a JSON {kind}, expected a string, a number or null"
                )
        cells = {key: _as_text(row[key]) for key in _wanted(list(row))}
        for key, text in cells.items():
            if (at := unpaired_surrogate(text)) is not None:
                raise EncodingError(
                    f"batch file {path} line {number}: {key!r} holds an unpaired UTF-16 surrogate "
                    f"at character {at} (a \\uD800-\\uDFFF escape without its pair); fix or drop the row"
                )
        rows.append(cells)
    _require_columns(path, list(names))
    return {name: [row.get(name, "") for row in rows] for name in _wanted(list(names))}


class _RepeatedKey(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _pairs(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """A JSON object, refusing a repeated key: json.loads keeps the last silently, which hides which text was meant."""
    row: dict[str, object] = {}
    for key, value in pairs:
        if key in row:
            raise _RepeatedKey(key)
        row[key] = value
    return row


def _parse_parquet(path: Path, raw: bytes) -> dict[str, list[str]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        # the names first: read_table fails on a repeated one with a multi-line dump of the schema
        _require_unique_columns(path, pq.read_schema(pa.BufferReader(raw)).names)
        table = pq.read_table(pa.BufferReader(raw))
    except (pa.ArrowException, OSError) as err:
        raise MalformedBatchError(f"batch file {path} is not a valid Parquet file: {first_line(err)}") from None
    names = list(table.column_names)
    _require_columns(path, names)
    if table.num_rows == 0:
        raise EmptyBatchError(f"batch file {path} has columns ({', '.join(names)}) but no rows")
    for name in _wanted(names):
        kind = table.schema.field(name).type
        if pa.types.is_nested(kind) or pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
            raise MalformedBatchError(
                f"batch file {path} column {name!r} holds {kind} values, expected strings, numbers or nulls"
            )
    return {name: [_as_text(v) for v in table.column(name).to_pylist()] for name in _wanted(names)}


def _require_unique_columns(path: Path, names: list[str]) -> None:
    """Raises: MalformedBatchError: a column is named twice (which of the two is the label?)."""
    if twice := sorted({name for name in names if names.count(name) > 1}):
        raise MalformedBatchError(
            f"batch file {path} names column(s) {', '.join(map(repr, twice))} more than once in its header"
        )


def _wanted(names: list[str]) -> list[str]:
    return [n for n in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS) if n in names]


def _require_columns(path: Path, names: list[str]) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if not missing:
        return
    found = ", ".join(repr(n) for n in names) or "none"
    message = f"batch file {path} lacks required column(s) {', '.join(missing)} (columns found: {found})"
    if len(names) == 1:
        delimiter = next((d for d in _OTHER_DELIMITERS if d in names[0]), None)
        if delimiter is not None:
            message += (
                f"; the delimiter looks wrong: the header splits on {delimiter!r}, but Tailor reads comma-separated CSV"
            )
    raise MissingColumnError(message)


def _as_text(value: object) -> str:
    """A JSON/Parquet cell as the string it would be in a CSV; null and float NaN are missing ("")."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if isinstance(value, float) else str(value)
    return str(value)  # the scalars Parquet adds: dates, times, decimals


def _to_batch(path: Path, columns: dict[str, list[str]]) -> LabeledBatch:
    texts = columns["text"]
    return LabeledBatch(
        source=str(path),
        texts=texts,
        labels=columns["label"],
        groups=columns.get("group"),
        ids=columns.get("id") or [str(i) for i in range(1, len(texts) + 1)],
    )
