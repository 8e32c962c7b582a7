"""Tracker (engine/track.py): messages Twilio accepted are polled until their status is
final, or until the connection's poll attempts are used up (then `sent`, the original
connector's rule); statuses only move forward; a round reads the sender's message list when
many messages are due and fetches them one by one when few; a message deleted from Twilio
ends with its last known status. Real SQLite store, progress written by a real
ProgressWriter, the simulator over loopback."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Coroutine, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from smslink.domain.models import (
    Connection,
    Delivery,
    Progress,
    ResultStatus,
    RunSnapshot,
    Stage,
)
from smslink.engine.counters import RunCounters
from smslink.engine.progress_writer import ProgressWriter
from smslink.engine.track import OBSERVE_SLICE, Tracker
from smslink.simulator import SimulatorConfig, run_in_thread
from smslink.store import Store
from smslink.twilio import Message, TwilioClient

ACCOUNT = "AC" + "7ac0000000000000000000000000e001"
TOKEN = "track-token"
SENDER = "+15005550006"
FAST: dict[str, Any] = {"auth_token": TOKEN, "queued_s": 0.02, "sending_s": 0.02, "sent_s": 0.02}
#: A message that stays `queued` for the whole test.
SLOW_QUEUE: dict[str, Any] = {"auth_token": TOKEN, "queued_s": 60.0}


def _get(base_url: str, path: str) -> dict:
    with urllib.request.urlopen(base_url.replace("/2010-04-01", path)) as response:
        return json.load(response)


def _stats(base_url: str) -> dict:
    return _get(base_url, "/_stats")


def _connection(base_url: str, *, attempts: int, interval_ms: int = 100) -> Connection:
    return Connection(
        "c",
        ACCOUNT,
        TOKEN,
        from_number=SENDER,
        base_url=base_url,
        poll_interval_ms=interval_ms,
        poll_attempts=attempts,
    )


def _claimed_run(store: Store, recipients: int) -> int:
    """A run whose deliveries are claimed (POSTING), as the sender leaves them before a POST."""
    run = store.runs.create_run(
        touchpoint="t",
        connection="c",
        input_path="in.csv",
        output_path="out.csv",
        snapshot=RunSnapshot("Hi", "phone"),
    )
    batch = [
        Delivery(run.id, seq, {"phone": _to(seq)}, to=_to(seq), body="Hi", segments=1)
        for seq in range(recipients)
    ]
    store.deliveries.add_deliveries(run.id, batch, ["phone"])
    store.deliveries.claim_pending(run.id, recipients, datetime.now(UTC))
    return run.id


def _to(seq: int) -> str:
    return f"+1212555{seq:04d}"


async def _post(client: TwilioClient, recipients: int) -> list[Message]:
    return [
        await client.create_message(to=_to(seq), body="Hi", from_number=SENDER)
        for seq in range(recipients)
    ]


def _tracker(
    store: Store,
    run_id: int,
    connection: Connection,
    client: TwilioClient,
    writer: ProgressWriter,
    counters: RunCounters,
) -> Tracker:
    return Tracker(
        client=client,
        connection=connection,
        run_id=run_id,
        writer=writer,
        counters=counters,
        since=store.runs.get_run(run_id).created_at,
    )


async def _track(
    store: Store,
    run_id: int,
    connection: Connection,
    *,
    post: int = 0,
    resume: dict[int, tuple[str, str]] | None = None,
    while_tracking: Coroutine[None, None, None] | None = None,
) -> RunCounters:
    """Post `post` messages and accept them (as the sender does), or resume tracking the
    given (sid, stored status) by seq (as a resumed run does); track until all are done."""
    counters = RunCounters()
    async with (
        TwilioClient.for_connection(connection) as client,
        ProgressWriter(store, max_delay_s=0.01) as writer,
    ):
        tracker = _tracker(store, run_id, connection, client, writer, counters)
        for seq, message in enumerate(await _post(client, post)):
            tracker.accept(seq, message)
        for seq, (sid, status) in (resume or {}).items():
            tracker.resume(seq, sid, status, polls=0, updated_at=None)
        sending_done = asyncio.Event()
        sending_done.set()
        tracking = asyncio.create_task(tracker.run(sending_done))
        if while_tracking is not None:
            await while_tracking
        await asyncio.wait_for(tracking, timeout=10)
        assert len(tracker) == 0
    return counters


def _deliveries(store: Store, run_id: int) -> list[Delivery]:
    return list(store.deliveries.iter_deliveries(run_id, with_row=False))


@pytest.fixture
def fast_twilio() -> Iterator[str]:
    """Messages final in 60 ms: a third delivered, a third undelivered, a third failed."""
    with run_in_thread(SimulatorConfig(**FAST, undelivered_share=1 / 3, failed_share=1 / 3)) as url:
        yield url


@pytest.fixture
def slow_queue() -> Iterator[str]:
    with run_in_thread(SimulatorConfig(**SLOW_QUEUE)) as url:
        yield url


def test_polling_stops_at_delivered_undelivered_or_failed(store: Store, fast_twilio: str) -> None:
    run_id = _claimed_run(store, 9)
    attempts = 30  # three seconds of polling, were it not to stop

    started = time.monotonic()
    counters = asyncio.run(
        _track(store, run_id, _connection(fast_twilio, attempts=attempts), post=9)
    )

    assert time.monotonic() - started < 2
    done = _deliveries(store, run_id)
    truth = {m["sid"]: m for m in _get(fast_twilio, "/_messages")["messages"]}
    assert {d.status for d in done} == {
        ResultStatus.DELIVERED,
        ResultStatus.UNDELIVERED,
        ResultStatus.FAILED,
    }
    for delivery in done:
        twilio = truth[delivery.message_sid or ""]
        assert delivery.stage is Stage.DONE
        assert delivery.twilio_status == twilio["status"] == str(delivery.status)
        assert delivery.error_code == twilio["error_code"]  # 3000x with undelivered, failed
        assert 1 <= delivery.polls < attempts
    assert counters.done == 9 and sum(counters.by_status.values()) == 9


@pytest.mark.parametrize(
    "stuck",
    [
        {"stuck_share": 1.0},  # stays `sent`: a carrier that sends no receipt
        {"queued_s": 60.0},  # still `queued` when the attempts run out
    ],
    ids=["stuck-at-sent", "still-queued"],
)
def test_attempts_used_up_give_sent_whatever_twilio_last_said(
    store: Store, stuck: dict[str, float]
) -> None:
    with run_in_thread(SimulatorConfig(**(FAST | stuck))) as simulator:
        run_id = _claimed_run(store, 2)
        counters = asyncio.run(_track(store, run_id, _connection(simulator, attempts=3), post=2))
        last_said = [m["status"] for m in _get(simulator, "/_messages")["messages"]]

    done = _deliveries(store, run_id)
    assert [(d.stage, d.status, d.polls) for d in done] == [(Stage.DONE, ResultStatus.SENT, 3)] * 2
    assert [d.twilio_status for d in done] == last_said  # Twilio's own word kept beside it
    assert last_said[0] == ("sent" if "stuck_share" in stuck else "queued")
    assert counters.by_status == {ResultStatus.SENT: 2}


@pytest.mark.parametrize(
    ("recipients", "kind"),
    [(1, "fetches"), (3, "lists")],
    ids=["one-due-fetched", "three-due-listed"],
)
def test_an_older_status_from_twilio_never_moves_a_delivery_back(
    store: Store, slow_queue: str, recipients: int, kind: str
) -> None:
    """The store says `sent` (a status seen before the run stopped); Twilio, asked by fetch or
    by listing, still says `queued`: the delivery keeps `sent`, and ends `sent`."""

    async def post_all() -> list[Message]:
        async with TwilioClient.for_connection(_connection(slow_queue, attempts=1)) as client:
            return await _post(client, recipients)

    run_id = _claimed_run(store, recipients)
    posted = asyncio.run(post_all())
    store.deliveries.save_progress(
        [
            Progress(run_id, seq, Stage.TRACKING, twilio_status="sent", message_sid=m.sid)
            for seq, m in enumerate(posted)
        ]
    )
    before = _stats(slow_queue)

    asyncio.run(
        _track(
            store,
            run_id,
            _connection(slow_queue, attempts=2),
            resume={seq: (m.sid, "sent") for seq, m in enumerate(posted)},
        )
    )

    after = _stats(slow_queue)
    assert {m["status"] for m in _get(slow_queue, "/_messages")["messages"]} == {"queued"}
    assert after[kind] - before[kind] == 2  # one request a round, two rounds
    other = "lists" if kind == "fetches" else "fetches"
    assert after[other] == before[other]
    done = _deliveries(store, run_id)
    assert [(d.stage, d.twilio_status, d.status) for d in done] == [
        (Stage.DONE, "sent", ResultStatus.SENT)
    ] * recipients


@pytest.mark.parametrize(
    ("recipients", "fetches", "lists"),
    [(1, 3, 0), (2, 0, 3), (40, 0, 3)],
    ids=["one-due", "two-due", "forty-due"],
)
def test_a_round_lists_the_senders_messages_when_many_are_due_and_fetches_when_few(
    store: Store, slow_queue: str, recipients: int, fetches: int, lists: int
) -> None:
    """A listing of up to 1,000 messages is one request: it pays as soon as two are due."""
    run_id = _claimed_run(store, recipients)
    before = _stats(slow_queue)

    asyncio.run(_track(store, run_id, _connection(slow_queue, attempts=3), post=recipients))

    after = _stats(slow_queue)
    assert (after["fetches"] - before["fetches"], after["lists"] - before["lists"]) == (
        fetches,
        lists,
    )
    assert all(d.polls == 3 for d in _deliveries(store, run_id))


def test_a_message_deleted_from_twilio_ends_with_its_last_known_status(store: Store) -> None:
    """Twilio answers 20404 for a message deleted from its log: it was sent, so the result
    is its last known status, with Twilio's answer beside it; polling ends at once."""
    with run_in_thread(SimulatorConfig(**FAST, stuck_share=1.0)) as simulator:
        run_id = _claimed_run(store, 1)

        asyncio.run(
            _track(
                store,
                run_id,
                _connection(simulator, attempts=30),
                post=1,
                while_tracking=_delete_once_seen_sent(store, run_id, simulator),
            )
        )
        assert _stats(simulator)["fetches"] >= 1  # it asked after the deletion

    (delivery,) = _deliveries(store, run_id)
    assert (delivery.stage, delivery.status, delivery.twilio_status) == (
        Stage.DONE,
        ResultStatus.SENT,
        "sent",
    )
    assert delivery.error_code == 20404
    assert "can no longer be read from Twilio" in (delivery.error_message or "")
    assert delivery.polls < 30


