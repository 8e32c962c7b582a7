"""Audiences read record by record from CSV or JSON Lines files, never loaded whole.

Campaign exports run to millions of rows and come from Excel as often as from databases,
so the reader streams, accepts what Excel writes (a UTF-8 BOM, ``;`` as delimiter in
European locales, UTF-16 "Unicode text", the ``sep=;`` hint line, ``.tsv``), and turns
every problem into an `AudienceError` that names the file, the line or record, what is
wrong and what to do about it. No csv, decoding or I/O error escapes raw.

Formats, chosen by extension:

- ``.csv`` / ``.txt`` / ``.tsv`` (`CSV_SUFFIXES`, "delimited text"): a header row naming the
  columns, then one record per row. A ``.tsv`` is tab-separated; otherwise the delimiter is
  whichever of ``,`` ``;`` and tab splits the header into the most columns. A first line
  ``sep=;`` (Excel's hint; any single punctuation character or a tab) sets the delimiter
  instead and is skipped; line numbers still count it. Column names are trimmed; trailing
  unnamed columns (Excel's trailing delimiter) are dropped. A row with fewer fields than
  the header gets "" for the rest; a row with more is a malformed record whose problem
  names the extra values. Blank lines and rows of only empty cells are skipped: they are
  not records.
- ``.jsonl`` / ``.ndjson``: one JSON object per line. Values become strings: null is "",
  numbers and booleans are their JSON text, arrays and objects are JSON text. Blank lines
  are skipped. The columns are the keys seen so far, in first-seen order. A line that is
  not an object (or holds an unpaired surrogate escape, which no UTF-8 file can hold) is a
  malformed record whose problem quotes the line.

The encoding defaults to UTF-8 with or without a BOM (UTF-16 or UTF-32 when the file starts
with their BOM); anything else, such as cp1252 from older Excel, must be named explicitly.
A file with a BOM, in UTF-16/32, or read with an explicit non-UTF-8 encoding is `excel`:
its results are best written as UTF-8 with a BOM so that Excel opens them correctly.

Records are never silently merged or split. A CSV reader glues lines together while a
quote is open, so one stray quote can swallow every record after it into one value; and
it takes bytes a text export never has. These stop reading with an `AudienceError`:

- A quote still open at the end of the file ("unclosed quote on line N", the line where
  the quote opened). The csv module's reader pulls another line from its source only while
  a quoted field is open, so a row returned by a call during which the source ran dry ran
  into the end of the file inside quotes.
- A value over `MAX_FIELD_CHARS` (32,767) characters or with more than `MAX_FIELD_LINES`
  (253) line breaks: Excel's limits for one cell, so no sheet can hold such a value and an
  SMS (1,600 characters at most) never needs one; it is a quote opened too early.
- A record that spans lines is read at most `MAX_RECORD_LINES` (1,000) lines or
  `MAX_RECORD_CHARS` (131,072, the csv module's own default field limit) characters far;
  a runaway quote is stopped there, memory stays small, and csv's own limit never fires
  inside a quoted value.
- A quoted value whose line breaks hide records: lines inside it that, read alone with the
  file's delimiter, have at least as many fields as the header (of two or more columns),
  when either its quotes do not pair cleanly (a closing quote followed by something other
  than a delimiter or the line end: the quote paired with one meant for something else) or
  at least `SWALLOWED_ROWS` (3) such lines are in it. A multi-line address with a comma on
  a line or two is still a value: cleanly paired quotes allow up to two such lines.
- A header that spans lines (an unclosed quote in the header).
- A physical line over `MAX_LINE_CHARS` (1 MiB: 32 full Excel cells; real audience rows
  are a few hundred characters), checked while decoding so such a line is never held
  whole: the file has no line breaks (or old Mac ones, a carriage return alone).
- A NUL byte (a UTF-16 file without BOM, or not a text file), a carriage return alone
  inside an unquoted value (old Mac line breaks), bytes that do not decode.

`scan_audience` applies all of this in one streaming pass before a send starts and returns
what the send would read (`AudienceScan`); the streaming reader applies the same checks
again while sending, because the file may change in between, and hashes the bytes it reads
(`AudienceReader.sha256`, `file_digest`) so the change can be told.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any, BinaryIO

from smslink.domain.errors import Action, InvalidInput, Remedy

CSV_SUFFIXES = frozenset({".csv", ".txt", ".tsv"})  # delimited text
TSV_SUFFIXES = frozenset({".tsv"})  # always tab-separated
JSONL_SUFFIXES = frozenset({".jsonl", ".ndjson"})
DELIMITERS = (",", ";", "\t")

MAX_FIELD_CHARS = 32_767  # Excel's limit for the characters in one cell
MAX_FIELD_LINES = 253  # Excel's limit for the line breaks in one cell
MAX_RECORD_LINES = 1_000  # how far a record spanning lines is followed
MAX_RECORD_CHARS = 131_072  # the same in characters; csv's default field_size_limit
MAX_LINE_CHARS = 1_048_576  # one physical line, checked while decoding
EXCERPT_CHARS = 200  # how much of a line or value an error message quotes
#: From this many lines inside one quoted value that read as records, the value is taken
#: for swallowed records even when its quotes pair cleanly.
SWALLOWED_ROWS = 3
_CHUNK = 64 * 1024


class AudienceError(InvalidInput):
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


@dataclass(frozen=True)
class AudienceScan:
    """What a complete pass over an audience found; see `scan_audience`."""

    records: int  # what a send would store: blank rows excluded, malformed ones included
    problems: int  # of those, malformed records (each gets an error row)
    size: int  # bytes
    sha256: str  # hex digest of the file's bytes
    columns: tuple[str, ...]  # the CSV header, or JSON Lines keys in first-seen order
    delimiter: str | None  # None for JSON Lines
    excel: bool  # BOM, UTF-16/32 or an explicit non-UTF-8 encoding: write results with a BOM
    sep_line: bool  # the file started with Excel's "sep=;" line
    encoding: str  # the codec the text was decoded with


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
        *,
        text: _Text | None = None,
        delimiter: str | None = None,
        sep_line: bool = False,
    ) -> None:
        self.name = name
        #: The columns known so far: the header for CSV, keys seen so far for JSON Lines.
        self.columns = columns
        #: The CSV delimiter in use (None for JSON Lines).
        self.delimiter = delimiter
        #: Whether the file started with Excel's ``sep=`` line (skipped, but counted).
        self.sep_line = sep_line
        #: Whether the file came from Excel-ish encodings (see `AudienceScan.excel`).
        self.excel = text.excel if text is not None else False
        self.encoding = text.encoding if text is not None else None
        self._text = text
        self._rows = rows
        self._to_values = to_values
        self._count = 0

    @property
    def bytes_read(self) -> int:
        """Bytes read from the file so far (ahead of the records by a buffer)."""
        return self._text.bytes_read if self._text is not None else 0

    @property
    def sha256(self) -> str | None:
        """The hex SHA-256 of the file's bytes once it has been read to the end, else None.

        Compare with `AudienceScan.sha256` to tell that the file changed after the scan.
        """
        return self._text.sha256 if self._text is not None else None

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
    anything else happens. Reading raises AudienceError for every problem of the file
    (see the module docstring); a malformed record is yielded with its `problem`.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in CSV_SUFFIXES | JSONL_SUFFIXES:
        raise AudienceError(
            f"{path.name}: unknown audience format {suffix or '(no extension)'!r}; "
            "use a .csv file with a header row or a .jsonl file (save Excel sheets as CSV UTF-8)"
        )
    if encoding is not None:
        _check_encoding(encoding)
    try:
        file = path.open("rb")
    except FileNotFoundError:
        raise AudienceError(f"{path}: no such file") from None
    except OSError as exc:
        raise AudienceError(f"{path}: cannot be opened: {exc.strerror or exc}") from None
    with file:
        text = _Text(file, path.name, encoding)
        if suffix in CSV_SUFFIXES:
            yield _csv_reader(path.name, text, tab=suffix in TSV_SUFFIXES)
        else:
            yield _jsonl_reader(path.name, text)


def scan_audience(path: Path, encoding: str | None = None) -> AudienceScan:
    """Read the whole audience once, as a send would, and say what it holds.

    Every byte is decoded and every record parsed and checked by the same reader that
    sending uses, in one streaming pass (memory stays flat however large the file).
    Raises AudienceError for anything that would stop a send half-way or silently merge or
    split records, so a send that scans first stops before anything is stored or sent. A
    header without records is not an error here: `records` is 0 and the caller decides.
    """
    with open_audience(path, encoding) as reader:
        records = problems = 0
        for _line, _raw, problem in reader._rows:
            records += 1
            if problem is not None:
                problems += 1
        digest = reader.sha256
        assert digest is not None, "the reader stopped before the end of the file"
        return AudienceScan(
            records=records,
            problems=problems,
            size=reader.bytes_read,
            sha256=digest,
            columns=tuple(reader.columns),
            delimiter=reader.delimiter,
            excel=reader.excel,
            sep_line=reader.sep_line,
            encoding=reader.encoding or "",
        )


def file_digest(path: Path) -> tuple[int, str]:
    """The file's size in bytes and the hex SHA-256 of its bytes, as `AudienceScan` has them.

    Reads in chunks (memory stays flat); raises OSError when the file cannot be read.
    """
    digest = hashlib.sha256()
    size = 0
    with Path(path).open("rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def check_decodable(path: Path, encoding: str | None = None) -> None:
    """Raise AudienceError when the file would not read to the end; see `scan_audience`.

    Kept for callers of the former decode-only check: it now runs the full scan.
    """
    scan_audience(path, encoding)


def _check_encoding(encoding: str) -> None:
    try:
        info = codecs.lookup(encoding)
    except LookupError:
        info = None
    # base64, zlib, rot13 and the like are codecs too, but not text encodings.
    if info is None or not getattr(info, "_is_text_encoding", True):
        raise AudienceError(f"unknown encoding {encoding!r}: use e.g. utf-8, cp1252 or latin-1")


class _Text:
    """A file's bytes decoded into lines, hashed and counted as they are read.

    Decoding ourselves rather than through a text-mode file lets an error say which byte on
    which line is wrong, and lets a line be measured while it accumulates. Lines are split
    on "\\n" only (keeping "\\r\\n" intact for the csv module, and leaving U+2028 alone,
    which JSON allows inside strings).
    """

    def __init__(self, file: BinaryIO, name: str, encoding: str | None) -> None:
        self._file = file
        self._name = name
        self._digest = hashlib.sha256()
        self.bytes_read = 0
        self.finished = False
        self._head = head = self._read(4)
        explicit = encoding is not None
        if encoding is None:
            if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
                encoding = "utf-32"
            elif head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
                encoding = "utf-16"
            else:
                encoding = "utf-8-sig"
        elif codecs.lookup(encoding).name == "utf-8":
            encoding = "utf-8-sig"  # asking for utf-8 must not turn a BOM into part of a name
        codec = codecs.lookup(encoding).name
        self.encoding = encoding
        boms = (codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_BE)
        self.bom = head.startswith(boms)
        self.excel = (
            self.bom
            or codec.startswith(("utf-16", "utf-32"))
            or (explicit and codec not in ("utf-8", "utf-8-sig"))
        )

    @property
    def sha256(self) -> str | None:
        return self._digest.hexdigest() if self.finished else None

    def _read(self, size: int) -> bytes:
        try:
            chunk = self._file.read(size)
        except OSError as exc:
            raise AudienceError(f"{self._name} cannot be read: {exc.strerror or exc}") from None
        self._digest.update(chunk)
        self.bytes_read += len(chunk)
        return chunk

    def lines(self) -> Iterator[str]:
        """The lines, each ending in "\\n" but perhaps the last; errors raised at their line.

        The lines before a bad byte, a NUL or an overlong line are handed over first, so the
        error surfaces at the record it belongs to rather than up to a chunk early.
        """
        try:
            decoder = codecs.getincrementaldecoder(self.encoding)("strict")
        except (LookupError, TypeError, ValueError):
            raise AudienceError(f"cannot decode {self.encoding!r}: use e.g. utf-8") from None
        newlines = 0  # lines yielded so far
        pending = ""
        chunk = self._head
        first = True
        while True:
            final = not chunk
            failure: UnicodeError | None = None
            try:
                text = decoder.decode(chunk, final=final)
            except UnicodeDecodeError as exc:
                text = _decode_prefix(exc, self.encoding)
                failure = exc
            except UnicodeError as exc:  # a codec that fails without saying where
                text, failure = "", exc
            if not isinstance(text, str):
                raise AudienceError(f"cannot decode {self.encoding!r}: use e.g. utf-8")
            if first and text:
                first = False
                text = text.removeprefix("\ufeff")  # a BOM under an explicit byte order
            nul = text.find("\x00")
            if nul >= 0:
                text = text[:nul]
            pending += text
            if "\n" in text:
                *complete, pending = pending.split("\n")
                for line in complete:
                    if len(line) > MAX_LINE_CHARS:
                        raise self._too_long(newlines + 1, line)
                    newlines += 1
                    yield line + "\n"
            if nul >= 0:
                raise AudienceError(
                    f"{self._name}: line {newlines + 1} contains a NUL byte (0x00), which text "
                    "never holds: if the file is UTF-16 without a byte order mark, read it "
                    "as utf-16-le (or utf-16-be); otherwise it is not a CSV or JSON "
                    "Lines file (save the sheet as CSV UTF-8)",
                    remedy=Remedy(Action.SET_ENCODING, {"encoding": "utf-16-le"}),
                )
            if failure is not None:
                raise _decode_error(self._name, self.encoding, failure, newlines + 1)
            if len(pending) > MAX_LINE_CHARS:
                raise self._too_long(newlines + 1, pending)
            if final:
                break
            chunk = self._read(_CHUNK)
        self.finished = True
        if pending:
            yield pending

    def _too_long(self, line: int, text: str) -> AudienceError:
        if "\r" in text:
            cause = (
                "it uses old Mac line breaks (a carriage return alone); "
                "re-save it as CSV UTF-8 or with ordinary line breaks"
            )
        else:
            cause = (
                "the file has no line breaks there (not a CSV or JSON Lines export, or saved "
                "without them); re-export it with one record per line"
            )
        return AudienceError(
            f"{self._name}: line {line} is longer than {MAX_LINE_CHARS:,} characters: {cause}"
        )


def _decode_prefix(exc: UnicodeDecodeError, encoding: str) -> str:
    """The text that decoded cleanly before the bad byte."""
    codec = codecs.lookup(encoding).name.removesuffix("-sig")
    try:
        return bytes(exc.object[: exc.start]).decode(codec, "replace")
    except (UnicodeError, ValueError):  # exotic codecs (idna) know no "replace"
        return ""


def _decode_error(name: str, encoding: str, exc: UnicodeError, line: int) -> AudienceError:
    """Name the offending byte and line, and suggest the likely fix."""
    if not isinstance(exc, UnicodeDecodeError):
        return AudienceError(
            f"{name} is not valid {encoding} (at line {line}: {_excerpt(str(exc))}); "
            "name the file's actual encoding",
            remedy=Remedy(Action.SET_ENCODING),
        )
    bad = bytes(exc.object[exc.start : exc.start + 1])
    where = f"byte 0x{bad.hex().upper()}" if bad else "it ends mid-character"
    if codecs.lookup(encoding).name in ("utf-8", "utf-8-sig"):
        return AudienceError(
            f"{name} is not UTF-8 ({where} at line {line}); "
            "re-save it as UTF-8 or read it as cp1252 (older Excel)",
            remedy=Remedy(Action.SET_ENCODING, {"encoding": "cp1252"}),
        )
    return AudienceError(
        f"{name} is not valid {encoding} ({where} at line {line}); name the file's actual encoding",
        remedy=Remedy(Action.SET_ENCODING),
    )


class _RecordLines:
    """The lines the csv reader pulls, with the lines the current record has taken.

    The csv reader pulls one line to start a record and another only while a quoted field
    is open. So a record that took several lines holds a quote across line breaks; the end
    of the lines reached during a record means a quote open at the end of the file; and a
    record taking too many lines is cut off here (the reader then returns what it has, as
    at the end of the file) before it piles up in memory.
    """

    __slots__ = (
        "_lines",
        "chars",
        "cut",
        "exhausted",
        "first",
        "limit",
        "line_no",
        "more",
        "spans",
        "start",
    )

    def __init__(self, lines: Iterator[str], line_no: int, limit: int) -> None:
        self._lines = lines
        self.limit = limit  # characters a record spanning lines may take
        self.line_no = line_no  # the last line handed out
        self.start = line_no + 1  # the current record's first line
        self.first: str | None = None  # the current record's first line, once pulled
        self.more: list[str] = []  # its further lines
        self.chars = 0  # in all its lines
        #: Whether the current record held a quote across a line break (or was cut off).
        self.spans = False
        self.exhausted = False
        self.cut = False

    def begin(self) -> None:
        """A new record starts with the next line."""
        self.start = self.line_no + 1
        self.first = None
        if self.spans:
            self.more = []
            self.spans = False

    @property
    def taken(self) -> list[str]:
        """The lines the current record has taken."""
        return [self.first or "", *self.more]

    def __iter__(self) -> _RecordLines:
        return self

    def __next__(self) -> str:
        try:
            line = next(self._lines)
        except StopIteration:
            if not self.cut:
                self.exhausted = self.spans = self.first is not None
            raise
        self.line_no += 1
        if self.first is None:
            self.first = line
            self.chars = len(line)
            return line
        # Only an open quote pulls another line into the record.
        if len(self.more) + 1 >= MAX_RECORD_LINES or self.chars + len(line) > self.limit:
            self.line_no -= 1
            self.cut = self.spans = True
            self._lines = iter(())
            raise StopIteration
        self.spans = True
        self.more.append(line)
        self.chars += len(line)
        return line


def _csv_reader(name: str, text: _Text, *, tab: bool) -> AudienceReader:
    """Read the header, pick the delimiter from it, and stream the rest as records."""
    lines = text.lines()
    first = next(lines, "")
    header_line = 1
    sep = _sep_hint(name, first)
    if sep is not None:
        first = next(lines, "")
        header_line = 2
    if not first.strip():
        raise AudienceError(
            f"{name} has no header row: its first line must name the columns, e.g. Phone,FirstName"
        )
    delimiter = sep or ("\t" if tab else _sniff_delimiter(name, first, header_line))
    limit = max(1, min(MAX_RECORD_CHARS, csv.field_size_limit()))
    source = _RecordLines(chain([first], lines), header_line - 1, limit)
    reader = csv.reader(source, delimiter=delimiter)
    source.begin()
    row = _next_row(reader, name, source)
    if row is None or source.spans:
        raise AudienceError(
            f"{name}: line {header_line}: the header has an unclosed quote "
            f"({_excerpt(first)}); close the quote or remove it so the header is one line"
        )
    header = [h.strip() for h in row]
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
    named = len(header)

    def rows() -> Iterator[tuple[int, list[str], str | None]]:
        number = 0
        while True:
            source.begin()
            row = _next_row(reader, name, source)
            if row is None:
                return
            if source.spans:
                _check_spanning(name, row, source, delimiter, named)
            elif source.chars > MAX_FIELD_CHARS:
                _check_lengths(name, row, source.start)
            if not "".join(row).strip():
                continue  # a blank line, or a row of empty cells as Excel leaves at the end
            number += 1
            problem = None
            if len(row) > width or (len(row) > named and any(row[named:width])):
                extra = row[named:]
                while extra and not extra[-1]:
                    extra.pop()
                shown = _excerpt(", ".join(f'"{value}"' for value in extra))
                problem = (
                    f"{name}: record {number} (line {source.start}) has {len(row)} fields but "
                    f"the header names {named}; quote values that contain {_show(delimiter)} "
                    f"or fix the row (extra values: {shown})"
                )
            yield source.start, row, problem

    def to_values(row: list[str]) -> dict[str, str]:
        # zip stops at the header's end: a malformed row's extra fields are dropped.
        return dict(zip(header, row + [""] * (named - len(row)), strict=False))

    return AudienceReader(
        name, header, rows(), to_values, text=text, delimiter=delimiter, sep_line=sep is not None
    )


def _sep_hint(name: str, line: str) -> str | None:
    """The delimiter named by Excel's ``sep=;`` first line, or None when it is not one."""
    hint = line.rstrip("\r\n")
    if len(hint) >= 2 and hint[0] == hint[-1] == '"':
        hint = hint[1:-1]  # "sep=;" as some tools quote it
    if hint[:4].lower() != "sep=":
        return None
    value = hint[4:]
    if value == "\\t":
        value = "\t"
    punctuation = not (value.isalnum() or value.isspace()) and value not in "\"'"
    if len(value) == 1 and (value == "\t" or punctuation):
        return value
    raise AudienceError(
        f"{name}: line 1 looks like Excel's delimiter hint but {_excerpt(hint)} names no "
        "delimiter; write it as sep=; or sep=, (one character) or remove the line"
    )


