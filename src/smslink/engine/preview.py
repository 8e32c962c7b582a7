"""Showing what a send would do, without sending: a preview, and a dry run of a send.

Both use `prepare`, the same function a real send uses, over the whole audience, so their
totals (messages, segments, records that would fail) are exactly what a send would meet.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from smslink.audience.readers import AudienceRecord, open_audience, scan_audience
from smslink.audience.writers import check_results_path, open_results
from smslink.domain.models import Delivery, Stage
from smslink.domain.segments import count_segments
from smslink.engine.prepare import Recipe, prepare
from smslink.engine.results import iso_utc

#: Problems listed by record in a summary; the rest are only counted.
LISTED_PROBLEMS = 20


@dataclass(slots=True)
class PreviewTotals:
    records: int = 0
    messages: int = 0  # records that would be sent
    segments: int = 0  # what Twilio would bill and count against the sender's rate
    by_encoding: Counter[str] = field(default_factory=Counter)
    problems: list[tuple[int, str]] = field(default_factory=list)  # (record number, reason)
    problem_count: int = 0


def prepared(
    recipe: Recipe, path: Path, encoding: str | None
) -> Iterator[tuple[AudienceRecord, Delivery]]:
    """Every record of the audience with what a send would make of it."""
    with open_audience(path, encoding) as reader:
        for seq, record in enumerate(reader):
            yield record, prepare(0, seq, record, recipe)


def tally(totals: PreviewTotals, record: AudienceRecord, delivery: Delivery) -> str | None:
    """Add one prepared record to the totals; returns its encoding when it would be sent."""
    totals.records += 1
    if delivery.stage is Stage.DONE:
        totals.problem_count += 1
        if len(totals.problems) < LISTED_PROBLEMS:
            totals.problems.append((record.number, delivery.error_message or "rejected"))
        return None
    encoding = count_segments(delivery.body or "").encoding
    totals.messages += 1
    totals.segments += delivery.segments
    totals.by_encoding[encoding] += 1
    return encoding


def dry_run(
    recipe: Recipe, path: Path, output: Path, encoding: str | None, *, overwrite: bool = False
) -> PreviewTotals:
    """Write the results file a send would start from: `ready` or `error` per record.

    The audience is read whole first (`scan_audience`), so a file a send would refuse is
    refused here too, before anything is written."""
    scan = scan_audience(path, encoding)
    check_results_path(output, input_path=path, overwrite=overwrite)
    totals = PreviewTotals()
    with open_results(
        output,
        list(scan.columns),
        delimiter=scan.delimiter,
        bom=scan.excel,
        sep_line=scan.sep_line,
        overwrite=overwrite,
        input_path=path,
    ) as writer:
        for record, delivery in prepared(recipe, path, encoding):
            tally(totals, record, delivery)
            writer.write(
                record.values,
                {
                    "to": delivery.to,
                    "status": "ready" if delivery.stage is Stage.PENDING else "error",
                    "error_code": None,
                    "error_message": delivery.error_message,
                    "message_sid": None,
                    "segments": delivery.segments or None,
                    "timestamp": iso_utc(delivery.updated_at),
                },
            )
    return totals
