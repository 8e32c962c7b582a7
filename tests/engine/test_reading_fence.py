"""A run taken over by another process while this one sends it: the audience is stored
only in the name of the process holding the run's lease (DeliveryStore.add_deliveries
with a holder), so a paused reader that wakes stores nothing beside its successor; and
however the takeover is noticed first (a refused batch, a refused progress write, the
tracker's round), the process stops as on any lost lease: LeaseLost, nothing to resume
here. Real SQLite, the simulator over loopback."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from smslink.engine import LeaseLost, RunCounters, RunRequest, Timings, execute_run, start_run
from smslink.engine.parts import store_audience
from smslink.simulator import SimulatorConfig, run_in_thread
from smslink.store import LeaseTaken, Store
from tests.engine.campaign import TOKEN, add_touchpoint, write_audience

BATCH = 20


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


def test_reading_a_run_for_the_workers_is_fenced_too(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`runs send --queue` reads the audience into the store before the workers send it
    (engine/parts.store_audience). Taken over meanwhile, the reader stores nothing more
    and stops as on any lost lease, leaving the run's state to its successor rather than
    marking it interrupted."""
    add_touchpoint(store)
    audience = write_audience(tmp_path / "a.csv", 500)
    run_id = start_run(store, RunRequest("t", audience, tmp_path / "out.csv"))
    refused = _taken_over_after_two_batches(store, monkeypatch)
    state_before = store.runs.get_run(run_id).state

    with pytest.raises(LeaseLost):
        asyncio.run(
            store_audience(store, run_id, RunCounters(), timings=Timings(ingest_batch=BATCH))
        )

    assert len(refused) == 1
    run = store.runs.get_run(run_id)
    assert run.total == 2 * BATCH and store.deliveries.totals(run_id).total == 2 * BATCH
    assert run.state is state_before and not run.audience_complete and not run.queued
