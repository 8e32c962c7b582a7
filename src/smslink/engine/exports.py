"""Writing part of a run's results: only the records that did not get the message.

The same results file as `export_results` writes (the input record, then the result
columns; the audience's delimiter and BOM; spreadsheet-safe cells), with the rows of the
records whose final status is a problem: `error`, `undelivered`, `failed`, or `sent`
(accepted by the carrier, but no receipt ever said it arrived). Records not final yet are
not problems, and records not read yet are left out. Rows come in input order.
"""

from __future__ import annotations

from pathlib import Path

from smslink.audience.writers import check_results_path
from smslink.domain.models import ResultStatus, Run
from smslink.engine.results import ExportSummary, result_fields, run_results_writer
from smslink.store import Store

#: The final statuses an export of problems lists.
PROBLEM_STATUSES = (
    ResultStatus.ERROR,
    ResultStatus.UNDELIVERED,
    ResultStatus.FAILED,
    ResultStatus.SENT,
)


def export_problems(
    store: Store, run: Run, path: Path, *, overwrite: bool = False
) -> ExportSummary:
    """Write the results of `run`'s problem records (see the module) to `path`."""
    check_results_path(path, input_path=Path(run.input_path), overwrite=overwrite)
    statuses = [s.value for s in PROBLEM_STATUSES]
    rows = 0
    with run_results_writer(run, path, overwrite=overwrite) as writer:
        last = -1
        while True:
            page = store.deliveries.page(run.id, statuses=statuses, after_seq=last, limit=1000)
            for delivery in page:
                writer.write(delivery.row, result_fields(delivery))
            rows += len(page)
            if len(page) < 1000:
                break
            last = page[-1].seq
    return ExportSummary(path, rows, 0)