def _next_row(reader: Any, name: str, source: _RecordLines) -> list[str] | None:
    """The next CSV row ([] for a blank line), None at the end, with csv errors made user-facing."""
    try:
        return next(reader, None)
    except csv.Error as exc:
        raise _csv_error(name, source.line_no, exc) from None


def _csv_error(name: str, line: int, exc: csv.Error) -> AudienceError:
    """The csv module's complaint about a line, as a user can act on it."""
    text = str(exc)
    if text.startswith("field larger than field limit"):
        return AudienceError(
            f"{name}: line {line}: a value is longer than {csv.field_size_limit():,} "
            f"characters (Excel's limit for one cell is {MAX_FIELD_CHARS:,}); the line has "
            "probably lost its line breaks or holds a misplaced quote: fix or shorten it"
        )
    if text.startswith("new-line character seen in unquoted field"):
        return AudienceError(
            f"{name}: line {line} has a carriage return inside an unquoted value: the file "
            "probably uses old Mac line breaks (a carriage return alone), so re-save it as "
            "CSV UTF-8; or put the value in quotes"
        )
    return AudienceError(f"{name}: line {line}: {text}; fix the row")


def _check_lengths(name: str, row: list[str], line: int) -> None:
    """Refuse a value on one line that no spreadsheet cell could hold."""
    for field in row:
        if len(field) > MAX_FIELD_CHARS:
            raise AudienceError(
                f"{name}: line {line}: a value is {len(field):,} characters long, more than "
                f"{MAX_FIELD_CHARS:,} (Excel's limit for one cell); the line has probably "
                "lost its line breaks or holds a misplaced quote: fix or shorten it"
            )


