"""Per-recipient results written back as CSV or JSON Lines, all or nothing.

Each result row is the recipient's input record followed by the result columns, so a
marketer can join results to the campaign on any of their own fields. The file appears
only when complete: rows go to a temporary file beside the target, which is renamed over
it on a successful close, so a crash never leaves a half-written results file that looks
finished (nor destroys a previous one).

Result column names: each of `RESULT_COLUMNS` keeps its name unless an input column has
the same name ignoring case; then it is written as ``smslink_<name>``, and if that is taken
too, as ``smslink_<name>_2``, ``smslink_<name>_3`` and so on. Input columns are never
renamed, so the input half of a row reads exactly like the audience.
"""

from __future__ import annotations

import csv
import enum
import json
import os
import secrets
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from types import TracebackType
from typing import IO

from smslink.audience.readers import CSV_SUFFIXES, JSONL_SUFFIXES, AudienceError

RESULT_COLUMNS = (
    "to",
    "status",
    "error_code",
    "error_message",
    "message_sid",
    "segments",
    "timestamp",
)


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


class ResultWriter:
    """Writes result rows to a temporary file and publishes it on a successful close.

    Use as a context manager: leaving the block normally publishes the file, leaving it
    with an exception discards it. `close()` and `abort()` do the same explicitly.
    """

    def __init__(self, path: Path, input_columns: Sequence[str]) -> None:
        path = Path(path)
        _check_format(path)
        suffix = path.suffix.lower()
        self.path = path
        self.input_columns = list(input_columns)
        self.result_names = result_column_names(self.input_columns)
        #: The output's column names, in the order they are written.
        self.columns = self.input_columns + list(self.result_names.values())
        self._csv = suffix in CSV_SUFFIXES
        self._tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        # O_EXCL: never write into someone else's file; mode 0o666 lets the umask decide the
        # final permissions, as for any file the user creates (mkstemp would force 0600).
        try:
            fd = os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except OSError as exc:
            raise AudienceError(f"{path}: cannot write results there: {exc.strerror}") from None
        self._file: IO[str] | None = open(fd, "w", encoding="utf-8", newline="")  # noqa: SIM115
        self._writer = csv.writer(self._file) if self._csv else None
        if self._writer is not None:
            self._writer.writerow(self.columns)

    def write(self, values: Mapping[str, str], result: Mapping[str, object]) -> None:
        """Write one row: the input record's columns in order, then the result columns.

        Input columns missing from `values` (JSON Lines records need not have every key)
        are written empty. A key of `result` that is not a result column is a bug, so it
        raises rather than being silently dropped.
        """
        if self._file is None:
            raise ValueError("the results file is already closed")
        unknown = set(result) - set(RESULT_COLUMNS)
        if unknown:
            raise ValueError(f"not result columns: {', '.join(sorted(unknown))}")
        inputs = [values.get(c, "") for c in self.input_columns]
        outputs = [_plain(result.get(c)) for c in RESULT_COLUMNS]
        if self._writer is not None:
            self._writer.writerow(inputs + ["" if v is None else str(v) for v in outputs])
        else:
            row = dict(zip(self.columns, inputs + outputs, strict=True))
            self._file.write(json.dumps(row, ensure_ascii=False) + "\n")

    def close(self) -> None:
        """Flush the rows to disk and put the file in place atomically."""
        if self._file is None:
            return
        file, self._file = self._file, None
        try:
            file.flush()
            os.fsync(file.fileno())
        finally:
            file.close()
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        """Discard everything written; any earlier file at the path stays as it was."""
        if self._file is not None:
            file, self._file = self._file, None
            file.close()
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


def check_results_path(path: Path) -> None:
    """Raise AudienceError unless a results file can be written at `path`.

    A send checks this before its first message, not after its last.
    """
    _check_format(path)
    folder = path.resolve().parent
    if not folder.is_dir():
        raise AudienceError(f"{path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise AudienceError(f"{path}: the folder {folder} is not writable")


def _check_format(path: Path) -> None:
    suffix = path.suffix.lower()
    if suffix not in CSV_SUFFIXES | JSONL_SUFFIXES:
        raise AudienceError(
            f"{path.name}: unknown results format {suffix or '(no extension)'!r}; "
            "name the results file .csv or .jsonl"
        )


def open_results(path: Path, input_columns: Sequence[str]) -> ResultWriter:
    """Start a results file for an audience with these columns; format by extension."""
    return ResultWriter(path, input_columns)


def _plain(value: object) -> str | int | float | bool | None:
    """A result value as JSON can hold it: enums by value, datetimes in ISO 8601."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, enum.Enum):
        return _plain(value.value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)
