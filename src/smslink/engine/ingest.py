"""Reading an audience into the store, a batch at a time.

The audience is streamed, never held whole: each batch of prepared deliveries is written in
one transaction together with the run's record count, so a crash mid-ingest leaves the
store saying exactly how many records to skip when the run resumes. Batches are small so
that sending, which starts after the first one, is never held up for long.

Reading shares the event loop with the answers from Twilio, and every millisecond the loop
spends preparing records (reading, checking each phone, rendering: 10-35 us a record) is
a millisecond that answers wait. So preparing pauses for the loop every `pause_every`
records (bench/RESULTS.md section 22).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

from smslink.audience.readers import AudienceError, AudienceReader, file_digest, open_audience
from smslink.domain.errors import InvalidInput, say
from smslink.domain.models import Delivery, Run, Stage
from smslink.engine.counters import RunCounters
from smslink.engine.prepare import Recipe, prepare
from smslink.store import LeaseHolder, Store

#: Records prepared between two looks at the event loop: 50 hold it under 2 ms.
PAUSE_EVERY = 50


def ingest_batches(
    store: Store,
    run_id: int,
    reader: AudienceReader,
    recipe: Recipe,
    counters: RunCounters,
    *,
    already_stored: int = 0,
    known_columns: list[str] | None = None,
    batch_size: int = 250,
    pause_every: int = 0,
    holder: LeaseHolder | None = None,
) -> Iterator[int | None]:
    """Store every record of `reader` after the first `already_stored`, yielding the
    number stored after each batch.

    With `pause_every`, also yields None after every that many records prepared (and
    every ten times as many skipped), for a caller on the event loop to let answers in.
    Closed at such a pause (the caller was cancelled), it stores nothing of the batch in
    hand: a generator may be closed at any later time, when the run may have passed to
    another process reading on from the stored total.

    `known_columns` are the columns seen before a resume: a JSON Lines audience learns its
    columns as it goes, and skipped records may have had keys the rest do not. With
    `holder`, each batch is stored only while that process holds the run's lease
    (LeaseTaken otherwise: `DeliveryStore.add_deliveries`).
    """

    def columns() -> list[str]:
        merged = list(known_columns or [])
        merged += [c for c in reader.columns if c not in merged]
        return merged

    # A resume passes over what was stored, in slices with pauses too: 100,000 records
    # skipped in one go hold the loop ~0.12 s (a CSV with two short columns).
    skip_slice = pause_every * 10 if pause_every else already_stored
    for skipped in range(0, already_stored, max(1, skip_slice)):
        reader.skip(min(skip_slice, already_stored - skipped))
        if pause_every:
            yield None
    seq = counters.ingested = already_stored
    batch: list[Delivery] = []
    batch_yielded_last = False  # the last batch was yielded already: no count twice

    def store_batch() -> None:
        """Store the batch in hand, taken out first: one that failed to store is not
        tried again here (a resume reads those records again), and one stored is never
        stored twice, even when an interrupt lands while it is counted."""
        nonlocal batch
        stored, batch = batch, []
        store.deliveries.add_deliveries(run_id, stored, columns(), holder=holder)
        counters.ingested = seq
        for delivery in stored:  # counted once stored: a batch given up is not
            if delivery.stage is Stage.DONE and delivery.status is not None:
                counters.finished(delivery.status)

    try:
        for record in reader:
            batch.append(prepare(run_id, seq, record, recipe))
            seq += 1
            batch_yielded_last = False
            if pause_every and len(batch) % pause_every == 0 and len(batch) < batch_size:
                yield None
            if len(batch) >= batch_size:
                store_batch()
                batch_yielded_last = True
                yield seq
    except GeneratorExit:
        raise  # closed at a pause: the batch in hand is not stored (see above)
    except BaseException:
        # The file cannot be read on, a record cannot be prepared, Ctrl-C: what was
        # read before is kept and sent.
        if batch:
            store_batch()
        raise
    if batch:
        store_batch()
    counters.total = seq
    if not batch_yielded_last:
        yield seq


async def read_audience(
    store: Store,
    run: Run,
    recipe: Recipe,
    counters: RunCounters,
    on_batch: Callable[[], None],
    *,
    batch_size: int = 250,
    holder: LeaseHolder | None = None,
) -> None:
    """Store the rest of the run's audience while it is being sent, waking the sender
    after each batch; marks the run's audience complete at the end. Pauses for the loop
    every PAUSE_EVERY records, and stores (and marks complete) only in `holder`'s name:
    LeaseTaken once another process has taken the run over (see `ingest_batches`).

    Raises AudienceError (or OSError) when the file cannot be read on or changed while it
    was read: the records stored before that point are sent, and a resume reads on from
    there once the file is as it was.
    """
    encoding = run.snapshot.encoding
    with open_audience(Path(run.input_path), encoding) as reader:
        for stored in ingest_batches(
            store,
            run.id,
            reader,
            recipe,
            counters,
            already_stored=run.total,
            known_columns=run.columns,
            batch_size=batch_size,
            pause_every=PAUSE_EVERY,
            holder=holder,
        ):
            if stored is not None:
                on_batch()
            await asyncio.sleep(0)  # let the senders and the tracker run, within a batch too
        columns = list(run.columns) + [c for c in reader.columns if c not in run.columns]
        _check_same_file(run, reader)
    store.runs.update_run(run.id, columns=columns, audience_complete=True, holder=holder)


def check_audience_unchanged(run: Run) -> None:
    """Raise InvalidInput when the audience file is gone or differs from the one the run
    started with: reading on from record N of another file would mix two audiences and
    silently skip or repeat people."""
    recorded = run.snapshot.audience
    if recorded is None:
        return  # a run started by an older smslink: nothing to compare with
    path = Path(run.input_path)
    try:
        size, sha256 = file_digest(path)
    except OSError as error:
        raise InvalidInput(
            say(
                "run %(run)s cannot read on: its audience %(path)s cannot be read "
                "(%(reason)s); put the file back exactly as it was",
                run=str(run.id),
                path=str(path),
                reason=error.strerror,
            )
        ) from None
    if (size, sha256) == (recorded.size, recorded.sha256):
        return
    raise InvalidInput(
        say(
            "run %(run)s cannot read on: its audience %(path)s has changed since the run "
            "started (%(then)s bytes then, %(now)s now; the content differs). Reading on from "
            "record %(record)s of another file would mix two audiences: put the original "
            "file back, or start a new run with the new file",
            run=str(run.id),
            path=str(path),
            then=recorded.size,
            now=size,
            record=run.total + 1,
        )
    )


def _check_same_file(run: Run, reader: AudienceReader) -> None:
    """Raise AudienceError when the bytes just read are not those the run started with
    (the file was replaced or edited while the run read it): the records stored may then
    mix two audiences, and the run must not be marked as having read its audience."""
    recorded = run.snapshot.audience
    if recorded is None or reader.sha256 is None:
        return
    if reader.sha256 != recorded.sha256:
        raise AudienceError(
            say(
                "%(file)s changed while the run was reading it (its content is no longer "
                "what was checked when the run started)",
                file=Path(run.input_path).name,
            )
        )
