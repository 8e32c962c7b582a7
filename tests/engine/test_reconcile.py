"""Deliveries whose POST may have reached Twilio: found and tracked, proven absent and sent,
or kept to be checked when Twilio cannot be asked - never sent twice. Real SQLite, the
simulator over loopback."""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web

from smslink.audience.readers import open_audience
from smslink.domain.models import Connection, ResultStatus, RunState, Stage, Touchpoint
from smslink.engine import RunRequest, execute_run, start_run
from smslink.engine.counters import RunCounters
from smslink.engine.errors import RunHalted
from smslink.engine.ingest import ingest_batches
from smslink.engine.prepare import Recipe
from smslink.engine.reconcile import Reconciler, find_sent
from smslink.simulator import SimulatorConfig, run_in_thread
from smslink.store import Store
from smslink.twilio import TwilioClient

ACCOUNT = "AC" + "3ec00000000000000000000000000001"
TOKEN = "reconcile-token"
SENDER = "+15005550006"


@pytest.fixture
def base_url() -> Iterator[str]:
    config = SimulatorConfig(auth_token=TOKEN, queued_s=0.02, sending_s=0.02, sent_s=0.02)
    with run_in_thread(config) as url:
        yield url


def _client(base_url: str) -> TwilioClient:
    return TwilioClient(base_url=base_url, account_sid=ACCOUNT, username=ACCOUNT, password=TOKEN)


def _stats(base_url: str) -> dict:
    with urllib.request.urlopen(base_url.replace("/2010-04-01", "/_stats")) as response:
        return json.load(response)


def test_find_sent_matches_body_time_and_unclaimed_sid(base_url: str) -> None:
    async def scenario() -> None:
        async with _client(base_url) as client:
            before = datetime.now(UTC)
            sent = await client.create_message(to="+12125550101", body="Hi", from_number=SENDER)

            found = await find_sent(client, to="+12125550101", body="Hi", attempted_at=before)
            assert found is not None and found.sid == sent.sid
            assert await find_sent(
                client, to="+12125550101", body="Hi", attempted_at=before,
                known_sids={sent.sid},
            ) is None  # fmt: skip
            assert await find_sent(
                client, to="+12125550101", body="Other", attempted_at=before
            ) is None  # fmt: skip
            later = before + timedelta(minutes=30)  # attempt after the message: not ours
            assert await find_sent(
                client, to="+12125550101", body="Hi", attempted_at=later
            ) is None  # fmt: skip

    asyncio.run(scenario())


def test_two_identical_deliveries_never_claim_the_same_message(base_url: str) -> None:
    async def scenario() -> tuple[list[str | None], str]:
        async with _client(base_url) as client:
            before = datetime.now(UTC)
            sent = await client.create_message(to="+12125550109", body="Hi", from_number=SENDER)
            reconciler = Reconciler(client, set())
            found = await asyncio.gather(
                *(
                    reconciler.find(to="+12125550109", body="Hi", attempted_at=before)
                    for _ in range(2)
                )
            )
            return [m.sid if m else None for m in found], sent.sid

    sids, sent = asyncio.run(scenario())

    assert sorted(sids, key=str) == sorted([sent, None], key=str)  # one found, one absent


def _crashed_run(store: Store, base_url: str, tmp_path: Path) -> int:
    """A run stopped mid-send: both records claimed (POSTING), only the first reached Twilio."""
    store.catalogue.add_connection(
        Connection("c", ACCOUNT, TOKEN, from_number=SENDER, base_url=base_url, poll_interval_ms=100)
    )
    touchpoint = Touchpoint("t", "c", "Hi <Name>", "phone", {"Name": "name"})
    store.catalogue.add_touchpoint(touchpoint)
    audience = tmp_path / "a.csv"
    audience.write_text("name,phone\nAnn,+12125550101\nBob,+12125550102\n", encoding="utf-8")
    run_id = start_run(store, RunRequest("t", audience, tmp_path / "out.csv"))
    recipe = Recipe.from_touchpoint(touchpoint, "US")
    with open_audience(audience) as reader:
        for _ in ingest_batches(store, run_id, reader, recipe, RunCounters()):
            pass
    store.runs.update_run(run_id, audience_complete=True)
    claimed = store.deliveries.claim_pending(run_id, 10, datetime.now(UTC))
    assert [o.seq for o in claimed] == [0, 1]
    return run_id


