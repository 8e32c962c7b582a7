"""Status callbacks applied in the store: forward only, once per idempotency token, and
never undone by the tracker's own writes (nor undoing them), on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import text

from smslink.domain.callbacks import StatusUpdate
from smslink.domain.models import Progress, ResultStatus, Stage
from smslink.store import Applied, CallbackWrite, Store
from tests.store.records import NOW, connection, deliveries, tracking_run


def _row(store: Store, run_id: int, seq: int):
    [row] = [d for d in store.deliveries.iter_deliveries(run_id) if d.seq == seq]
    return row


def test_a_final_status_finishes_the_delivery_as_polling_would(store: Store):
    run_id = tracking_run(store)
    update = StatusUpdate("SM0", "undelivered", 30003)

    assert store.callbacks.apply_status_by_sid(update, received_at=NOW) is Applied.APPLIED

    row = _row(store, run_id, 0)
    assert (row.stage, row.status, row.twilio_status) == (
        Stage.DONE,
        ResultStatus.UNDELIVERED,
        "undelivered",
    )
    assert (row.error_code, row.error_message) == (30003, "Unreachable destination handset")
    assert store.deliveries.finished_among(run_id, [0, 1, 2]) == {0: ResultStatus.UNDELIVERED}


def test_an_intermediate_status_moves_forward_and_keepstracking_run(store: Store):
    run_id = tracking_run(store)
    assert store.callbacks.apply_status_by_sid(StatusUpdate("SM1", "sent"), received_at=NOW) == (
        Applied.APPLIED
    )
    row = _row(store, run_id, 1)
    assert (row.stage, row.status, row.twilio_status) == (Stage.TRACKING, None, "sent")


def test_a_late_sent_after_delivered_changes_nothing(store: Store):
    run_id = tracking_run(store)
    store.callbacks.apply_status_by_sid(StatusUpdate("SM0", "delivered"), received_at=NOW)
    later = NOW + timedelta(seconds=5)

    assert store.callbacks.apply_status_by_sid(StatusUpdate("SM0", "sent"), received_at=later) is (
        Applied.STALE
    )
    row = _row(store, run_id, 0)
    assert (row.status, row.twilio_status, row.updated_at) == (
        ResultStatus.DELIVERED,
        "delivered",
        NOW,
    )


def test_a_second_failed_keeps_the_first_error_code(store: Store):
    run_id = tracking_run(store)
    store.callbacks.apply_status_by_sid(StatusUpdate("SM2", "failed", 30005), received_at=NOW)
    again = StatusUpdate("SM2", "failed", 30008)

    assert store.callbacks.apply_status_by_sid(again, received_at=NOW) is Applied.STALE
    assert _row(store, run_id, 2).error_code == 30005


def test_a_replayed_token_is_applied_once(store: Store):
    run_id = tracking_run(store)
    sent = StatusUpdate("SM0", "sent")
    assert store.callbacks.apply_status_by_sid(sent, received_at=NOW, token="t-1") is (
        Applied.APPLIED
    )
    # The same token again, even carrying news, is the same callback retried: ignored.
    delivered = StatusUpdate("SM0", "delivered")
    assert store.callbacks.apply_status_by_sid(delivered, received_at=NOW, token="t-1") is (
        Applied.DUPLICATE
    )
    assert _row(store, run_id, 0).twilio_status == "sent"


def test_an_unknown_sid_or_status_changes_nothing(store: Store):
    run_id = tracking_run(store)
    before = list(store.deliveries.iter_deliveries(run_id))

    assert store.callbacks.apply_status_by_sid(
        StatusUpdate("SMnope", "delivered"), received_at=NOW
    ) is (Applied.UNKNOWN)
    assert store.callbacks.apply_status_by_sid(
        StatusUpdate("SM0", "teleported"), received_at=NOW
    ) is (Applied.STALE)
    assert list(store.deliveries.iter_deliveries(run_id)) == before


def test_the_tracker_never_overwrites_a_callback_and_a_callback_never_overwrites_it(
    store: Store,
):
    """Both orders of the race between a poll's write and a callback."""
    run_id = tracking_run(store)
    # 0: the callback finishes it, then the tracker writes what it read before (sending).
    store.callbacks.apply_status_by_sid(StatusUpdate("SM0", "delivered"), received_at=NOW)
    # 1: a callback says sent; the tracker's older read (sending) must not move it back.
    store.callbacks.apply_status_by_sid(StatusUpdate("SM1", "sent"), received_at=NOW)
    # 2: the tracker finishes it first (failed); a callback then says delivered.
    store.deliveries.save_progress(
        [
            Progress(run_id, 0, Stage.TRACKING, twilio_status="sending", message_sid="SM0"),
            Progress(
                run_id, 1, Stage.TRACKING, twilio_status="sending", message_sid="SM1", polls=1
            ),
            Progress(
                run_id,
                2,
                Stage.DONE,
                ResultStatus.FAILED,
                "failed",
                "SM2",
                30006,
                "Landline or unreachable carrier",
                polls=2,
            ),
        ]
    )
    assert store.callbacks.apply_status_by_sid(
        StatusUpdate("SM2", "delivered"), received_at=NOW
    ) is (Applied.STALE)

    rows = {d.seq: d for d in store.deliveries.iter_deliveries(run_id)}
    assert (rows[0].stage, rows[0].status, rows[0].twilio_status) == (
        Stage.DONE,
        ResultStatus.DELIVERED,
        "delivered",
    )
    assert (rows[1].stage, rows[1].twilio_status, rows[1].polls) == (Stage.TRACKING, "sent", 1)
    assert (rows[2].status, rows[2].error_code) == (ResultStatus.FAILED, 30006)


