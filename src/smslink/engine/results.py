"""Writing a run's results file: one row per input record, in input order.

Read back from the store, never from memory, so results can be written after a resume just
as after a run that never stopped.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from smslink.audience.writers import open_results
from smslink.models import Delivery, ResultStatus, Run, Stage
from smslink.store import Store


def write_results(store: Store, run: Run) -> Path:
    """Write (atomically) the results of `run` to its output path and return that path."""
    path = Path(run.output_path)
    with open_results(path, run.columns) as writer:
        for delivery in store.iter_deliveries(run.id, with_row=True):
            writer.write(delivery.row, result_fields(delivery))
    return path


def result_fields(delivery: Delivery) -> dict[str, object]:
    """The result columns of one delivery, as the results file shows them."""
    status = delivery.status
    error_message = delivery.error_message
    if delivery.stage is not Stage.DONE or status is None:
        # Cannot happen after a finished run; if it ever does, say so rather than drop it.
        status = ResultStatus.ERROR
        error_message = f"not finished (stage {delivery.stage}): resume the run"
    return {
        "to": delivery.to,
        "status": str(status),
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
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
