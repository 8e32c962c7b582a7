"""Reading an audience into the store (engine/ingest.py): a batch at a time with the run's
total always equal to what is stored, a resume that skips exactly what was stored, and an
audience file that changed refused before reading on, or noticed at the end of reading.
Real SQLite store and audience files."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from smslink.audience.readers import AudienceError, open_audience
from smslink.domain.errors import InvalidInput
from smslink.domain.models import ResultStatus, Run, Stage
from smslink.engine import RunRequest, start_run
from smslink.engine.counters import RunCounters
from smslink.engine.ingest import check_audience_unchanged, ingest_batches, read_audience
from smslink.engine.prepare import Recipe
from smslink.store import Store
from tests.engine.campaign import (
    TOUCHPOINT,
    add_touchpoint,
    phone,
    started_run,
    write_audience,
)

RECIPE = Recipe.from_touchpoint(TOUCHPOINT, "US")


def _stored(store: Store, run_id: int) -> list[tuple[int, str, str | None]]:
    return [(d.seq, d.row["name"], d.to) for d in store.deliveries.iter_deliveries(run_id)]


def _run(store: Store, run_id: int) -> Run:
    return store.runs.get_run(run_id)


def _stopped_after(store: Store, run_id: int, *, batches: int, batch_size: int) -> list[int | None]:
    """Read the run's audience `batches` batches far and stop there, as an interrupted
    process does; the totals stored after each batch."""
    with open_audience(Path(_run(store, run_id).input_path)) as reader:
        first = ingest_batches(store, run_id, reader, RECIPE, RunCounters(), batch_size=batch_size)
        stored = [next(first) for _ in range(batches)]
        first.close()
    return stored


def test_each_batch_is_stored_with_the_runs_total(store: Store, tmp_path: Path) -> None:
    add_touchpoint(store)
    audience = write_audience(tmp_path / "audience.csv", 10)
    lines = audience.read_text(encoding="utf-8").splitlines()
    lines[5] = "N4,not a phone"  # record 5 cannot be sent: stored as done, with its reason
    audience.write_text("\n".join(lines) + "\n", encoding="utf-8")
    run_id = start_run(store, RunRequest("t", audience, tmp_path / "results.csv"))
    counters = RunCounters()
    seen: list[tuple[int, int, int]] = []

    with open_audience(audience) as reader:
        for stored in ingest_batches(store, run_id, reader, RECIPE, counters, batch_size=3):
            seen.append((stored, _run(store, run_id).total, store.deliveries.totals(run_id).total))

    assert seen == [(3, 3, 3), (6, 6, 6), (9, 9, 9), (10, 10, 10)]
    assert [seq for seq, _, _ in _stored(store, run_id)] == list(range(10))
    # A last batch that is full is counted once, not again at the end.
    with open_audience(audience) as reader:
        again = start_run(store, RunRequest("t", audience, tmp_path / "2.csv", again=True))
        counts = list(ingest_batches(store, again, reader, RECIPE, RunCounters(), batch_size=5))
    assert counts == [5, 10]
    assert _run(store, run_id).columns == ["name", "phone"]
    rejected = list(store.deliveries.iter_deliveries(run_id, stages=[Stage.DONE]))
    assert [(d.seq, d.status) for d in rejected] == [(4, ResultStatus.ERROR)]
    assert "column 'phone'" in (rejected[0].error_message or "")
    assert (counters.ingested, counters.total, counters.errors, counters.done) == (10, 10, 1, 1)


def test_a_resume_skips_exactly_the_stored_records_and_reads_on(
    store: Store, tmp_path: Path
) -> None:
    run_id = started_run(store, tmp_path, 10)
    audience = Path(_run(store, run_id).input_path)
    assert _stopped_after(store, run_id, batches=2, batch_size=4) == [4, 8]
    assert _run(store, run_id).total == 8
    counters = RunCounters()

    with open_audience(audience) as reader:
        resumed = list(
            ingest_batches(
                store,
                run_id,
                reader,
                RECIPE,
                counters,
                already_stored=_run(store, run_id).total,
                known_columns=_run(store, run_id).columns,
                batch_size=4,
            )
        )

    assert resumed == [10]
    assert _stored(store, run_id) == [(i, f"N{i}", phone(i)) for i in range(10)]
    assert (counters.ingested, counters.total) == (10, 10)
    assert _run(store, run_id).total == 10


def test_an_unchanged_audience_may_be_read_on(store: Store, tmp_path: Path) -> None:
    run_id = started_run(store, tmp_path, 3)

    check_audience_unchanged(_run(store, run_id))  # no error: the same bytes


def test_a_changed_audience_is_refused_naming_the_run(store: Store, tmp_path: Path) -> None:
    run_id = started_run(store, tmp_path, 3)
    audience = Path(_run(store, run_id).input_path)
    audience.write_text(audience.read_text().replace("N1", "M1"), encoding="utf-8")  # same size

    with pytest.raises(InvalidInput) as refused:
        check_audience_unchanged(_run(store, run_id))

    message = str(refused.value)
    assert f"run {run_id} cannot read on: its audience {audience} has changed" in message
    assert "the content differs" in message and "from record 1 of another file" in message


def test_a_missing_audience_is_refused_naming_the_run(store: Store, tmp_path: Path) -> None:
    run_id = started_run(store, tmp_path, 3)
    audience = Path(_run(store, run_id).input_path)
    audience.unlink()

    with pytest.raises(InvalidInput) as refused:
        check_audience_unchanged(_run(store, run_id))

    message = str(refused.value)
    assert f"run {run_id} cannot read on: its audience {audience} cannot be read" in message
    assert "put the file back exactly as it was" in message


def test_reading_the_whole_audience_marks_it_read_and_wakes_the_sender_per_batch(
    store: Store, tmp_path: Path
) -> None:
    run_id = started_run(store, tmp_path, 5)
    woken: list[int] = []

    asyncio.run(
        read_audience(
            store,
            _run(store, run_id),
            RECIPE,
            RunCounters(),
            lambda: woken.append(store.deliveries.totals(run_id).total),
            batch_size=2,
        )
    )

    assert woken == [2, 4, 5]  # each batch stored before the sender is woken
    run = _run(store, run_id)
    assert run.audience_complete and run.total == 5


def test_a_file_changed_after_the_run_started_is_caught_at_the_end_of_reading(
    store: Store, tmp_path: Path
) -> None:
    run_id = started_run(store, tmp_path, 5)
    audience = Path(_run(store, run_id).input_path)
    audience.write_text(audience.read_text() + "N5,+12125550005\n", encoding="utf-8")

    with pytest.raises(AudienceError, match="changed while the run was reading it"):
        asyncio.run(read_audience(store, _run(store, run_id), RECIPE, RunCounters(), lambda: None))

    run = _run(store, run_id)
    assert not run.audience_complete  # never marked as having read its audience
    assert run.total == 6  # what was read is stored (and sent); a resume is refused
    with pytest.raises(InvalidInput, match="has changed since the run started"):
        check_audience_unchanged(run)


def test_preparing_pauses_for_the_loop_and_a_reader_closed_at_a_pause_stores_none_of_it(
    store: Store, tmp_path: Path
) -> None:
    add_touchpoint(store)
    audience = write_audience(tmp_path / "audience.csv", 10)
    lines = audience.read_text(encoding="utf-8").splitlines()
    lines[1], lines[8] = "N0,not a phone", "N7,not a phone"  # final on arrival
    audience.write_text("\n".join(lines) + "\n", encoding="utf-8")
    run_id = start_run(store, RunRequest("t", audience, tmp_path / "results.csv"))
    counters = RunCounters()
    with open_audience(audience) as reader:
        steps = ingest_batches(store, run_id, reader, RECIPE, counters, batch_size=6, pause_every=2)
        assert [next(steps) for _ in range(4)] == [None, None, 6, None]  # None: a pause
        steps.close()  # cancelled at a pause, two records of the second batch in hand

    # Another process may read on from the stored total: the two are not stored, nor
    # counted (record 7's error comes when it is stored, by whoever reads on).
    assert _run(store, run_id).total == 6
    assert [seq for seq, _, _ in _stored(store, run_id)] == list(range(6))
    assert (counters.ingested, counters.done, counters.errors) == (6, 1, 1)


def test_a_batch_the_store_refuses_is_not_tried_again_and_a_resume_reads_it_again(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = started_run(store, tmp_path, 10)
    audience = Path(_run(store, run_id).input_path)
    add_deliveries = store.deliveries.add_deliveries
    calls = 0

    def failing_second(run: int, batch: list, columns: list[str], **kw: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise OSError("disk I/O error")  # the store fails, the transaction rolls back
        add_deliveries(run, batch, columns, **kw)

    monkeypatch.setattr(store.deliveries, "add_deliveries", failing_second)
    with open_audience(audience) as reader, pytest.raises(OSError, match="disk I/O"):
        list(ingest_batches(store, run_id, reader, RECIPE, RunCounters(), batch_size=3))

    # Not retried at once (the store just failed it): the total says what a resume skips.
    assert calls == 2
    assert _run(store, run_id).total == 3
    assert [seq for seq, _, _ in _stored(store, run_id)] == [0, 1, 2]


def test_a_resume_passes_over_the_stored_records_with_pauses_too(
    store: Store, tmp_path: Path
) -> None:
    run_id = started_run(store, tmp_path, 50)
    audience = Path(_run(store, run_id).input_path)
    assert _stopped_after(store, run_id, batches=1, batch_size=45) == [45]

    with open_audience(audience) as reader:
        steps = list(
            ingest_batches(
                store,
                run_id,
                reader,
                RECIPE,
                RunCounters(),
                already_stored=45,
                batch_size=45,
                pause_every=2,
            )
        )

    # 45 skipped 20 at a time (three pauses), then records 45-49 with a pause every two.
    assert steps == [None, None, None, None, None, 50]
    assert _stored(store, run_id) == [(i, f"N{i}", phone(i)) for i in range(50)]
