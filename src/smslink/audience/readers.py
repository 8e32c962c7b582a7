"""Audiences read record by record from CSV or JSON Lines files, never loaded whole.

Campaign exports run to millions of rows and come from Excel as often as from databases,
so the reader streams, accepts what Excel writes (a UTF-8 BOM, ``;`` as delimiter in
European locales, UTF-16 "Unicode text"), and turns every problem into an `AudienceError`
that names the file, the line or record, and what to do about it.

Formats, chosen by extension:

- ``.csv`` / ``.txt``: a header row naming the columns, then one record per row. The
  delimiter is whichever of ``,`` ``;`` and tab splits the header into the most columns.
  Column names are trimmed; trailing unnamed columns (Excel's trailing delimiter) are
  dropped. A row with fewer fields than the header gets "" for the rest; a row with more is
  an error. Blank lines and rows of only empty cells are skipped: they are not records.
- ``.jsonl`` / ``.ndjson``: one JSON object per line. Values become strings: null is "",
  numbers and booleans are their JSON text, arrays and objects are JSON text. Blank lines
  are skipped. The columns are the keys seen so far, in first-seen order.

The encoding defaults to UTF-8 with or without a BOM (and UTF-16 when the file starts with
a UTF-16 BOM); anything else, such as cp1252 from older Excel, must be named explicitly.
"""

from __future__ import annotations

import codecs
import csv
import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

CSV_SUFFIXES = frozenset({".csv", ".txt"})
JSONL_SUFFIXES = frozenset({".jsonl", ".ndjson"})
DELIMITERS = (",", ";", "\t")
_CHUNK = 64 * 1024


class AudienceError(Exception):
    """An audience file cannot be read as it is; the text names where and what to change."""


@dataclass
class AudienceRecord:
    """One recipient as read: its position (for messages and resuming) and its fields."""

    number: int  # 1-based, counting records only (not the header or blank lines)
    line: int  # the line of the file where the record starts
    values: dict[str, str]
    #: Why the record is malformed (too many fields, not JSON), or None. A malformed record
    #: still gets a result row saying so; the records after it are read on.
    problem: str | None = None


class AudienceReader:
    """A single pass over an audience's records.

    Iterating (or `skip`) consumes records: a second loop continues where the first
    stopped, which is what resuming an interrupted ingest needs.
    """

    def __init__(
        self,
        name: str,
        columns: list[str],
        rows: Iterator[tuple[int, Any, str | None]],
        to_values: Callable[[Any], dict[str, str]],
    ) -> None:
        self.name = name
        #: The columns known so far: the header for CSV, keys seen so far for JSON Lines.
        self.columns = columns
        self._rows = rows
        self._to_values = to_values
        self._count = 0

    def __iter__(self) -> Iterator[AudienceRecord]:
        for line, raw, problem in self._rows:
            self._count += 1
            yield AudienceRecord(self._count, line, self._to_values(raw), problem)

    def skip(self, n: int) -> int:
        """Pass over the next `n` records without building them; return how many there were.

        Records are still parsed and checked (a CSV field may span lines, a resume must meet
        the same errors, and JSON Lines columns must stay complete) but not converted.
        """
        skipped = 0
        for _ in range(n):
            if next(self._rows, None) is None:
                break
            skipped += 1
        self._count += skipped
        return skipped


