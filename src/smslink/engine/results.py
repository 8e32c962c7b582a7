"""Writing a run's results file: one row per input record, in input order.

Read back from the store, never from memory, so results can be written after a resume just
as after a run that never stopped, and exported again at any time (`export_results`), to
any file: the store, not the file, is where a run's results live.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from smslink.audience.readers import AudienceError, file_digest, open_audience
from smslink.audience.writers import ResultWriter, check_results_path, open_results
from smslink.domain.errors import say
from smslink.domain.models import Delivery, Run, Stage
from smslink.store import Store

#: The status an export gives a record whose result is not final yet (the run is still
#: sending, or stopped). Never written by a completed run.
UNFINISHED = "unfinished"


@dataclass(frozen=True, slots=True)
class ExportSummary:
    path: Path
    rows: int
    unfinished: int  # rows whose result is not final yet


def write_results(store: Store, run: Run, ahead: ResultsAhead | None = None) -> Path:
    """Write (atomically) the results of a finished `run` to its output path: the rows
    `ahead` has not written yet, when given, and then the file is put in place.

    Raises AudienceError when the file cannot be written there (it became the input, or a
    file that is not a results file appeared, or the folder refuses): the run stops and
    its results can be written elsewhere.
    """
    path = Path(run.output_path)
    if ahead is not None and ahead.finish(run):
        return path
    _write(store, run, path, overwrite=run.snapshot.overwrite)
    return path


class ResultsAhead:
    """A file run's results, written while its last messages are still being tracked.

    A finished (DONE) delivery is never written again, so its row can go to the results
    file's temporary as soon as it and every row before it are done, a few hundred at a
    time while the run sends. When the last message is final, only the rest is left:
    at 100,000 records, writing the whole file had taken ~2 s after the last send
    (bench/RESULTS.md section 17). Nothing is at the output path until `finish` (called
    by `write_results`) puts the file there, with the same checks; a run that stops
    leaves none. Rows are read back from the store, as `write_results` reads them.

    Only a head start: when anything goes wrong here (the output path refused, the
    store failing), the temporary is dropped and `write_results` writes the whole file
    itself, and reports what is wrong.
    """

    def __init__(self, store: Store, run_id: int, *, chunk: int = 500) -> None:
        self._store = store
        self._run_id = run_id
        self._chunk = chunk
        self._writer: ResultWriter | None = None
        #: The output path and overwrite setting the temporary was opened for.
        self._opened_for: tuple[str, bool] | None = None
        self._written_to = -1  # the seq of the last row written
        self._given_up = False

    @property
    def rows_written(self) -> int:
        """Rows in the temporary so far (the first ones, in input order)."""
        return self._written_to + 1

    async def follow(self, every_s: float = 1.0) -> None:
        """Catch up every `every_s` seconds until cancelled."""
        while not self._given_up:
            await asyncio.sleep(every_s)
            await self.catch_up()

    async def catch_up(self) -> None:
        """Write the finished rows that follow those written, `chunk` rows at a time
        with the event loop's other work in between."""
        if self._given_up:
            return
        try:
            if self._writer is None:
                run = self._store.runs.get_run(self._run_id)
                if not run.audience_complete:
                    return  # a JSON Lines audience may still add columns to the header
                path = Path(run.output_path)
                self._writer = run_results_writer(run, path, overwrite=run.snapshot.overwrite)
                self._opened_for = (run.output_path, run.snapshot.overwrite)
            while self._write_finished() == self._chunk:
                await asyncio.sleep(0)
        except Exception:  # any failure: write_results writes it all and says what is wrong
            self.abort()
            self._given_up = True

    def _write_finished(self) -> int:
        """Write up to `chunk` rows that are done, in order; how many were written."""
        assert self._writer is not None
        written = 0
        rows = self._store.deliveries.iter_results(
            self._run_id, after_seq=self._written_to, batch=self._chunk
        )
        for delivery in itertools.islice(rows, self._chunk):
            if delivery.stage is not Stage.DONE:
                break
            self._writer.write(delivery.row, result_fields(delivery))
            self._written_to = delivery.seq
            written += 1
        return written

    def finish(self, run: Run) -> bool:
        """Write the rest of the finished `run`'s rows and put the file in place; False
        (and nothing written) when there is no head start to finish, or it was for
        another output than the run's now (redirected meanwhile: `runs resume --output`)."""
        if self._opened_for != (run.output_path, run.snapshot.overwrite):
            self.abort()
        writer, self._writer = self._writer, None
        if writer is None:
            return False
        with writer:  # closed (checked, put in place) or, on an error, dropped
            _write_rows(
                writer,
                self._store.deliveries.iter_results(self._run_id, after_seq=self._written_to),
            )
        return True

    def abort(self) -> None:
        """Drop the temporary, if any: nothing was put in place."""
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.abort()


