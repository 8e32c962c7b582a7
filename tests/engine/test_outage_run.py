"""A run whose base URL answers with pages that are not Twilio's (a proxy's HTML 502, another
server's 404 or 501) stops, resumable, instead of ending every record as a final `error`:
unsent records stay PENDING, ones that may have reached Twilio stay POSTING, and a resume
once the server is back sends each recipient exactly one message."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from smslink.domain.models import Connection, ResultStatus, RunState, Stage, Touchpoint
from smslink.engine import RunRequest, Timings, execute_run, start_run
from smslink.engine.counters import RunCounters
from smslink.engine.errors import RunHalted
from smslink.simulator import SimulatorConfig
from smslink.store import Store
from smslink.twilio.client import RetryPolicy
from tests.outage import Outage, simulator_behind_proxy

ACCOUNT = "AC" + "0a7a9e00000000000000000000000001"
TOKEN = "outage-token"
RECORDS = 300
#: The grace before asking Twilio about a lost answer is 3 s in production, and a failing
#: look-up is retried for up to ~16 s; the order of events, not the waiting, is what these
#: tests are about.
QUICK = Timings(reconcile_grace_s=0.05, retry=RetryPolicy(cap_s=0.05))


@pytest.fixture
def outage() -> Iterator[Outage]:
    config = SimulatorConfig(auth_token=TOKEN, queued_s=0.02, sending_s=0.02, sent_s=0.02)
    with simulator_behind_proxy(config) as proxy:
        yield proxy


def _stats(outage: Outage) -> dict:
    with urllib.request.urlopen(f"{outage.root}/_stats") as response:
        return json.load(response)


def _run(store: Store, outage: Outage, tmp_path: Path) -> int:
    store.catalogue.add_connection(
        Connection(
            "c",
            ACCOUNT,
            TOKEN,
            from_number="+15005550006",
            base_url=outage.base_url,
            poll_interval_ms=100,
            concurrency=20,
        )
    )
    store.catalogue.add_touchpoint(Touchpoint("t", "c", "Hi <Name>", "phone", {"Name": "name"}))
    audience = tmp_path / "a.csv"
    rows = "".join(f"N{i},+1212555{i:04d}\n" for i in range(RECORDS))
    audience.write_text("name,phone\n" + rows, encoding="utf-8")
    return start_run(store, RunRequest("t", audience, tmp_path / "out.csv"))


def _stages(store: Store, run_id: int) -> dict[Stage, int]:
    stages: dict[Stage, int] = {}
    for delivery in store.deliveries.iter_deliveries(run_id, with_row=False):
        stages[delivery.stage] = stages.get(delivery.stage, 0) + 1
    return stages


@pytest.mark.parametrize(
    "status",
    [
        502,  # a load balancer in front of a Twilio that is down
        404,  # a base URL pointing at a web server without the Messages resource
        501,
    ],
)
def test_pages_that_are_not_twilios_stop_the_run_and_nothing_is_decided_without_twilio(
    store: Store, outage: Outage, tmp_path: Path, status: int
) -> None:
    run_id = _run(store, outage, tmp_path)
    outage.status = status

    with pytest.raises(RunHalted, match=r"not Twilio's API|could not be asked") as halted:
        asyncio.run(execute_run(store, run_id, RunCounters(), timings=QUICK))

    run = store.runs.get_run(run_id)
    assert run.state is RunState.STOPPED and run.error == str(halted.value)
    deliveries = list(store.deliveries.iter_deliveries(run_id, with_row=False))
    assert len(deliveries) == RECORDS  # every record is kept
    # No record was given a final status for a page that is not Twilio's verdict on it.
    assert not [d for d in deliveries if d.stage is Stage.DONE]
    stages = _stages(store, run_id)
    assert stages.get(Stage.POSTING, 0) <= 20  # at most the requests that were in flight
    assert _stats(outage)["posts"] == 0  # the page stood in front of every request

    outage.status = None  # the server is back
    run = asyncio.run(execute_run(store, run_id, RunCounters(), timings=QUICK))

    assert run.state is RunState.COMPLETED
    statuses = [d.status for d in store.deliveries.iter_deliveries(run_id, with_row=False)]
    assert statuses == [ResultStatus.DELIVERED] * RECORDS
    by_to = _stats(outage)["messages_by_to"]
    assert len(by_to) == RECORDS and max(by_to.values()) == 1  # nobody got two messages


def test_a_resume_while_twilio_still_cannot_be_asked_stops_again_deciding_nothing(
    store: Store, outage: Outage, tmp_path: Path
) -> None:
    run_id = _run(store, outage, tmp_path)
    outage.status = 502
    with pytest.raises(RunHalted):
        asyncio.run(execute_run(store, run_id, RunCounters(), timings=QUICK))
    before = _stages(store, run_id)
    assert before.get(Stage.POSTING, 0) >= 1

    with pytest.raises(RunHalted, match="could not be asked"):
        asyncio.run(execute_run(store, run_id, RunCounters(), timings=QUICK))

    assert _stages(store, run_id) == before
    assert store.runs.get_run(run_id).state is RunState.STOPPED


def test_a_single_proxy_hiccup_is_reconciled_and_the_run_goes_on(
    store: Store, outage: Outage, tmp_path: Path
) -> None:
    """One 502 page to one POST while look-ups work: that message is proven absent and
    sent again, and the run completes without stopping."""
    run_id = _run(store, outage, tmp_path)
    outage.status, outage.method, outage.limit = 502, "POST", 1

    run = asyncio.run(execute_run(store, run_id, RunCounters(), timings=QUICK))

    assert run.state is RunState.COMPLETED
    assert outage.answered == {"POST": 1}
    statuses = [d.status for d in store.deliveries.iter_deliveries(run_id, with_row=False)]
    assert statuses == [ResultStatus.DELIVERED] * RECORDS
    by_to = _stats(outage)["messages_by_to"]
    assert len(by_to) == RECORDS and max(by_to.values()) == 1