def _check_spanning(
    name: str, row: list[str], source: _RecordLines, delimiter: str, width: int
) -> None:
    """Refuse a record whose quoted values ran into the end of the file, past a cell's
    limits, or over lines that read as records of their own (see the module docstring)."""
    start = source.start
    taken = source.taken
    starts = []  # the line each field starts on: every line break is inside one field
    line = start
    for field in row:
        starts.append(line)
        line += field.count("\n")
    if source.exhausted:
        opened = starts[-1]
        raise AudienceError(
            f"{name}: unclosed quote on line {opened}: the quoted value that starts there "
            f"({_excerpt(taken[opened - start])}) runs to the end of the file at line "
            f"{source.line_no}; close the quote or remove it"
        )
    for opened, field in zip(starts, row, strict=True):
        if field.count("\n") > MAX_FIELD_LINES:
            over = f"more than {MAX_FIELD_LINES} line breaks"
        elif len(field) > MAX_FIELD_CHARS:
            over = f"more than {MAX_FIELD_CHARS:,} characters"
        else:
            continue
        if "\n" not in field:
            _check_lengths(name, [field], opened)
        raise AudienceError(
            f"{name}: line {opened}: the quoted value that starts there runs over {over} "
            f"(Excel's limit for one cell); most likely an unclosed quote opened on line "
            f"{opened}: close the quote or remove it"
        )
    if source.cut:
        raise AudienceError(
            f"{name}: line {start}: the record that starts there runs over more than "
            f"{MAX_RECORD_LINES:,} lines or {source.limit:,} characters; most likely an "
            f"unclosed quote opened on line {starts[-1]}: close the quote or remove it"
        )
    if width < 2:
        return
    clean: bool | None = None
    for opened, field in zip(starts, row, strict=True):
        if "\n" not in field:
            continue
        closed = opened + field.count("\n")
        rowlike = [
            n for n in range(opened + 1, closed + 1) if _width(taken[n - start], delimiter) >= width
        ]
        if not rowlike:
            continue
        if len(rowlike) < SWALLOWED_ROWS:
            if clean is None:
                clean = _pairs_cleanly(taken, delimiter)
            if clean:
                continue  # a multi-line value (an address) with a delimiter on a line
        if len(rowlike) == 1:
            swallowed = f"line {rowlike[0]}, which reads as a record,"
        else:
            swallowed = f"line {rowlike[0]} and {len(rowlike) - 1} more that read as records"
        raise AudienceError(
            f"{name}: line {opened}: the quote opened there closes only on line {closed}, so "
            f"{swallowed} became part of one value; close the quote on line {opened} or "
            "remove it"
        )