def export_results(store: Store, run: Run, path: Path, *, overwrite: bool = False) -> ExportSummary:
    """Write the results of `run` as they stand now to `path` (CSV, TSV or JSON Lines by
    its extension), whatever the run's state: records whose result is not final yet say
    `unfinished`. Checks the path first (not the audience itself, not a foreign file)."""
    check_results_path(path, input_path=Path(run.input_path), overwrite=overwrite)
    rows, unfinished = _write(store, run, path, overwrite=overwrite)
    return ExportSummary(path, rows, unfinished)


def _write(store: Store, run: Run, path: Path, *, overwrite: bool) -> tuple[int, int]:
    with run_results_writer(run, path, overwrite=overwrite) as writer:
        rows, unfinished = _write_rows(writer, store.deliveries.iter_results(run.id))
        if not run.audience_complete:
            for values in _unread_records(run, writer.input_columns):
                rows += 1
                unfinished += 1
                writer.write(values, {"status": UNFINISHED, "error_message": "not read yet"})
    return rows, unfinished


def _write_rows(writer: ResultWriter, deliveries: Iterable[Delivery]) -> tuple[int, int]:
    """Write each delivery's row; (rows, rows whose result is not final yet)."""
    rows = unfinished = 0
    for delivery in deliveries:
        fields = result_fields(delivery)
        rows += 1
        unfinished += fields["status"] == UNFINISHED
        writer.write(delivery.row, fields)
    return rows, unfinished


def run_results_writer(run: Run, path: Path, *, overwrite: bool) -> ResultWriter:
    """The results file of `run` at `path`, written the way its audience came in."""
    audience = run.snapshot.audience
    return open_results(
        path,
        run.columns,
        # Spreadsheet users get back what they gave: their delimiter, and a BOM when the
        # audience came from Excel, so umlauts and columns open right in European Excel.
        delimiter=audience.delimiter if audience else None,
        bom=audience.excel if audience else False,
        sep_line=audience.sep_line if audience else False,
        overwrite=overwrite,
        input_path=Path(run.input_path),
    )


def _unread_records(run: Run, columns: list[str]) -> Iterator[dict[str, str]]:
    """The records of an unfinished run that are not in the store yet, read from its
    audience file, so an export has a row for every record. Raises AudienceError when the
    file is gone or changed: then those rows cannot be told."""
    recorded = run.snapshot.audience
    path = Path(run.input_path)
    if recorded is not None:
        try:
            if file_digest(path) != (recorded.size, recorded.sha256):
                raise OSError(say("it has changed since the run started"))
        except OSError as error:
            raise AudienceError(
                say(
                    "run %(run)s has read only %(records)s records of its audience, and the "
                    "rest cannot be listed: %(path)s %(reason)s",
                    run=str(run.id),
                    records=run.total,
                    path=str(path),
                    reason=error.strerror or (error.args[0] if len(error.args) == 1 else error),
                )
            ) from None
    with open_audience(path, run.snapshot.encoding) as reader:
        reader.skip(run.total)
        for record in reader:
            yield record.values


def result_fields(delivery: Delivery) -> dict[str, object]:
    """The result columns of one delivery, as the results file shows them."""
    if delivery.stage is Stage.DONE and delivery.status is not None:
        status, error_message = str(delivery.status), delivery.error_message
    else:
        twilio = f", Twilio status {delivery.twilio_status}" if delivery.twilio_status else ""
        status, error_message = UNFINISHED, f"not final yet ({delivery.stage}{twilio})"
    return {
        "to": delivery.to,
        "status": status,
        "error_code": delivery.error_code,
        "error_message": error_message,
        "message_sid": delivery.message_sid,
        "segments": delivery.segments or None,
        "timestamp": iso_utc(delivery.updated_at),
    }


def iso_utc(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with a Z, to the second: what spreadsheets and databases parse."""
    if moment is None:
        return None
    # isoformat, not strftime: a third of the cost, once per row of every results file.
    return moment.astimezone(UTC).replace(microsecond=0, tzinfo=None).isoformat() + "Z"
