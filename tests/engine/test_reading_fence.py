"""A run taken over by another process while this one reads or sends it: the audience is
stored, and the run's state changed, only in the name of the process holding the run's
lease (DeliveryStore.add_deliveries and RunStore.update_run with a holder), so a paused
process that wakes stores nothing beside its successor and leaves the run's state to it;
and however the takeover is noticed first (a refused batch, a refused progress write,
the tracker's round, the last state change), the process stops as on any lost lease:
LeaseLost, nothing to resume here. Real SQLite, the simulator over loopback."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from smslink.audience.readers import AudienceError
from smslink.domain.models import RunState
from smslink.engine import LeaseLost, RunCounters, RunRequest, Timings, execute_run, start_run
from smslink.engine import run as run_module
from smslink.engine.parts import store_audience
from smslink.simulator import SimulatorConfig, run_in_thread
from smslink.store import LeaseTaken, Store
from tests.engine.campaign import TOKEN, add_touchpoint, write_audience
from tests.engine.campaign import store_audience as campaign_store_audience

BATCH = 20
#: Messages final 60 ms after their create: a run of a few completes in well under a second.
QUICK_STATUSES = {"queued_s": 0.02, "sending_s": 0.02, "sent_s": 0.02}


@pytest.fixture(params=[20, 300], ids=["answers-quick", "answers-slow"])
def twilio(request: pytest.FixtureRequest) -> Iterator[str]:
    """Answers in 20 ms, or in 300 ms (requests still in flight when the reader is
    refused)."""
    with run_in_thread(SimulatorConfig(auth_token=TOKEN, latency_ms=request.param)) as url:
        yield url


def _started_run(
    store: Store, base_url: str, folder: Path, *, records: int, concurrency: int
) -> int:
    add_touchpoint(store, base_url=base_url, poll_interval_ms=100, concurrency=concurrency)
    audience = write_audience(folder / "a.csv", records)
    return start_run(store, RunRequest("t", audience, folder / "out.csv"))


def _taken_over(store: Store, run_id: int) -> None:
    """Another process found this one's lease lapsed (it was paused) and took the run."""
    now = datetime.now(UTC)
    until = now + timedelta(minutes=1)
    holder = store.runs.acquire_run(run_id, "successor", until=until, now=now, replacing=None)
    assert holder is not None  # this process's, still running
    replaced = store.runs.acquire_run(run_id, "successor", until=until, now=now, replacing=holder)
    assert replaced is None


def _taken_over_after_two_batches(store: Store, monkeypatch: pytest.MonkeyPatch) -> list[Exception]:
    """The run is taken over once two batches of its audience are stored; the list
    collects the store's refusals of later batches."""
    add_deliveries = store.deliveries.add_deliveries
    refused: list[Exception] = []

    def taken_over(run: int, batch: list, columns: list[str], **kw: Any) -> None:
        if store.runs.get_run(run).total == 2 * BATCH:
            _taken_over(store, run)
        try:
            add_deliveries(run, batch, columns, **kw)
        except LeaseTaken as error:
            refused.append(error)
            raise

    monkeypatch.setattr(store.deliveries, "add_deliveries", taken_over)
    return refused