def _width(line: str, delimiter: str) -> int:
    """How many fields a line has read on its own."""
    try:
        return len(next(csv.reader([line], delimiter=delimiter), []))
    except csv.Error:
        return 0


def _pairs_cleanly(lines: list[str], delimiter: str) -> bool:
    """Whether every closing quote of the record is followed by a delimiter or line end."""
    try:
        next(csv.reader(lines, delimiter=delimiter, strict=True), None)
    except csv.Error:
        return False
    return True


def _sniff_delimiter(name: str, header_line: str, line: int) -> str:
    """The delimiter that splits the header into the most columns (ties: the earlier one).

    Parsing the line with each candidate, rather than counting characters, keeps a quoted
    header name like "Name, full" from voting for the comma.
    """
    widths = {}
    for delimiter in DELIMITERS:
        try:
            widths[delimiter] = len(next(csv.reader([header_line], delimiter=delimiter), []))
        except csv.Error as exc:
            raise _csv_error(name, line, exc) from None
    return max(DELIMITERS, key=lambda d: widths[d])


def _show(delimiter: str) -> str:
    return "tabs" if delimiter == "\t" else f"'{delimiter}'"


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """Up to `limit` characters of raw text for a message: one line, controls escaped."""
    text = text.rstrip("\r\n")
    shown = _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text[:limit])
    if len(text) > limit or len(shown) > limit:
        shown = shown[:limit] + "…"
    return shown