def test_old_tokens_are_pruned(store: Store):
    tracking_run(store)
    store.callbacks.apply_status_by_sid(StatusUpdate("SM0", "sent"), received_at=NOW, token="a")
    later = NOW + timedelta(days=2)
    store.callbacks.apply_status_by_sid(StatusUpdate("SM1", "sent"), received_at=later, token="b")

    assert store.callbacks.prune_tokens(NOW + timedelta(days=1)) == 1
    # "a" is forgotten: the same token is news again; "b" is still remembered.
    sent = StatusUpdate("SM0", "delivered")
    assert store.callbacks.apply_status_by_sid(sent, received_at=later, token="a") is (
        Applied.APPLIED
    )
    assert store.callbacks.apply_status_by_sid(sent, received_at=later, token="b") is (
        Applied.DUPLICATE
    )


def test_a_callback_of_one_connection_never_touches_another_connections_message(store: Store):
    run_id = tracking_run(store)  # a run of connection "main"
    store.catalogue.add_connection(connection("other"))
    update = StatusUpdate("SM0", "delivered")

    assert store.callbacks.apply_status_by_sid(update, received_at=NOW, connection="other") is (
        Applied.UNKNOWN
    )
    assert _row(store, run_id, 0).stage is Stage.TRACKING
    assert store.callbacks.apply_status_by_sid(update, received_at=NOW, connection="main") is (
        Applied.APPLIED
    )


def test_a_batch_is_applied_in_its_order_with_its_events_in_that_order(store: Store):
    """Callbacks applied together (one transaction) end as if applied one by one: a token
    repeated within the batch counts once, a late status is stale, an unknown sid is
    unknown, and the events are those of the changes, in the order they were made."""
    run_id = tracking_run(store)
    before = store.events.after(0, 100)[-1].id  # the set-up's own "queued" events
    writes = [
        CallbackWrite(StatusUpdate("SM0", "sent"), token="a"),
        CallbackWrite(StatusUpdate("SM1", "failed", 30005), token="b"),
        CallbackWrite(StatusUpdate("SM0", "delivered"), token="a"),  # "a" again: a retry
        CallbackWrite(StatusUpdate("SM0", "delivered"), token="c"),
        CallbackWrite(StatusUpdate("SM1", "failed", 30008), token="d"),  # second failed
        CallbackWrite(StatusUpdate("SMnope", "sent"), token="e"),
        CallbackWrite(StatusUpdate("SM0", "sent"), token="f"),  # late
    ]

    outcomes = store.callbacks.apply_statuses(writes, received_at=NOW)

    assert outcomes == [
        Applied.APPLIED,
        Applied.APPLIED,
        Applied.DUPLICATE,
        Applied.APPLIED,
        Applied.STALE,
        Applied.UNKNOWN,
        Applied.STALE,
    ]
    assert (_row(store, run_id, 0).status, _row(store, run_id, 1).error_code) == (
        ResultStatus.DELIVERED,
        30005,
    )
    made = [(e.seq, e.twilio_status, e.status) for e in store.events.after(before, 100)]
    assert made == [(0, "sent", None), (1, "failed", "failed"), (0, "delivered", "delivered")]


