"""Per-recipient results written back as CSV, TSV or JSON Lines, all or nothing.

Each result row is the recipient's input record followed by the result columns, so a
marketer can join results to the campaign on any of their own fields. The file appears
only when complete: rows go to a temporary file beside the target, which is renamed over
it on a successful close, so a crash never leaves a half-written results file that looks
finished (nor destroys a previous one).

Result column names: each of `RESULT_COLUMNS` keeps its name unless an input column has
the same name ignoring case; then it is written as ``smslink_<name>``, and if that is taken
too, as ``smslink_<name>_2``, ``smslink_<name>_3`` and so on. Input columns are never
renamed, so the input half of a row reads exactly like the audience.

Where results may go (`check_results_path`, checked again by the writer when it opens and
just before it renames the finished file into place):

- never onto the audience file itself, however it is named (an identical, relative or
  ``..`` path, a symbolic link or a hard link): the marketer's only copy of the audience
  would be replaced. `same_file` compares resolved paths and file identity (device and
  inode). Allowing overwrites does not lift this.
- never onto an existing folder, or onto something that is not a regular file (a device,
  a FIFO): renaming over it would fail, or as root replace ``/dev/null`` itself.
- onto an existing file only when it is a results file written by smslink
  (`is_results_file`: its header ends with the result columns), when it is empty (0 bytes:
  nothing can be lost, and it is what a JSON Lines result of an empty audience looks
  like), or when the caller allows overwriting it. Anything else is someone's data.
- only where a file can really be created: the check creates (``O_EXCL``, under the
  writer's own temporary name) and removes a file in the target folder, instead of trusting
  ``os.access``, which says yes to root for ``/proc`` and to anyone on a read-only mount.

Spreadsheet safety (CSV and TSV only; JSON Lines is data for programs and written as is):
a cell that starts with ``=``, ``@``, tab or carriage return, or with ``+`` or ``-`` and is
not a plain number (``-5``, ``+3.5``, ``-1e5``, ``-3,5``) or a phone number
(``+14155550123``, ``+1 (415) 555-0123``: ``+``, then at least 7 digits with single spaces,
dashes, dots or parentheses between them), is written with a ``'`` in front
(`spreadsheet_safe`). Audience fields are whatever someone typed into a web form, and
Excel and LibreOffice run such cells as formulas when the results are opened: DDE commands
(``=cmd|' /C calc'!A0``), links that send data away (``=HYPERLINK(...)``). This is OWASP's
advice against CSV injection. It applies to every cell, the header's names and the result
columns included. The rule is one-way: a cell that already starts with ``'`` (``'=1+2``) is
not a formula and is written unchanged, so a reader cannot tell it from a neutralised one.

Spreadsheet-friendly encoding: results are UTF-8. ``bom=True`` puts a UTF-8 byte order mark
first, which is how Excel recognises UTF-8 (without it, umlauts turn into mojibake); use it
when the audience came from Excel (a BOM, UTF-16, or cp1252). ``delimiter`` keeps the
audience's separator (``;`` from European Excel, tab), ``.tsv`` results always use tabs, and
``sep_line=True`` writes Excel's ``sep=;`` hint as the first line, as the audience had it.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import enum
import io
import json
import os
import re
import secrets
import stat
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from types import TracebackType
from typing import IO

from smslink.audience import readers
from smslink.audience.readers import JSONL_SUFFIXES, AudienceError
from smslink.domain.errors import Action, Remedy

RESULT_COLUMNS = (
    "to",
    "status",
    "error_code",
    "error_message",
    "message_sid",
    "segments",
    "timestamp",
)

_RESULT_COLUMN_SET = frozenset(RESULT_COLUMNS)

#: The delimiters a results file may use: the ones an audience may use.
DELIMITERS = (",", ";", "\t")
TSV_SUFFIX = ".tsv"
#: How much of an existing file `is_results_file` reads to find its header.
_HEADER_BYTES = 64 * 1024
_BOM = "\ufeff"


def result_column_names(input_columns: Sequence[str]) -> dict[str, str]:
    """Map each result column to the name it is written under (see the module docstring)."""
    taken = {c.casefold() for c in input_columns}
    names: dict[str, str] = {}
    for column in RESULT_COLUMNS:
        name = column
        if name.casefold() in taken:
            name = base = f"smslink_{column}"
            suffix = 2
            while name.casefold() in taken:
                name = f"{base}_{suffix}"
                suffix += 1
        taken.add(name.casefold())
        names[column] = name
    return names


# -- spreadsheet safety ---------------------------------------------------------------------

_ALWAYS_FORMULA = ("=", "@", "\t", "\r")
_SIGNS = ("+", "-")
#: Every first character `spreadsheet_safe` may act on (all the prefixes above are one).
_FORMULA_STARTS = frozenset(_ALWAYS_FORMULA + _SIGNS)
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:[.,][0-9]*)?|[.,][0-9]+)(?:[eE][+-]?[0-9]+)?")
# "+", then digits; a parenthesised group of digits; or a single space, dash or dot that
# must be followed by a digit or "(". Every alternative starts with a different character,
# so matching never backtracks badly.
_PHONE = re.compile(r"\+(?=[0-9(])(?:[0-9]|\([0-9]+\)|[ .\-](?=[0-9(]))+")
_PHONE_MIN_DIGITS = 7


def spreadsheet_safe(cell: str) -> str:
    """`cell` with a ``'`` in front when a spreadsheet would run it as a formula.

    See the module docstring for the rule; plain numbers and phone numbers that start with
    ``+`` or ``-`` are left alone so they still read as numbers.
    """
    if cell.startswith(_ALWAYS_FORMULA):
        return "'" + cell
    if cell.startswith(_SIGNS) and not _harmless_signed(cell):
        return "'" + cell
    return cell


def _harmless_signed(cell: str) -> bool:
    """A plain number or a phone number: digits and separators, nothing a formula can call."""
    if _NUMBER.fullmatch(cell):
        return True
    if _PHONE.fullmatch(cell):
        return sum(c in "0123456789" for c in cell) >= _PHONE_MIN_DIGITS
    return False


# -- where results may go -------------------------------------------------------------------


def same_file(a: Path, b: Path) -> bool:
    """True when `a` and `b` name the same file: equal resolved paths, or the same inode.

    The second catches hard links (and case-insensitive file systems); the first also works
    when neither exists yet. A path that cannot be examined is not the same file.
    """
    try:
        if Path(a).resolve() == Path(b).resolve():
            return True
    except (OSError, RuntimeError):  # a symlink loop
        pass
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def is_results_file(path: Path) -> bool:
    """True when the file at `path` is a results file written by smslink.

    That is a CSV/TSV whose header (after an optional BOM and an optional ``sep=`` line,
    split by ``,`` ``;`` or tab, in UTF-8 or UTF-16) ends with the result columns, each
    possibly renamed ``smslink_<name>`` or ``smslink_<name>_N``; or a JSON Lines file whose
    first object's keys end with them. Only the first 64 KiB are read. A file that is
    missing, not a regular file, unreadable, binary or empty is not a results file.
    """
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return False  # never open a FIFO (it would block) or a device
        with open(path, "rb") as file:
            data = file.read(_HEADER_BYTES)
            complete = not file.read(1)
    except OSError:
        return False
    text = _decode_head(data)
    if text is None:
        return False
    if not complete:
        # The first line (header or first object) must end within what was read.
        if "\n" not in text:
            return False
        text = text[: text.rindex("\n") + 1]
    text = text.removeprefix(_BOM)
    if text.lstrip().startswith("{") and _jsonl_is_results(text):
        return True
    return _csv_is_results(text)


def check_results_path(
    path: Path, *, input_path: Path | None = None, overwrite: bool = False
) -> None:
    """Raise AudienceError unless a results file can be written at `path`.

    A send checks this before its first message, not after its last. The rules are in the
    module docstring: not the audience file (`input_path`), not a folder or a device, not
    somebody else's file unless `overwrite`, and a file must really be creatable there.
    """
    path = Path(path)
    _check_format(path)
    refusal = _refusal(path, input_path, overwrite)
    if refusal is not None:
        raise refusal
    folder = path.parent
    probe = _temp_path(path)
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as exc:
        raise _unwritable(path, exc) from None
    os.close(fd)
    try:
        probe.unlink()
    except OSError as exc:
        # Creating works but removing does not (rare: an append-only or odd network
        # folder): the writer could not rename or clean up there either, so refuse now.
        raise AudienceError(
            f"{path}: a file created in the folder {folder.resolve()} cannot be removed "
            f"again ({exc.strerror}); choose another folder"
        ) from None


def _refusal(path: Path, input_path: Path | None, overwrite: bool) -> AudienceError | None:
    """Why results must not be written over `path` now, or None; the remedy is to allow
    overwriting when that is what would make it fine."""
    problem = _target_problem(path, input_path, overwrite)
    if problem is None:
        return None
    what, fix = problem
    remedy = (
        Remedy(Action.OVERWRITE_OUTPUT, {"path": str(path)})
        if fix == _ALLOW_OVERWRITE
        else Remedy(Action.CHOOSE_OUTPUT, {"path": str(path)})
    )
    return AudienceError(f"{path} {what}: {fix}", remedy=remedy)


_ALLOW_OVERWRITE = "choose another name or allow overwriting it"


def _target_problem(path: Path, input_path: Path | None, overwrite: bool) -> tuple[str, str] | None:
    """What is wrong with writing over `path` now, as (what, fix), or None."""
    if input_path is not None and same_file(path, input_path):
        where = Path(input_path).resolve()
        return f"is the audience file itself ({where})", "choose another output file"
    try:
        info = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path) and not overwrite:
            return (
                "is a symbolic link to a missing file",
                _ALLOW_OVERWRITE,
            )
        return None
    except OSError:
        return None  # a parent that is not a folder and the like: the create step says so
    if stat.S_ISDIR(info.st_mode):
        return "is a folder", f"name a file inside it, e.g. {path / 'results.csv'}"
    if not stat.S_ISREG(info.st_mode):
        return "exists and is not a regular file", "choose another output file"
    if _sticky_blocks_replace(path, info):
        return (
            "belongs to another user in a shared folder, so it cannot be replaced",
            "choose another output file",
        )
    if overwrite or _is_empty(path) or is_results_file(path):
        return None
    return (
        "exists and is not a smslink results file",
        _ALLOW_OVERWRITE,
    )


def _sticky_blocks_replace(path: Path, info: os.stat_result) -> bool:
    """Renaming over a file in a sticky folder (/tmp) needs owning the file or the folder."""
    euid = os.geteuid() if hasattr(os, "geteuid") else 0
    if euid == 0 or info.st_uid == euid:
        return False
    try:
        folder = os.stat(path.parent)
    except OSError:
        return False
    return bool(folder.st_mode & stat.S_ISVTX) and folder.st_uid != euid


def _is_empty(path: Path) -> bool:
    """Holds no bytes, by reading rather than st_size (``/proc`` files report size 0)."""
    try:
        with open(path, "rb") as file:
            return not file.read(1)
    except OSError:
        return False


def _unwritable(path: Path, exc: OSError) -> AudienceError:
    folder = path.parent.resolve()
    if not folder.exists():
        return AudienceError(f"{path}: the folder {folder} does not exist")
    if not folder.is_dir():
        return AudienceError(f"{path}: {folder} is not a folder")
    if isinstance(exc, PermissionError):
        return AudienceError(f"{path}: the folder {folder} is not writable")
    return AudienceError(f"{path}: cannot write results there: {exc.strerror}")


def _temp_path(path: Path) -> Path:
    """Where the rows go until the file is complete: a hidden, unique name beside `path`."""
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def remove_stale_temporaries(path: Path) -> None:
    """Remove the temporaries of a results file at `path` that processes which no longer
    run left behind (killed while writing: kill -9, out of memory, a power cut), as each
    writer of `path` starts. They hold recipients' data, and a run's results are written
    ahead for as long as it is tracked (engine/results.py), so a killed run would leave
    one. Only on POSIX, where signal 0 asks whether a process lives without touching it."""
    if os.name != "posix":
        return
    prefix = f".{path.name}."
    try:
        candidates = [p for p in path.parent.iterdir() if p.name.startswith(prefix)]
    except OSError:
        return
    for candidate in candidates:
        pid, _, rest = candidate.name[len(prefix) :].partition(".")
        if not (pid.isdigit() and rest.endswith(".tmp")) or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            with contextlib.suppress(OSError):
                candidate.unlink()
        except OSError:
            pass  # it lives (another user's process): not ours to judge


def _delimited_suffixes() -> frozenset[str]:
    # Read at call time: readers.CSV_SUFFIXES may or may not list ".tsv" itself.
    return frozenset(readers.CSV_SUFFIXES) | {TSV_SUFFIX}


def _check_format(path: Path) -> None:
    suffix = path.suffix.lower()
    if suffix not in _delimited_suffixes() | JSONL_SUFFIXES:
        raise AudienceError(
            f"{path.name}: unknown results format {suffix or '(no extension)'!r}; "
            "name the results file .csv, .tsv or .jsonl"
        )


# -- recognising results files --------------------------------------------------------------


def _decode_head(data: bytes) -> str | None:
    """The start of a file as text (UTF-16 by its BOM, else UTF-8), or None if it is not."""
    utf16 = data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    encoding = "utf-16" if utf16 else "utf-8"
    try:
        # final=False: a character cut off at the end of the read is not an error.
        text = codecs.getincrementaldecoder(encoding)("strict").decode(data, final=False)
    except UnicodeDecodeError:
        return None
    if "\x00" in text:
        return None  # binary
    return text


def _is_result_name(cell: str, column: str) -> bool:
    base = f"smslink_{column}"
    if cell in (column, base):
        return True
    number = cell.removeprefix(base + "_")
    return number != cell and number.isascii() and number.isdigit() and int(number) >= 2


def _ends_with_result_columns(names: Sequence[str]) -> bool:
    tail = list(names[-len(RESULT_COLUMNS) :])
    return len(tail) == len(RESULT_COLUMNS) and all(
        _is_result_name(cell, column) for cell, column in zip(tail, RESULT_COLUMNS, strict=True)
    )


def _csv_is_results(text: str) -> bool:
    delimiters = list(DELIMITERS)
    first, _, rest = text.partition("\n")
    sep = re.fullmatch(r"sep=([^\r])\r?", first)
    if sep:
        delimiters.insert(0, sep.group(1))
        text = rest
    for delimiter in delimiters:
        try:
            header = next(csv.reader(io.StringIO(text), delimiter=delimiter), [])
        except (csv.Error, TypeError, ValueError):
            continue  # an odd sep= character, or a header that is not CSV
        names = [name.strip() for name in header]
        while names and not names[-1]:
            names.pop()  # Excel's trailing delimiter
        if _ends_with_result_columns(names):
            return True
    return False


def _jsonl_is_results(text: str) -> bool:
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            return False
        return isinstance(obj, dict) and _ends_with_result_columns(list(obj))
    return False


# -- writing --------------------------------------------------------------------------------


class ResultWriter:
    """Writes result rows to a temporary file and publishes it on a successful close.

    Use as a context manager: leaving the block normally publishes the file, leaving it
    with an exception discards it. `close()` and `abort()` do the same explicitly.

    `delimiter` (CSV only; None means ``,``, and ``.tsv`` files always use tabs), `bom`
    and `sep_line` shape a delimited file for spreadsheets and are ignored for JSON Lines.
    `input_path` is the audience file, which is never overwritten; an existing file that
    is not a smslink results file is overwritten only with `overwrite`. Both are checked
    when the writer opens and again just before the finished file is renamed into place.
    """

    def __init__(
        self,
        path: Path,
        input_columns: Sequence[str],
        *,
        delimiter: str | None = None,
        bom: bool = False,
        sep_line: bool = False,
        overwrite: bool = False,
        input_path: Path | None = None,
    ) -> None:
        path = Path(path)
        _check_format(path)
        suffix = path.suffix.lower()
        self.path = path
        self.input_path = None if input_path is None else Path(input_path)
        self.overwrite = overwrite
        self.input_columns = list(input_columns)
        self.result_names = result_column_names(self.input_columns)
        #: The output's column names, in the order they are written (before any ``'``
        #: that `spreadsheet_safe` puts in front of a name in a CSV header).
        self.columns = self.input_columns + list(self.result_names.values())
        self._csv = suffix in _delimited_suffixes()
        if suffix == TSV_SUFFIX:
            delimiter = "\t"
        elif delimiter is None:
            delimiter = ","
        if delimiter not in DELIMITERS:
            raise ValueError(f"delimiter must be one of {DELIMITERS!r}, not {delimiter!r}")
        #: The CSV delimiter (meaningless for JSON Lines).
        self.delimiter = delimiter
        refusal = _refusal(path, self.input_path, overwrite)
        if refusal is not None:
            raise refusal
        remove_stale_temporaries(path)
        self._tmp = _temp_path(path)
        # O_EXCL: never write into someone else's file; mode 0o666 lets the umask decide the
        # final permissions, as for any file the user creates (mkstemp would force 0600).
        try:
            fd = os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except OSError as exc:
            raise AudienceError(f"{path}: cannot write results there: {exc.strerror}") from None
        self._file: IO[str] | None = open(fd, "w", encoding="utf-8", newline="")  # noqa: SIM115
        self._writer = None
        try:
            if self._csv:
                if bom:
                    self._file.write(_BOM)
                if sep_line:
                    self._file.write(f"sep={delimiter}\r\n")
                self._writer = csv.writer(self._file, delimiter=delimiter)
                self._writer.writerow([spreadsheet_safe(c) for c in self.columns])
        except BaseException:
            self.abort()
            raise

    def write(self, values: Mapping[str, str], result: Mapping[str, object]) -> None:
        """Write one row: the input record's columns in order, then the result columns.

        Input columns missing from `values` (JSON Lines records need not have every key)
        are written empty. A key of `result` that is not a result column is a bug, so it
        raises rather than being silently dropped.
        """
        if self._file is None:
            raise ValueError("the results file is already closed")
        if not result.keys() <= _RESULT_COLUMN_SET:
            unknown = set(result) - _RESULT_COLUMN_SET
            raise ValueError(f"not result columns: {', '.join(sorted(unknown))}")
        inputs = [values.get(c, "") for c in self.input_columns]
        if self._writer is not None:
            # One pass per cell: this runs for every record of every run.
            cells = [_safe_cell(v) for v in inputs]
            cells += [_safe_cell(result.get(c)) for c in RESULT_COLUMNS]
            self._writer.writerow(cells)
            return
        outputs = [_plain(result.get(c)) for c in RESULT_COLUMNS]
        row = dict(zip(self.columns, inputs + outputs, strict=True))
        self._file.write(json.dumps(row, ensure_ascii=False) + "\n")

    def close(self) -> None:
        """Flush the rows to disk and put the file in place atomically.

        Just before the rename the target is checked again: if it has meanwhile become the
        audience file or someone's other file (and `overwrite` is off), AudienceError is
        raised, the temporary file removed and the target left as it is.
        """
        if self._file is None:
            return
        file, self._file = self._file, None
        try:
            try:
                file.flush()
                os.fsync(file.fileno())
            finally:
                file.close()
            problem = _target_problem(self.path, self.input_path, self.overwrite)
            if problem is not None:
                what, fix = problem
                raise AudienceError(
                    f"{self.path} {what} (it changed while the results were being written, "
                    f"so they were not put there): {fix}",
                    remedy=Remedy(Action.CHOOSE_OUTPUT, {"path": str(self.path)}),
                )
            os.replace(self._tmp, self.path)
        except BaseException as exc:
            self._tmp.unlink(missing_ok=True)
            if isinstance(exc, OSError):
                raise AudienceError(
                    f"{self.path}: cannot write results there: {exc.strerror or exc}"
                ) from exc
            raise

    def abort(self) -> None:
        """Discard everything written; any earlier file at the path stays as it was.
        Never raises for the file: closing flushes what is buffered, which fails on a
        full disk, and the error being handled (a stop, Ctrl-C) is the one to report."""
        try:
            if self._file is not None:
                file, self._file = self._file, None
                with contextlib.suppress(OSError):
                    file.close()
        finally:
            with contextlib.suppress(OSError):
                self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> ResultWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            try:
                self.close()
            except BaseException:
                self.abort()
                raise
        else:
            self.abort()


#: Start a results file for an audience with these columns; format by extension (the
#: writer itself, under the name callers read best).
open_results = ResultWriter


def _safe_cell(value: object) -> str:
    """A value as a delimited file's cell: `_plain`'s text (empty for None), made safe
    for spreadsheets. The common cell, text that cannot start a formula, costs one look at
    its first character."""
    if type(value) is not str:
        value = "" if value is None else str(_plain(value))
    if value and value[0] in _FORMULA_STARTS:
        if value[0] == "+" and value[1:].isdigit() and value.isascii() and len(value) > 1:
            return value  # E.164, as every recipient's `to` is: a plain number to Excel
        return spreadsheet_safe(value)
    return value


def _plain(value: object) -> str | int | float | bool | None:
    """A result value as JSON can hold it: enums by value, datetimes in ISO 8601."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, enum.Enum):
        return _plain(value.value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)