def _jsonl_reader(name: str, text: _Text) -> AudienceReader:
    """Stream JSON objects one per line, growing the column list as new keys appear."""
    columns: list[str] = []
    seen: set[str] = set()
    lines: Iterable[str] = text.lines()

    def rows() -> Iterator[tuple[int, dict[str, Any], str | None]]:
        for line_no, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except (ValueError, RecursionError) as exc:
                if "\r" in line.rstrip("\r\n"):
                    raise AudienceError(
                        f"{name}: line {line_no} has a carriage return inside it: the file "
                        "probably uses old Mac line breaks (a carriage return alone); re-save "
                        "it with ordinary line breaks"
                    ) from None
                if isinstance(exc, json.JSONDecodeError):
                    where = f"{exc.msg} at column {exc.colno}"
                elif isinstance(exc, RecursionError):
                    where = "nested too deeply"
                else:  # int() refuses numbers of more than 4,300 digits
                    where = "a number too long to read"
                problem = (
                    f"{name}: line {line_no} is not valid JSON ({where}); fix or remove it "
                    f"(the line reads: {_excerpt(line)})"
                )
                yield line_no, {}, problem
                continue
            if not isinstance(obj, dict):
                kind = type(obj).__name__
                problem = (
                    f"{name}: line {line_no} is a JSON {kind}, not an object; write one "
                    'object per line, e.g. {"Phone": "+14155550123"} '
                    f"(the line reads: {_excerpt(line)})"
                )
                yield line_no, {}, problem
                continue
            if "\\u" in line and not _encodable(obj):
                problem = (
                    f"{name}: line {line_no} holds half of a \\u escape pair (an unpaired "
                    f"surrogate), which is no character; fix the text (the line reads: "
                    f"{_excerpt(line)})"
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

    return AudienceReader(name, columns, rows(), to_values, text=text)


def _encodable(obj: object) -> bool:
    """Whether the object's text can be written as UTF-8 (no unpaired surrogates)."""
    try:
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, ValueError, RecursionError):
        return False
    return True


def _as_text(value: object) -> str:
    """A JSON value as the string a template or phone parser expects."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)