def test_resume_tracks_what_reached_twilio_and_sends_only_the_rest(
    store: Store, base_url: str, tmp_path: Path
) -> None:
    run_id = _crashed_run(store, base_url, tmp_path)

    async def post_that_reached_twilio() -> str:
        async with _client(base_url) as client:
            message = await client.create_message(
                to="+12125550101", body="Hi Ann", from_number=SENDER
            )
            return message.sid

    reached = asyncio.run(post_that_reached_twilio())

    counters = RunCounters()
    run = asyncio.run(execute_run(store, run_id, counters))

    deliveries = list(store.deliveries.iter_deliveries(run_id))
    assert run.audience_complete and [d.stage for d in deliveries] == [Stage.DONE, Stage.DONE]
    assert deliveries[0].message_sid == reached
    assert [d.status for d in deliveries] == [ResultStatus.DELIVERED, ResultStatus.DELIVERED]
    stats = _stats(base_url)
    assert stats["posts"] == 2 and stats["messages_by_to"] == {"+12125550101": 1, "+12125550102": 1}
    assert counters.posted == 2  # the one found at Twilio counts as sent too


@pytest.fixture
def refusing_twilio() -> Iterator[str]:
    """A server that answers every request 401/20003, as Twilio does to revoked credentials."""

    async def refuse(request: web.Request) -> web.Response:
        body = {"code": 20003, "message": "Authenticate", "more_info": "", "status": 401}
        return web.json_response(body, status=401)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", refuse)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/2010-04-01"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


def test_resume_that_cannot_ask_twilio_stops_and_keeps_the_messages_to_check(
    store: Store, base_url: str, refusing_twilio: str, tmp_path: Path
) -> None:
    """Refused credentials say nothing about the two records: they are not given a final
    "outcome unknown" (which would end them for good); the run stops with both still
    POSTING, and once the connection is fixed a resume finds what reached Twilio."""
    run_id = _crashed_run(store, base_url, tmp_path)
    connection = store.catalogue.get_connection("c")
    connection.base_url = refusing_twilio
    store.catalogue.update_connection(connection)

    with pytest.raises(RunHalted, match="could not be asked"):
        asyncio.run(execute_run(store, run_id, RunCounters()))

    assert [d.stage for d in store.deliveries.iter_deliveries(run_id)] == [
        Stage.POSTING,
        Stage.POSTING,
    ]
    assert store.runs.get_run(run_id).state is RunState.STOPPED
    assert _stats(base_url)["posts"] == 0

    connection.base_url = base_url  # fixed: the resume asks the real Twilio
    store.catalogue.update_connection(connection)
    run = asyncio.run(execute_run(store, run_id, RunCounters()))

    assert run.state is RunState.COMPLETED
    assert [d.status for d in store.deliveries.iter_deliveries(run_id)] == [
        ResultStatus.DELIVERED
    ] * 2
    assert _stats(base_url)["messages_by_to"] == {"+12125550101": 1, "+12125550102": 1}


def test_a_look_up_waits_for_a_post_of_the_same_recipient_and_body_in_flight(
    base_url: str,
) -> None:
    async def scenario() -> tuple[bool, str | None, str]:
        async with _client(base_url) as client:
            before = datetime.now(UTC)
            reconciler = Reconciler(client, set())
            key = ("+12125550111", "Hi")
            with reconciler.posting(key):  # another delivery's POST, answer not yet back
                sent = await client.create_message(to=key[0], body=key[1], from_number=SENDER)
                look_up = asyncio.create_task(
                    reconciler.find(to=key[0], body=key[1], attempted_at=before)
                )
                await asyncio.sleep(0.3)
                waited = not look_up.done()
                reconciler.known_sids.add(sent.sid)  # the POST's answer claims its message
            found = await look_up
            return waited, found.sid if found else None, sent.sid

    waited, found, _ = asyncio.run(scenario())

    assert waited  # it did not look while the POST was in flight ...
    assert found is None  # ... so it cannot take that POST's message