def test_a_reader_whose_run_was_taken_over_stores_nothing_more_and_stops(
    store: Store, twilio: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = _started_run(store, twilio, tmp_path, records=500, concurrency=2)
    refused = _taken_over_after_two_batches(store, monkeypatch)

    with pytest.raises(LeaseLost):
        asyncio.run(execute_run(store, run_id, RunCounters(), timings=Timings(ingest_batch=BATCH)))

    assert len(refused) == 1  # the batch after the takeover, and none after it
    assert store.runs.get_run(run_id).total == 2 * BATCH  # the successor reads on from here
    assert store.deliveries.totals(run_id).total == 2 * BATCH


def test_a_takeover_in_the_middle_of_sending_ends_the_run_as_a_lost_lease(
    store: Store, tmp_path: Path
) -> None:
    """Answers take 300 ms, so requests are in flight when the run is taken over after
    the audience was read: the progress writer's refused flush tells the lease, and
    whichever notices first (the tracker's round every 100 ms, a sender's next request),
    the run ends as LeaseLost, with the rest left to the successor."""
    with run_in_thread(SimulatorConfig(auth_token=TOKEN, latency_ms=300)) as twilio:
        run_id = _started_run(store, twilio, tmp_path, records=100, concurrency=3)
        stats_url = twilio.rsplit("/2010-04-01", 1)[0] + "/_stats"

        def posts() -> int:
            with urllib.request.urlopen(stats_url) as response:
                return int(json.load(response)["posts"])

        async def send_then_take_over() -> None:
            sending = asyncio.create_task(execute_run(store, run_id, RunCounters()))
            while posts() < 4:  # two answered and tracked, two more in flight
                await asyncio.sleep(0.02)
            _taken_over(store, run_id)
            await sending

        with pytest.raises(LeaseLost):
            asyncio.run(send_then_take_over())
        assert posts() < 100


@pytest.mark.parametrize(
    "moment", ["before a batch", "after the last batch", "before a file error"]
)
def test_reading_a_run_for_the_workers_leaves_a_run_taken_over_to_its_successor(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, moment: str
) -> None:
    """`runs send --queue` reads the audience into the store before the workers send it
    (engine/parts.store_audience). Taken over meanwhile (before a batch, after the last
    one, or just before the file fails to read on), the reader stores nothing more and
    changes nothing of the run: not its state (not INTERRUPTED), not its queueing, not
    its audience's completeness, not its lease. The successor decides all of them."""
    add_touchpoint(store)
    records = 500
    audience = write_audience(tmp_path / "a.csv", records)
    run_id = start_run(store, RunRequest("t", audience, tmp_path / "out.csv"))
    add_deliveries = store.deliveries.add_deliveries

    def taken_over_meanwhile(run: int, batch: list, columns: list[str], **kw: Any) -> None:
        total = store.runs.get_run(run).total
        if moment != "after the last batch" and total == 2 * BATCH:
            _taken_over(store, run)
            store.runs.update_run(run, state=RunState.SENDING)  # the successor's doing
            if moment == "before a file error":
                raise AudienceError("line 41: the file ends inside a quoted field")
        add_deliveries(run, batch, columns, **kw)
        if moment == "after the last batch" and total + len(batch) == records:
            _taken_over(store, run)
            store.runs.update_run(run, state=RunState.SENDING)

    monkeypatch.setattr(store.deliveries, "add_deliveries", taken_over_meanwhile)

    with pytest.raises(AudienceError if moment == "before a file error" else LeaseLost):
        asyncio.run(
            store_audience(store, run_id, RunCounters(), timings=Timings(ingest_batch=BATCH))
        )

    run = store.runs.get_run(run_id)
    assert (run.state, run.queued, run.audience_complete) == (RunState.SENDING, False, False)
    assert store.runs.run_lease(run_id)[0] == "successor"
    stored = records if moment == "after the last batch" else 2 * BATCH
    assert run.total == stored and store.deliveries.totals(run_id).total == stored


def test_a_run_taken_over_while_its_results_are_written_is_not_marked_completed(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last write of a run (COMPLETED) is in the lease holder's name too: a process
    paused while it wrote the results file, and taken over, leaves the run's state to its
    successor and stops as on any lost lease."""
    write_results = run_module.write_results

    def taken_over_while_writing(store_: Store, run: Any, ahead: Any) -> None:
        write_results(store_, run, ahead)
        _taken_over(store, run.id)
        store.runs.update_run(run.id, state=RunState.SENDING)  # the successor's doing

    monkeypatch.setattr(run_module, "write_results", taken_over_while_writing)
    with run_in_thread(SimulatorConfig(auth_token=TOKEN, **QUICK_STATUSES)) as twilio:
        run_id = _started_run(store, twilio, tmp_path, records=5, concurrency=2)
        with pytest.raises(LeaseLost):
            asyncio.run(execute_run(store, run_id, RunCounters()))

    assert store.runs.get_run(run_id).state is RunState.SENDING
    assert store.runs.run_lease(run_id)[0] == "successor"


@pytest.mark.parametrize("starting", ["queued for workers", "sent here"])
def test_a_run_taken_over_as_it_starts_is_left_to_its_successor(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, starting: str
) -> None:
    """A run whose audience is all stored is resumed, and taken over just as this process
    marks it resumed (paused there past its lease): it is neither queued for the workers
    nor sent from here, and the successor's stop request stands."""
    with run_in_thread(SimulatorConfig(auth_token=TOKEN)) as twilio:
        run_id = _started_run(store, twilio, tmp_path, records=30, concurrency=2)
        campaign_store_audience(store, run_id)
        update_run = store.runs.update_run

        def taken_over_as_resumed(run: int, **changes: Any) -> None:
            if changes.get("stop_request_cleared"):  # marking it resumed
                _taken_over(store, run)
                store.runs.request_stop(run, at=datetime.now(UTC))  # the successor's user
            update_run(run, **changes)

        monkeypatch.setattr(store.runs, "update_run", taken_over_as_resumed)
        timings = Timings(ingest_batch=BATCH)
        starts = {
            "queued for workers": lambda: store_audience(
                store, run_id, RunCounters(), timings=timings
            ),
            "sent here": lambda: execute_run(store, run_id, RunCounters(), timings=timings),
        }
        with pytest.raises(LeaseLost):
            asyncio.run(starts[starting]())
        stats_url = twilio.rsplit("/2010-04-01", 1)[0] + "/_stats"
        with urllib.request.urlopen(stats_url) as response:
            assert json.load(response)["posts"] == 0

    run = store.runs.get_run(run_id)
    assert (run.state, run.queued) == (RunState.CREATED, False)
    assert store.runs.stop_requested(run_id)
    assert store.runs.run_lease(run_id)[0] == "successor"
