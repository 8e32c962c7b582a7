"""Reading an audience into the store, a batch at a time.

The audience is streamed, never held whole: each batch of prepared deliveries is written in
one transaction together with the run's record count, so a crash mid-ingest leaves the
store saying exactly how many records to skip when the run resumes. Batches are small so
that sending, which starts after the first one, is never held up for long.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

from smslink.audience.readers import AudienceError, AudienceReader, open_audience
from smslink.engine.counters import RunCounters
from smslink.engine.prepare import Recipe, prepare
from smslink.models import Delivery, Run, Stage
from smslink.store import Store

BATCH_SIZE = 250


def ingest_batches(
    store: Store,
    run_id: int,
    reader: AudienceReader,
    recipe: Recipe,
    counters: RunCounters,
    *,
    already_stored: int = 0,
    known_columns: list[str] | None = None,
    batch_size: int = BATCH_SIZE,
) -> Iterator[int]:
    """Store every record of `reader` after the first `already_stored`, yielding the
    number stored after each batch.

    `known_columns` are the columns seen before a resume: a JSON Lines audience learns its
    columns as it goes, and skipped records may have had keys the rest do not.
    """

    def columns() -> list[str]:
        merged = list(known_columns or [])
        merged += [c for c in reader.columns if c not in merged]
        return merged

    if already_stored:
        reader.skip(already_stored)
    seq = counters.ingested = already_stored
    batch: list[Delivery] = []
    try:
        for record in reader:
            delivery = prepare(run_id, seq, record, recipe)
            batch.append(delivery)
            if delivery.stage is Stage.DONE and delivery.status is not None:
                counters.finished(delivery.status)
            seq += 1
            if len(batch) >= batch_size:
                store.add_deliveries(run_id, batch, columns())
                counters.ingested = seq
                batch = []
                yield seq
    finally:
        # Also when the file cannot be read on: what was read before is kept and sent.
        if batch:
            store.add_deliveries(run_id, batch, columns())
            counters.ingested = seq
    counters.total = seq
    yield seq


async def read_audience(
    store: Store, run: Run, recipe: Recipe, counters: RunCounters, on_batch: Callable[[], None]
) -> None:
    """Store the rest of the run's audience while it is being sent, waking the sender
    after each batch; marks the run's audience complete at the end.

    Raises AudienceError (or OSError) when the file cannot be read on: the records stored
    before that point are sent, and a resume reads on from there.
    """
    encoding = run.settings.get("encoding")
    with open_audience(Path(run.input_path), str(encoding) if encoding else None) as reader:
        for _ in ingest_batches(
            store,
            run.id,
            reader,
            recipe,
            counters,
            already_stored=run.total,
            known_columns=run.columns,
        ):
            on_batch()
            await asyncio.sleep(0)  # let the sender and tracker run between batches
        columns = list(run.columns) + [c for c in reader.columns if c not in run.columns]
        _check_same_file(run, reader)
    store.update_run(run.id, columns=columns, audience_complete=True)


def _check_same_file(run: Run, reader: AudienceReader) -> None:
    """Raise AudienceError when the bytes just read are not those the run started with
    (the file was replaced or edited while the run read it): the records stored may then
    mix two audiences, and the run must not be marked as having read its audience."""
    recorded = run.settings.get("audience")
    if not isinstance(recorded, dict) or reader.sha256 is None:
        return
    if reader.sha256 != recorded.get("sha256"):
        raise AudienceError(
            f"{Path(run.input_path).name} changed while the run was reading it (its content "
            "is no longer what was checked when the run started)"
        )