def test_a_batch_that_fails_keeps_nothing_not_even_its_tokens(store: Store):
    run_id = tracking_run(store)
    before = store.events.after(0, 100)
    good = CallbackWrite(StatusUpdate("SM0", "delivered"), token="kept-only-if-applied")
    unbindable = CallbackWrite(StatusUpdate("SM1", "sent"), token={"not": "text"})  # type: ignore[arg-type]

    with pytest.raises(Exception):  # noqa: B017  (the driver's own error, either database)
        store.callbacks.apply_statuses([good, unbindable], received_at=NOW)

    assert _row(store, run_id, 0).twilio_status == "queued"
    assert store.events.after(0, 100) == before
    # Nothing of the failed batch stayed, its token neither: sent again, it applies.
    assert store.callbacks.apply_statuses([good], received_at=NOW) == [Applied.APPLIED]


def test_a_callback_for_a_sid_not_stored_yet_does_not_spend_its_token(store: Store):
    """Twilio may call before the create's answer is stored: that callback changes nothing
    and leaves its token free, so when it is tried again (app/callbacks.py) it applies."""
    run_id = tracking_run(store)
    early = StatusUpdate("SM9", "sent")
    assert store.callbacks.apply_status_by_sid(early, received_at=NOW, token="t-9") is (
        Applied.UNKNOWN
    )
    store.deliveries.add_deliveries(run_id, deliveries(run_id, range(9, 10)), ["mobile"])
    store.deliveries.claim_pending(run_id, 10, NOW)
    store.deliveries.save_progress(
        [Progress(run_id, 9, Stage.TRACKING, twilio_status="queued", message_sid="SM9")]
    )

    assert store.callbacks.apply_status_by_sid(early, received_at=NOW, token="t-9") is (
        Applied.APPLIED
    )
    assert store.callbacks.apply_status_by_sid(early, received_at=NOW, token="t-9") is (
        Applied.DUPLICATE
    )
    assert _row(store, run_id, 9).twilio_status == "sent"


def test_a_batch_takes_its_rows_in_the_trackers_order_so_neither_waits_for_the_other(
    store: Store, url: str
):
    """PostgreSQL: the tracker locks a run's rows in seq order. A batch of callbacks for
    SM4 then SM1 locks them in that same order before it updates any, so a tracker holding
    SM1 that then wants SM4 gets it (the batch holds nothing while it waits): no deadlock,
    and both writes end as they should."""
    if not url.startswith("postgresql"):
        pytest.skip("SQLite has one writer at a time: no row locks to order")
    run_id = tracking_run(store, 5)
    engine = store._db.engine
    tracker = engine.connect()
    transaction = tracker.begin()
    lock = text("SELECT seq FROM deliveries WHERE run_id = :run AND seq = :seq FOR UPDATE")
    tracker.execute(text("SET LOCAL lock_timeout = '5s'"))
    tracker.execute(lock, {"run": run_id, "seq": 1})
    outcome: list[object] = []
    batch = threading.Thread(
        target=lambda: outcome.append(
            store.callbacks.apply_statuses(
                [
                    CallbackWrite(StatusUpdate("SM4", "sent")),
                    CallbackWrite(StatusUpdate("SM1", "sent")),
                ],
                received_at=NOW,
            )
        )
    )
    batch.start()
    time.sleep(0.5)  # the batch is waiting for SM1 (or, unordered, holds SM4 and waits)
    try:
        tracker.execute(lock, {"run": run_id, "seq": 4})  # a deadlock would be raised here
    finally:
        transaction.commit()
        tracker.close()
    batch.join(10)

    assert outcome == [[Applied.APPLIED, Applied.APPLIED]]
    assert (_row(store, run_id, 4).twilio_status, _row(store, run_id, 1).twilio_status) == (
        "sent",
        "sent",
    )