def test_many_messages_deleted_from_twilio_end_at_once_after_the_listing_misses_them(
    store: Store,
) -> None:
    """When many are due, a round lists them; messages deleted from Twilio's log are not
    in a complete listing, so one fetch each (20404) ends them with their last status,
    rather than listing for them until every poll attempt is spent."""
    with run_in_thread(SimulatorConfig(**FAST, stuck_share=1.0)) as simulator:
        run_id = _claimed_run(store, 3)

        asyncio.run(
            _track(
                store,
                run_id,
                _connection(simulator, attempts=10),
                post=3,
                while_tracking=_delete_once_seen_sent(store, run_id, simulator),
            )
        )

    deliveries = _deliveries(store, run_id)
    assert [(d.status, d.error_code) for d in deliveries] == [(ResultStatus.SENT, 20404)] * 3
    assert all(d.polls < 10 for d in deliveries)  # ended at once, not after every attempt


async def _delete_once_seen_sent(store: Store, run_id: int, simulator: str) -> None:
    """Once the tracker has stored `sent` for every delivery, delete every message from the
    simulator's log (its /_reset), as Twilio's message deletion would."""
    deadline = time.monotonic() + 5
    while any(d.twilio_status != "sent" for d in _deliveries(store, run_id)):
        assert time.monotonic() < deadline, "the tracker never saw them `sent`"
        await asyncio.sleep(0.02)
    await asyncio.to_thread(
        urllib.request.urlopen,
        urllib.request.Request(simulator.replace("/2010-04-01", "/_reset"), method="POST"),
    )


