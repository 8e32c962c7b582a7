"""The sids a run owns: held in memory only until stored, then answered by the store, and
a lost answer's look-up still never takes a message the run owns. Real SQLite, the
simulator over loopback."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from smslink.domain.models import Progress, ResultStatus, Stage
from smslink.engine import RunRequest, execute_run, start_run
from smslink.engine.counters import RunCounters
from smslink.engine.owned_sids import OwnedSids
from smslink.engine.progress_writer import ProgressWriter
from smslink.simulator import SimulatorConfig, run_in_thread
from smslink.store import Store
from smslink.twilio import TwilioClient
from tests.engine.campaign import ACCOUNT, SENDER, TOKEN, add_touchpoint, store_audience

TWIN = "+12125550131"  # the recipient who is twice in the audience


@pytest.fixture
def base_url() -> Iterator[str]:
    config = SimulatorConfig(auth_token=TOKEN, queued_s=0.02, sending_s=0.02, sent_s=0.02)
    with run_in_thread(config) as url:
        yield url


def _run_with_twins(store: Store, base_url: str, tmp_path: Path, name: str = "Ann") -> int:
    """A run of one recipient twice with the same message ("Hi `name`"), both records
    claimed (POSTING), as a run stopped mid-send leaves them."""
    if not store.catalogue.list_connections():
        add_touchpoint(store, base_url=base_url, poll_interval_ms=100)
    folder = tmp_path / name
    folder.mkdir()
    audience = f"name,phone\n{name},{TWIN}\n{name},{TWIN}\n"
    (folder / "audience.csv").write_text(audience, encoding="utf-8")
    run_id = start_run(store, RunRequest("t", folder / "audience.csv", folder / "out.csv"))
    store_audience(store, run_id)
    claimed = store.deliveries.claim_pending(run_id, 10, datetime.now(UTC))
    assert [o.seq for o in claimed] == [0, 1]
    return run_id


def _post(base_url: str) -> str:
    async def post() -> str:
        client = TwilioClient(
            base_url=base_url, account_sid=ACCOUNT, username=ACCOUNT, password=TOKEN
        )
        async with client:
            message = await client.create_message(to=TWIN, body="Hi Ann", from_number=SENDER)
            return message.sid

    return asyncio.run(post())


def test_a_sid_leaves_memory_once_stored_and_is_still_owned(
    store: Store, base_url: str, tmp_path: Path
) -> None:
    run_id = _run_with_twins(store, base_url, tmp_path)
    other_run = _run_with_twins(store, base_url, tmp_path, name="Bea")
    owned = OwnedSids(store, run_id)
    sid = "SM" + "a" * 32
    owned.add(sid)
    assert sid in owned and owned.unstored() == 1

    writer = ProgressWriter(store, on_stored=owned.stored)
    writer.put(Progress(run_id, 0, Stage.TRACKING, twilio_status="queued", message_sid=sid))
    writer.flush()

    assert owned.unstored() == 0  # memory let it go ...
    assert sid in owned  # ... and the store answers for it
    assert sid not in OwnedSids(store, other_run)  # another run's, not this one's
    assert "SM" + "b" * 32 not in owned
    assert 42 not in owned  # not a sid at all


def test_of_two_states_of_one_delivery_in_a_batch_only_the_stored_sid_leaves_memory(
    store: Store, base_url: str, tmp_path: Path
) -> None:
    run_id = _run_with_twins(store, base_url, tmp_path)
    owned = OwnedSids(store, run_id)
    first, last = "SM" + "d" * 32, "SM" + "e" * 32
    owned.add(first)
    owned.add(last)

    writer = ProgressWriter(store, on_stored=owned.stored)
    # One row is written per delivery: the last state's. `first` is stored nowhere.
    writer.put(Progress(run_id, 0, Stage.TRACKING, twilio_status="queued", message_sid=first))
    writer.put(Progress(run_id, 0, Stage.TRACKING, twilio_status="sent", message_sid=last))
    writer.flush()

    assert owned.unstored() == 1
    assert first in owned and last in owned


def test_a_failed_write_keeps_the_sid_in_memory(
    store: Store, base_url: str, tmp_path: Path
) -> None:
    run_id = _run_with_twins(store, base_url, tmp_path)
    owned = OwnedSids(store, run_id)
    sid = "SM" + "f" * 32
    owned.add(sid)
    with sqlite3.connect(tmp_path / "smslink.db") as raw:  # events cannot be written now
        raw.execute("ALTER TABLE events RENAME TO events_away")

    writer = ProgressWriter(store, on_stored=owned.stored)
    writer.put(Progress(run_id, 0, Stage.TRACKING, twilio_status="queued", message_sid=sid))
    with pytest.raises(Exception, match="events"):
        writer.flush()

    assert owned.unstored() == 1 and sid in owned


def test_a_sid_whose_state_was_not_written_stays_in_memory(
    store: Store, base_url: str, tmp_path: Path
) -> None:
    run_id = _run_with_twins(store, base_url, tmp_path)
    store.deliveries.save_progress(
        [Progress(run_id, 1, Stage.DONE, status=ResultStatus.ERROR, error_message="stopped")]
    )
    owned = OwnedSids(store, run_id)
    sid = "SM" + "c" * 32
    owned.add(sid)

    writer = ProgressWriter(store, on_stored=owned.stored)
    # A late answer for a delivery already final: the store skips it, so the sid is not
    # stored anywhere and must stay owned in memory.
    writer.put(Progress(run_id, 1, Stage.TRACKING, twilio_status="queued", message_sid=sid))
    writer.flush()

    assert owned.unstored() == 1 and sid in owned


def test_resume_sends_the_twin_whose_post_was_lost_not_claiming_the_stored_message(
    store: Store, base_url: str, tmp_path: Path
) -> None:
    """The first record's message went out and its sid is stored; the second record's POST
    never reached Twilio. The look-up for the second finds the first one's message (same
    recipient, same body): only the store can say it is owned, since nothing of it is in
    memory after a restart. The second must be sent, not matched to the first's message."""
    run_id = _run_with_twins(store, base_url, tmp_path)
    sid = _post(base_url)
    store.deliveries.save_progress(
        [Progress(run_id, 0, Stage.TRACKING, twilio_status="queued", message_sid=sid)]
    )

    run = asyncio.run(execute_run(store, run_id, RunCounters()))

    deliveries = list(store.deliveries.iter_deliveries(run_id))
    assert run.audience_complete
    assert [d.status for d in deliveries] == [ResultStatus.DELIVERED] * 2
    assert deliveries[0].message_sid == sid
    assert deliveries[1].message_sid not in (None, sid)
    with urllib.request.urlopen(base_url.replace("/2010-04-01", "/_stats")) as response:
        assert json.load(response)["messages_by_to"] == {TWIN: 2}
