"""Asking a run to stop (a page's Stop button, `runs stop`) from outside the process that
sends it: the run stops within about a second, resumably, and resuming finishes it with
nobody sent twice. Real SQLite, the simulator over loopback."""

from __future__ import annotations

import asyncio
import json
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from smslink.domain.models import Connection, ResultStatus, RunState, Touchpoint
from smslink.engine import (
    RunCounters,
    RunHalted,
    RunRequest,
    Timings,
    execute_run,
    request_stop,
    start_run,
)
from smslink.simulator import SimulatorConfig, run_in_thread
from smslink.store import Store

ACCOUNT = "AC" + "5709000000000000000000000000001a"
TOKEN = "stop-token"
RECORDS = 300
QUICK = Timings(stop_check_s=0.05, reconcile_grace_s=0.05)


@pytest.fixture
def slow_twilio() -> Iterator[str]:
    """Slow enough (40 ms an answer, 4 at a time) that a run is surely mid-send when asked."""
    config = SimulatorConfig(
        auth_token=TOKEN, latency_ms=40, queued_s=0.02, sending_s=0.02, sent_s=0.02
    )
    with run_in_thread(config) as url:
        yield url


def _stats(base_url: str) -> dict:
    root = base_url.rsplit("/2010-04-01", 1)[0]
    with urllib.request.urlopen(f"{root}/_stats") as response:
        return json.load(response)


def _run(store: Store, base_url: str, tmp_path: Path) -> int:
    store.catalogue.add_connection(
        Connection(
            "c", ACCOUNT, TOKEN, from_number="+15005550006", base_url=base_url,
            concurrency=5, poll_interval_ms=100,
        )
    )  # fmt: skip
    store.catalogue.add_touchpoint(Touchpoint("t", "c", "Hi <Name>", "phone", {"Name": "name"}))
    audience = tmp_path / "a.csv"
    rows = "".join(f"N{i},+1212555{i:04d}\n" for i in range(RECORDS))
    audience.write_text("name,phone\n" + rows, encoding="utf-8")
    return start_run(store, RunRequest("t", audience, tmp_path / "out.csv"))


def test_a_run_asked_to_stop_stops_resumably_and_a_resume_finishes_it(
    store: Store, slow_twilio: str, tmp_path: Path
) -> None:
    run_id = _run(store, slow_twilio, tmp_path)

    async def send_then_ask_to_stop() -> None:
        sending = asyncio.create_task(execute_run(store, run_id, RunCounters(), timings=QUICK))
        # Mid-send, with the results already being written ahead (engine/results.py).
        while _stats(slow_twilio)["posts"] < 20 or not _temporaries(tmp_path):
            await asyncio.sleep(0.02)
        assert request_stop(store, run_id).state is RunState.SENDING
        await sending

    with pytest.raises(RunHalted, match="stopped on request") as halted:
        asyncio.run(send_then_ask_to_stop())

    run = store.runs.get_run(run_id)
    assert run.state is RunState.STOPPED and "stopped on request" in (run.error or "")
    assert halted.value.remedy is not None and halted.value.remedy["run_id"] == run_id
    posted = _stats(slow_twilio)["posts"]
    assert 20 <= posted < RECORDS  # it stopped, it did not finish
    assert _temporaries(tmp_path) == [] and not (tmp_path / "out.csv").exists()

    run = asyncio.run(execute_run(store, run_id, RunCounters(), timings=QUICK))

    assert run.state is RunState.COMPLETED
    statuses = [d.status for d in store.deliveries.iter_deliveries(run_id, with_row=False)]
    assert statuses == [ResultStatus.DELIVERED] * RECORDS
    by_to = _stats(slow_twilio)["messages_by_to"]
    assert len(by_to) == RECORDS and max(by_to.values()) == 1  # nobody got two
    lines = (tmp_path / "out.csv").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1 + RECORDS and lines[-1].startswith(f"N{RECORDS - 1},")
    assert _temporaries(tmp_path) == []


def test_tracking_that_fails_mid_send_stops_the_sending_too_and_a_resume_finishes_it(
    store: Store, slow_twilio: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tracking fails while the run is still sending (here the store fails its look-up of
    what status callbacks finished): the sender stops at once, rather than send the rest
    with nobody tracking it (a journey would send so until it is sealed). The run stops
    resumably, and a resume finishes it with nobody sent twice."""
    run_id = _run(store, slow_twilio, tmp_path)
    connection = store.catalogue.get_connection("c")
    connection.callback_base_url = "http://127.0.0.1:9"  # callbacks on (never received)
    store.catalogue.update_connection(connection)
    finished_among = store.deliveries.finished_among
    looks = [0]

    def failing_after_two(*args: object, **kwargs: object) -> object:
        looks[0] += 1
        if looks[0] > 2:
            raise RuntimeError("database is locked")
        return finished_among(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(store.deliveries, "finished_among", failing_after_two)
    with pytest.raises(RunHalted, match=re.escape("tracking stopped (database is locked)")):
        asyncio.run(execute_run(store, run_id, RunCounters(), timings=QUICK))
    assert looks[0] == 3
    posted = _stats(slow_twilio)["posts"]
    assert posted < RECORDS // 2, posted  # it stopped sending when tracking failed
    assert store.runs.get_run(run_id).state is RunState.STOPPED

    monkeypatch.setattr(store.deliveries, "finished_among", finished_among)
    run = asyncio.run(execute_run(store, run_id, RunCounters(), timings=QUICK))
    assert run.state is RunState.COMPLETED
    by_to = _stats(slow_twilio)["messages_by_to"]
    assert len(by_to) == RECORDS and max(by_to.values()) == 1  # nobody got two


def _temporaries(folder: Path) -> list[Path]:
    """Results written ahead, not yet put in place."""
    return list(folder.glob(".out.csv.*.tmp"))


def test_a_run_that_is_not_being_sent_has_nothing_to_stop(
    store: Store, slow_twilio: str, tmp_path: Path
) -> None:
    run_id = _run(store, slow_twilio, tmp_path)

    assert request_stop(store, run_id).state is RunState.CREATED
    assert store.runs.stop_requested(run_id) is False  # no request left to linger