def test_once_sending_is_over_the_last_messages_are_read_when_due(
    store: Store, fast_twilio: str
) -> None:
    """With a 2 s interval, messages sent as sending ends are polled when they fall due
    (half an interval on), not at the next whole-interval round: the run ends ~1 s after
    its last send instead of 2 s or more."""
    run_id = _claimed_run(store, 3)
    connection = _connection(fast_twilio, attempts=5, interval_ms=2000)

    started = time.monotonic()
    asyncio.run(_track(store, run_id, connection, post=3))
    took = time.monotonic() - started

    assert 0.95 <= took < 1.8
    assert all(d.stage is Stage.DONE and d.polls == 1 for d in _deliveries(store, run_id))


def test_a_straggler_after_sending_is_polled_every_interval(store: Store, slow_queue: str) -> None:
    """A message that stays queued is polled once per interval after sending ended, as
    the original connector did, until the attempts are used up (then `sent`)."""
    run_id = _claimed_run(store, 1)
    connection = _connection(slow_queue, attempts=3, interval_ms=300)

    started = time.monotonic()
    asyncio.run(_track(store, run_id, connection, post=1))
    took = time.monotonic() - started

    [delivery] = _deliveries(store, run_id)
    assert (delivery.status, delivery.polls) == (ResultStatus.SENT, 3)
    assert 0.15 + 2 * 0.3 - 0.05 <= took < 1.5  # due at 0.15 s, then every 0.3 s


