"""The sender's patience is a setting: a Twilio that keeps answering "too busy" stops the
run after `Timings.busy_give_up_s` (10 minutes in production, a second here), resumably,
with the remedy naming the connection setting to lower, and nothing is sent twice."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from smslink.domain.errors import Action
from smslink.domain.models import Connection, RunState, Stage, Touchpoint
from smslink.engine import RunCounters, RunHalted, RunRequest, Timings, execute_run, start_run
from smslink.simulator import SimulatorConfig, run_in_thread
from smslink.store import Store
from smslink.twilio.client import RetryPolicy

ACCOUNT = "AC" + "5e4d0000000000000000000000000001"
TOKEN = "send-token"
SENDER = "+15005550006"
QUICK_GIVE_UP = Timings(busy_give_up_s=1.0, busy_pause_s=0.1, retry=RetryPolicy(cap_s=0.05))


@pytest.fixture
def full_sender_queue() -> Iterator[str]:
    """A sender whose queue holds less than one message: every create is refused, 21611."""
    config = SimulatorConfig(auth_token=TOKEN, sender_mps=0.01, sender_queue_s=0.001)
    with run_in_thread(config) as url:
        yield url


def _run(store: Store, base_url: str, tmp_path: Path) -> int:
    store.catalogue.add_connection(
        Connection("c", ACCOUNT, TOKEN, from_number=SENDER, base_url=base_url, concurrency=4)
    )
    store.catalogue.add_touchpoint(Touchpoint("t", "c", "Hi <Name>", "phone", {"Name": "name"}))
    audience = tmp_path / "a.csv"
    audience.write_text(
        "name,phone\n" + "".join(f"N{i},+1212555{i:04d}\n" for i in range(5)), encoding="utf-8"
    )
    return start_run(store, RunRequest("t", audience, tmp_path / "out.csv"))


def test_a_sender_queue_that_stays_full_stops_the_run_after_the_set_patience(
    store: Store, full_sender_queue: str, tmp_path: Path
) -> None:
    run_id = _run(store, full_sender_queue, tmp_path)
    started = time.monotonic()

    with pytest.raises(RunHalted, match="kept refusing") as halted:
        asyncio.run(execute_run(store, run_id, RunCounters(), timings=QUICK_GIVE_UP))

    assert time.monotonic() - started < 30  # a second of patience, not ten minutes
    remedy = halted.value.remedy
    assert remedy is not None and remedy.action is Action.UPDATE_CONNECTION
    assert remedy.args == {"connection": "c", "setting": "max_segments_per_second"}
    assert "--" not in str(halted.value)  # the engine names the setting, not a flag
    assert store.runs.get_run(run_id).state is RunState.STOPPED
    stages = [d.stage for d in store.deliveries.iter_deliveries(run_id, with_row=False)]
    assert Stage.DONE not in stages  # refused "too busy" is not a result: still to send
    root = full_sender_queue.rsplit("/2010-04-01", 1)[0]
    with urllib.request.urlopen(f"{root}/_stats") as response:
        stats = json.load(response)
    assert stats["queue_full"] > 0
    assert all(n == 1 for n in stats["messages_by_to"].values())  # nobody got two
