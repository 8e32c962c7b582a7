"""Deliveries' events, written in the store with the change they report: one per status
change, in order, and a delivery's final status exactly once whichever of the tracker and
a status callback writes it, and in whichever order, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from smslink.domain.callbacks import StatusUpdate
from smslink.domain.models import Delivery, Progress, ResultStatus, Stage
from smslink.store import Applied, Store, open_store
from smslink.store.secrets import SecretBox
from tests.store.records import NOW, connection, deliveries, new_run, tracking_run


def _history(store: Store, run_id: int, seq: int) -> list[tuple[str | None, str | None]]:
    return [(e.twilio_status, e.status) for e in store.events.of_delivery(run_id, seq)]


def _finals(store: Store) -> Counter[tuple[int, int]]:
    return Counter((e.run_id, e.seq) for e in store.events.after(0, 100_000) if e.status)


def _done(run_id: int, seq: int, twilio: str, result: ResultStatus, **kw: object) -> Progress:
    return Progress(run_id, seq, Stage.DONE, result, twilio, f"SM{seq}", **kw)  # type: ignore[arg-type]


def test_a_delivery_stored_final_has_its_one_event(store: Store):
    store.catalogue.add_connection(connection())
    run_id = new_run(store)
    bad = Delivery(
        run_id, 1, {"mobile": "nope"}, None, None, 0, Stage.DONE, ResultStatus.ERROR,
        error_message="not a phone number",
    )  # fmt: skip
    store.deliveries.add_deliveries(run_id, [*deliveries(run_id, range(1)), bad], ["mobile"])

    [event] = store.events.after(0, 10)
    assert (event.run_id, event.seq, event.status, event.error_message, event.touchpoint) == (
        run_id,
        1,
        "error",
        "not a phone number",
        "welcome",
    )
    assert event.delivery_id == f"{run_id}-2"
    assert store.events.of_delivery(run_id, 0) == []  # pending: nothing happened yet


def test_each_change_is_one_event_and_nothing_else_is(store: Store):
    run_id = tracking_run(store, 2)
    # queued again (no change), then sent, then delivered (final), then a late write.
    store.deliveries.save_progress(
        [Progress(run_id, 0, Stage.TRACKING, twilio_status="queued", message_sid="SM0", polls=1)]
    )
    store.deliveries.save_progress(
        [Progress(run_id, 0, Stage.TRACKING, twilio_status="sent", message_sid="SM0", polls=2)]
    )
    store.deliveries.save_progress([_done(run_id, 0, "delivered", ResultStatus.DELIVERED)])
    store.deliveries.save_progress([_done(run_id, 0, "failed", ResultStatus.FAILED)])
    # A tracker's older read never moves the status back, and is no event either.
    store.deliveries.save_progress(
        [Progress(run_id, 1, Stage.TRACKING, twilio_status="sent", message_sid="SM1")]
    )
    store.deliveries.save_progress(
        [Progress(run_id, 1, Stage.TRACKING, twilio_status="queued", message_sid="SM1")]
    )

    assert _history(store, run_id, 0) == [
        ("queued", None),
        ("sent", None),
        ("delivered", "delivered"),
    ]
    assert _history(store, run_id, 1) == [("queued", None), ("sent", None)]
    ids = [e.id for e in store.events.after(0, 100)]
    assert ids == sorted(ids) and len(ids) == 5


def test_two_updates_of_one_delivery_in_one_batch_are_two_events(store: Store):
    store.catalogue.add_connection(connection())
    run_id = new_run(store)
    store.deliveries.add_deliveries(run_id, deliveries(run_id, range(1)), ["mobile"])
    store.deliveries.claim_pending(run_id, 1, NOW)
    store.deliveries.save_progress(
        [
            Progress(run_id, 0, Stage.TRACKING, twilio_status="queued", message_sid="SM0"),
            _done(run_id, 0, "undelivered", ResultStatus.UNDELIVERED, error_code=30003),
            _done(run_id, 0, "delivered", ResultStatus.DELIVERED),
        ]
    )
    assert _history(store, run_id, 0) == [("queued", None), ("undelivered", "undelivered")]
    [final] = [e for e in store.events.of_delivery(run_id, 0) if e.status]
    assert final.error_code == 30003
    [row] = store.deliveries.iter_deliveries(run_id)
    assert row.status is ResultStatus.UNDELIVERED


def test_the_final_event_is_written_once_with_the_tracker_first(store: Store):
    run_id = tracking_run(store)
    store.deliveries.save_progress(
        [_done(run_id, 0, "failed", ResultStatus.FAILED, error_code=30006)]
    )
    assert store.callbacks.apply_status_by_sid(
        StatusUpdate("SM0", "delivered"), received_at=NOW
    ) is (Applied.STALE)
    assert _history(store, run_id, 0) == [("queued", None), ("failed", "failed")]
    assert _finals(store) == {(run_id, 0): 1}


def test_the_final_event_is_written_once_with_the_callback_first(store: Store):
    run_id = tracking_run(store)
    store.callbacks.apply_status_by_sid(StatusUpdate("SM0", "sent"), received_at=NOW)
    store.callbacks.apply_status_by_sid(StatusUpdate("SM0", "undelivered", 30003), received_at=NOW)
    # The tracker writes what it read before the callbacks: sending, then delivered.
    store.deliveries.save_progress(
        [Progress(run_id, 0, Stage.TRACKING, twilio_status="sending", message_sid="SM0")]
    )
    store.deliveries.save_progress([_done(run_id, 0, "delivered", ResultStatus.DELIVERED)])

    assert _history(store, run_id, 0) == [
        ("queued", None),
        ("sent", None),
        ("undelivered", "undelivered"),
    ]
    [final] = [e for e in store.events.of_delivery(run_id, 0) if e.status]
    assert (final.error_code, final.message_sid, final.segments) == (30003, "SM0", 1)
    assert _finals(store) == {(run_id, 0): 1}


def test_racing_tracker_and_callbacks_write_each_final_event_once(url: str, key: bytes):
    """Two processes' worth of writers (each its own store) finishing the same deliveries
    at once: every delivery ends with exactly one final event, equal to its stored result,
    and the ids are in commit order (a reader after any id misses nothing)."""
    n = 60
    with open_store(url, secret_box=SecretBox(key)) as first:
        run_id = tracking_run(first, n)
    stores = [open_store(url, secret_box=SecretBox(key)) for _ in range(2)]
    seen: list[int] = []
    try:
        barrier = threading.Barrier(3)

        def tracker() -> None:
            barrier.wait()
            for start in range(0, n, 10):
                stores[0].deliveries.save_progress(
                    [
                        _done(run_id, i, "failed", ResultStatus.FAILED)
                        for i in range(start, start + 10)
                    ]
                )

        def callbacks() -> None:
            barrier.wait()
            for i in reversed(range(n)):
                stores[1].callbacks.apply_status_by_sid(
                    StatusUpdate(f"SM{i}", "delivered"), received_at=NOW
                )

        def reader() -> None:
            barrier.wait()
            last = 0
            for _ in range(200):
                for event in stores[0].events.after(last, 1000):
                    seen.append(event.id)
                    last = event.id

        threads = [threading.Thread(target=t) for t in (tracker, callbacks, reader)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        store = stores[0]
        assert _finals(store) == {(run_id, i): 1 for i in range(n)}
        results = {d.seq: str(d.status) for d in store.deliveries.iter_deliveries(run_id)}
        for i in range(n):
            [final] = [e for e in store.events.of_delivery(run_id, i) if e.status]
            assert final.status == results[i]
        every = [e.id for e in store.events.after(0, 100_000)]
        assert seen == every[: len(seen)]  # what the reader saw: no gap, no repeat
    finally:
        for s in stores:
            s.close()


@pytest.mark.parametrize("limit", [1, 2, 100])
def test_events_page_after_a_cursor(store: Store, limit: int):
    run_id = tracking_run(store, 3)
    every = store.events.after(0, 100)
    assert [e.seq for e in every] == [0, 1, 2] and all(e.run_id == run_id for e in every)
    paged, last = [], 0
    while page := store.events.after(last, limit):
        paged.extend(page)
        last = page[-1].id
    assert paged == every
    assert store.events.last_id() == every[-1].id