def test_an_early_round_after_sending_does_not_poll_a_straggler_again(
    store: Store, slow_queue: str
) -> None:
    """A message polled at a regular round waits its whole interval, even when sending
    ends and a message sent last brings the next round forward: its attempts are not
    spent sooner. Interval 0.4 s, attempts 3: A is polled at ~0.4 s; B is sent at
    0.5 s and polled early at ~0.7 s; A's second poll comes at ~1.1 s, not 0.7 s, so A is
    not finished (`sent`, attempts used up) by 1.25 s."""
    run_id = _claimed_run(store, 2)
    connection = _connection(slow_queue, attempts=3, interval_ms=400)
    a_at_1_25: list[Stage] = []

    async def main() -> None:
        async with (
            TwilioClient.for_connection(connection) as client,
            ProgressWriter(store, max_delay_s=0.01) as writer,
        ):
            tracker = _tracker(store, run_id, connection, client, writer, RunCounters())
            started = time.monotonic()
            [a] = await _post(client, 1)
            tracker.accept(0, a)
            sending_done = asyncio.Event()
            tracking = asyncio.create_task(tracker.run(sending_done))
            await asyncio.sleep(0.5 - (time.monotonic() - started))
            b = await client.create_message(to=_to(1), body="Hi", from_number=SENDER)
            tracker.accept(1, b)
            sending_done.set()
            await asyncio.sleep(1.25 - (time.monotonic() - started))
            a_at_1_25.append(_deliveries(store, run_id)[0].stage)
            await asyncio.wait_for(tracking, timeout=10)

    asyncio.run(main())
    assert a_at_1_25 == [Stage.POSTING] or a_at_1_25 == [Stage.TRACKING]
    done = _deliveries(store, run_id)
    assert [(d.status, d.polls) for d in done] == [(ResultStatus.SENT, 3)] * 2


def test_a_listing_round_lets_the_senders_answers_in_every_slice_of_a_page(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A listing page (up to a thousand messages) is decoded and matched a slice at a time:
    a loop held for the whole page holds every answer the senders wait for."""
    recipients = 3 * OBSERVE_SLICE
    decoded = 0
    from_json = Message.from_json

    def counting(data: Any) -> Message:
        nonlocal decoded
        decoded += 1
        return from_json(data)

    monkeypatch.setattr(Message, "from_json", staticmethod(counting))
    most_between_turns = 0

    async def others_turns() -> None:
        nonlocal most_between_turns
        seen = decoded
        while True:
            await asyncio.sleep(0)
            most_between_turns = max(most_between_turns, decoded - seen)
            seen = decoded

    async def track_with_another_task() -> None:
        turns = asyncio.create_task(others_turns())
        await _track(store, run_id, _connection(simulator, attempts=5), post=recipients)
        turns.cancel()

    with run_in_thread(SimulatorConfig(**FAST)) as simulator:
        run_id = _claimed_run(store, recipients)
        asyncio.run(track_with_another_task())
        stats = _stats(simulator)
        assert stats["lists"] >= 1 and stats["fetches"] == 0  # the listing, not one by one

    assert decoded >= 2 * recipients  # each answer to a POST, then each message listed
    assert 0 < most_between_turns <= OBSERVE_SLICE