@contextmanager
def open_audience(path: Path, encoding: str | None = None) -> Iterator[AudienceReader]:
    """Open an audience file for streaming; its format is chosen by extension.

    For CSV the header is read here, so a file without a usable header fails before
    anything else happens.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in CSV_SUFFIXES | JSONL_SUFFIXES:
        raise AudienceError(
            f"{path.name}: unknown audience format {suffix or '(no extension)'!r}; "
            "use a .csv file with a header row or a .jsonl file (save Excel sheets as CSV UTF-8)"
        )
    if encoding is not None:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise AudienceError(
                f"unknown encoding {encoding!r}: use e.g. utf-8, cp1252 or latin-1"
            ) from None
    try:
        file = path.open("rb")
    except FileNotFoundError:
        raise AudienceError(f"{path}: no such file") from None
    except OSError as exc:
        raise AudienceError(f"{path}: cannot be opened: {exc.strerror}") from None
    with file:
        lines = _decoded_lines(file, path.name, encoding)
        if suffix in CSV_SUFFIXES:
            yield _csv_reader(path.name, lines)
        else:
            yield _jsonl_reader(path.name, lines)


def check_decodable(path: Path, encoding: str | None = None) -> None:
    """Raise AudienceError when any byte of the file does not decode.

    Only decoding, no parsing: a few milliseconds per megabyte. Run before a send starts,
    so a wrongly encoded file is refused up front instead of stopping a half-sent run.
    """
    path = Path(path)
    with path.open("rb") as file:
        for _ in _decoded_lines(file, path.name, encoding):
            pass


def _decoded_lines(file: BinaryIO, name: str, encoding: str | None) -> Iterator[str]:
    """Decode a binary file into lines ending in "\\n", reporting bad bytes by line.

    Decoding ourselves rather than through a text-mode file lets a decode error say which
    byte on which line is wrong. Lines are split on "\\n" only (keeping "\\r\\n" intact for
    the csv module, and leaving U+2028 alone, which JSON allows inside strings).
    """
    head = file.read(4)
    if encoding is None:
        utf16 = head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
        encoding = "utf-16" if utf16 else "utf-8-sig"
    elif codecs.lookup(encoding).name == "utf-8":
        encoding = "utf-8-sig"  # "--encoding utf-8" must not turn a BOM into part of a name
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    newlines = 0  # lines yielded so far
    pending = ""
    chunk = head
    while True:
        final = not chunk
        try:
            text = decoder.decode(chunk, final=final)
            error = None
        except UnicodeDecodeError as exc:
            # Hand over the lines before the bad byte first, so the error surfaces at
            # the record it belongs to rather than up to a chunk early.
            text = _decode_prefix(exc, encoding)
            error = exc
        pending += text
        if "\n" in pending:
            *complete, pending = pending.split("\n")
            for line in complete:
                newlines += 1
                yield line + "\n"
        if error is not None:
            raise _decode_error(name, encoding, error, newlines + 1)
        if final:
            break
        chunk = file.read(_CHUNK)
    if pending:
        yield pending


def _decode_prefix(exc: UnicodeDecodeError, encoding: str) -> str:
    """The text that decoded cleanly before the bad byte."""
    codec = codecs.lookup(encoding).name.removesuffix("-sig")
    return bytes(exc.object[: exc.start]).decode(codec, "replace")


def _decode_error(name: str, encoding: str, exc: UnicodeDecodeError, line: int) -> AudienceError:
    """Name the offending byte and line, and suggest the likely fix."""
    bad = bytes(exc.object[exc.start : exc.start + 1])
    where = f"byte 0x{bad.hex().upper()}" if bad else "it ends mid-character"
    if codecs.lookup(encoding).name in ("utf-8", "utf-8-sig"):
        return AudienceError(
            f"{name} is not UTF-8 ({where} at line {line}); "
            "re-save it as UTF-8 or pass --encoding cp1252"
        )
    return AudienceError(
        f"{name} is not valid {encoding} ({where} at line {line}); "
        "pass the file's actual encoding with --encoding"
    )


def _csv_reader(name: str, lines: Iterator[str]) -> AudienceReader:
    """Read the header, pick the delimiter from it, and stream the rest as records."""
    first = next(lines, "")
    if not first.strip():
        raise AudienceError(
            f"{name} has no header row: its first line must name the columns, e.g. Phone,FirstName"
        )
    delimiter = _sniff_delimiter(first)

    def all_lines() -> Iterator[str]:
        yield first
        yield from lines

    reader = csv.reader(all_lines(), delimiter=delimiter)
    header = [h.strip() for h in _next_row(reader, name) or []]
    width = len(header)
    while header and not header[-1]:
        header.pop()  # Excel writes a trailing delimiter when the last column is empty
    unnamed = [str(i + 1) for i, h in enumerate(header) if not h]
    if unnamed:
        raise AudienceError(
            f"{name}: column {', '.join(unnamed)} of the header has no name; "
            "name it or delete the column"
        )
    duplicates = sorted({h for h in header if header.count(h) > 1})
    if duplicates:
        raise AudienceError(
            f"{name}: the header names {', '.join(duplicates)} more than once; "
            "rename the columns so each name is unique"
        )

    def rows() -> Iterator[tuple[int, list[str], str | None]]:
        number = 0
        while True:
            start = reader.line_num + 1
            row = _next_row(reader, name)
            if row is None:
                return
            if not any(field.strip() for field in row):
                continue  # a blank line, or a row of empty cells as Excel leaves at the end
            number += 1
            problem = None
            if len(row) > width or any(row[len(header) : width]):
                problem = (
                    f"{name}: record {number} (line {start}) has {len(row)} fields but the "
                    f"header names {len(header)}; quote values that contain "
                    f"{_show(delimiter)} or fix the row"
                )
            yield start, row, problem

    def to_values(row: list[str]) -> dict[str, str]:
        # zip stops at the header's end: a malformed row's extra fields are dropped.
        return dict(zip(header, row + [""] * (len(header) - len(row)), strict=False))

    return AudienceReader(name, header, rows(), to_values)


def _next_row(reader: Any, name: str) -> list[str] | None:
    """The next CSV row ([] for a blank line), None at the end, with csv errors made user-facing."""
    try:
        return next(reader, None)
    except csv.Error as exc:
        raise AudienceError(f"{name}: line {reader.line_num}: {exc}; fix the row") from None


def _sniff_delimiter(header_line: str) -> str:
    """The delimiter that splits the header into the most columns (ties: the earlier one).

    Parsing the line with each candidate, rather than counting characters, keeps a quoted
    header name like "Name, full" from voting for the comma.
    """
    widths = {d: len(next(csv.reader([header_line], delimiter=d), [])) for d in DELIMITERS}
    return max(DELIMITERS, key=lambda d: widths[d])


def _show(delimiter: str) -> str:
    return "tabs" if delimiter == "\t" else f"'{delimiter}'"


def _jsonl_reader(name: str, lines: Iterable[str]) -> AudienceReader:
    """Stream JSON objects one per line, growing the column list as new keys appear."""
    columns: list[str] = []
    seen: set[str] = set()

    def rows() -> Iterator[tuple[int, dict[str, Any], str | None]]:
        for line_no, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                where = f"{exc.msg} at column {exc.colno}"
                problem = f"{name}: line {line_no} is not valid JSON ({where}); fix or remove it"
                yield line_no, {}, problem
                continue
            if not isinstance(obj, dict):
                kind = type(obj).__name__
                problem = (
                    f"{name}: line {line_no} is a JSON {kind}, not an object; write one "
                    'object per line, e.g. {"Phone": "+14155550123"}'
                )
                yield line_no, {}, problem
                continue
            for key in obj:
                if key not in seen:
                    seen.add(key)
                    columns.append(key)
            yield line_no, obj, None

    def to_values(obj: dict[str, Any]) -> dict[str, str]:
        return {key: _as_text(value) for key, value in obj.items()}

    return AudienceReader(name, columns, rows(), to_values)


def _as_text(value: object) -> str:
    """A JSON value as the string a template or phone parser expects."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)
