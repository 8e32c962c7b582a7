"""Reading an audience into the store, a batch at a time.

The audience is streamed, never held whole: each batch of prepared deliveries is written in
one transaction together with the run's record count, so a crash mid-ingest leaves the
store saying exactly how many records to skip when the run resumes.
"""

from __future__ import annotations

from smslink.audience.readers import AudienceReader
from smslink.engine.counters import RunCounters
from smslink.engine.prepare import Recipe, prepare
from smslink.models import Delivery, Stage
from smslink.store import Store

BATCH_SIZE = 1000


def ingest(
    store: Store,
    run_id: int,
    reader: AudienceReader,
    recipe: Recipe,
    counters: RunCounters,
    *,
    already_stored: int = 0,
    known_columns: list[str] | None = None,
) -> int:
    """Store every record of `reader` after the first `already_stored`; returns the total.

    `known_columns` are the columns seen before a resume: a JSON Lines audience learns its
    columns as it goes, and skipped records may have had keys the rest do not.
    """

    def columns() -> list[str]:
        merged = list(known_columns or [])
        merged += [c for c in reader.columns if c not in merged]
        return merged

    if already_stored:
        reader.skip(already_stored)
    seq = already_stored
    batch: list[Delivery] = []
    for record in reader:
        delivery = prepare(run_id, seq, record, recipe)
        batch.append(delivery)
        if delivery.stage is Stage.DONE and delivery.status is not None:
            counters.finished(delivery.status)
        seq += 1
        if len(batch) >= BATCH_SIZE:
            store.add_deliveries(run_id, batch, columns())
            counters.ingested = seq
            batch = []
    if batch:
        store.add_deliveries(run_id, batch, columns())
    counters.ingested = seq
    counters.total = seq
    return seq
