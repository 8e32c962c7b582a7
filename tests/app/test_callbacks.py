"""Status callbacks through the front door: only Twilio's signature lets one in, for the
URL smslink gave Twilio (with or without its retry fragment) or the one the server saw."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

from smslink.app import Smslink
from smslink.app.callbacks import EARLY_RETRIES_S, CallbackOutcome, StatusCallback
from smslink.domain.models import Delivery, Progress, ResultStatus, Stage, Touchpoint
from smslink.engine import RunRequest
from smslink.twilio.signature import compute_signature
from tests.app.conftest import TOKEN, connection

BASE = "https://sms.example.com"
URL = f"{BASE}/twilio/status/sim#rc=5&rp=all"


def _form(sid: str = "SMx", status: str = "delivered", **more: str) -> list[tuple[str, str]]:
    return [("MessageSid", sid), ("MessageStatus", status), ("AccountSid", "AC1"), *more.items()]


def _callback(form: list[tuple[str, str]], *, url: str = URL, token: str = TOKEN, **kw: object):
    return StatusCallback(
        "sim",
        form,
        compute_signature(token, url, dict(form)),
        **kw,  # type: ignore[arg-type]
    )


def _tracked_delivery(smslink: Smslink, tmp_path, base_url: str) -> int:
    """A run with one delivery being tracked as SMx (written as the tracker would)."""
    smslink.connections.add(connection(base_url, callback_base_url=BASE))
    smslink.touchpoints.add(Touchpoint("t", "sim", "Hi", "phone", {}))
    audience = tmp_path / "a.csv"
    audience.write_text("phone\n+12125550100\n")
    run_id = smslink.runs.start(RunRequest("t", audience, tmp_path / "out.csv"))
    store = smslink._store
    store.deliveries.add_deliveries(
        run_id, [Delivery(run_id, 0, {"phone": "+12125550100"}, "+12125550100", "Hi", 1)], ["phone"]
    )
    store.deliveries.claim_pending(run_id, 1, datetime.now(UTC))
    store.deliveries.save_progress(
        [Progress(run_id, 0, Stage.TRACKING, twilio_status="queued", message_sid="SMx")]
    )
    return run_id


def _posting_delivery(smslink: Smslink, run_id: int) -> Any:
    """A second delivery of the run, claimed for its POST but without a sid stored yet
    (Twilio's answer on its way to the store); the store, for the test to go on."""
    store = smslink._store
    store.deliveries.add_deliveries(
        run_id, [Delivery(run_id, 1, {"phone": "+12125550101"}, "+12125550101", "Hi", 1)], ["phone"]
    )
    store.deliveries.claim_pending(run_id, 1, datetime.now(UTC))
    return store


def test_a_signed_callback_is_applied_once(smslink: Smslink, tmp_path, base_url: str) -> None:
    run_id = _tracked_delivery(smslink, tmp_path, base_url)
    callback = _callback(_form(), idempotency_token="tok-1")

    assert smslink.callbacks.receive(callback) is CallbackOutcome.APPLIED
    assert smslink.callbacks.receive(callback) is CallbackOutcome.DUPLICATE
    [row] = smslink.runs.deliveries(run_id).deliveries
    assert (row.stage, row.status) == (Stage.DONE, ResultStatus.DELIVERED)


def test_the_signature_may_be_over_the_url_without_its_fragment_or_as_the_server_saw_it(
    smslink: Smslink,
    tmp_path,
    base_url: str,
) -> None:
    _tracked_delivery(smslink, tmp_path, base_url)
    bare = _callback(_form(status="sent"), url=URL.partition("#")[0])
    assert smslink.callbacks.receive(bare) is CallbackOutcome.APPLIED
    seen = "http://10.0.0.5:8000/twilio/status/sim"
    proxied = _callback(_form(status="delivered"), url=seen, request_url=seen)
    assert smslink.callbacks.receive(proxied) is CallbackOutcome.APPLIED


def test_forged_missing_or_misdirected_callbacks_are_refused(
    smslink: Smslink,
    tmp_path,
    base_url: str,
) -> None:
    run_id = _tracked_delivery(smslink, tmp_path, base_url)
    form = _form()
    refused = [
        _callback(form, token="not-the-token"),
        _callback(form, url=f"{BASE}/twilio/status/other"),
        StatusCallback("sim", form, None),
        StatusCallback("sim", form, ""),
        StatusCallback("nope", form, compute_signature(TOKEN, URL, dict(form))),
        # Signed, then a field changed on the way.
        StatusCallback("sim", _form(status="failed"), compute_signature(TOKEN, URL, dict(form))),
    ]
    for callback in refused:
        assert smslink.callbacks.receive(callback) is CallbackOutcome.REFUSED
    [row] = smslink.runs.deliveries(run_id).deliveries
    assert (row.stage, row.twilio_status) == (Stage.TRACKING, "queued")


def test_unknown_messages_and_unreadable_forms_are_accepted_and_ignored(
    smslink: Smslink,
    tmp_path,
    base_url: str,
) -> None:
    _tracked_delivery(smslink, tmp_path, base_url)
    assert smslink.callbacks.receive(_callback(_form(sid="SMother"))) is CallbackOutcome.UNKNOWN
    assert smslink.callbacks.receive(_callback([("Foo", "bar")])) is CallbackOutcome.IGNORED


def test_many_callbacks_are_answered_each_in_their_order(
    smslink: Smslink,
    tmp_path,
    base_url: str,
) -> None:
    """`receive_many` (what the service does with the callbacks that arrive together)
    answers each callback as `receive` would have, in the order given: the refused and
    unreadable ones among them change nothing for the others."""
    _tracked_delivery(smslink, tmp_path, base_url)
    callbacks = [
        _callback(_form(status="sent"), idempotency_token="t1"),
        _callback(_form(status="delivered"), token="forged"),
        _callback([("Foo", "bar")]),
        _callback(_form(status="delivered"), idempotency_token="t2"),
        _callback(_form(status="delivered"), idempotency_token="t2"),
        _callback(_form(sid="SMother")),
        _callback(_form(status="sent"), idempotency_token="t3"),
    ]

    assert smslink.callbacks.receive_many(callbacks) == [
        CallbackOutcome.APPLIED,
        CallbackOutcome.REFUSED,
        CallbackOutcome.IGNORED,
        CallbackOutcome.APPLIED,
        CallbackOutcome.DUPLICATE,
        CallbackOutcome.UNKNOWN,
        CallbackOutcome.STALE,
    ]
    assert smslink.callbacks.receive_many([]) == []


def test_a_callback_before_its_sid_is_stored_is_applied_when_tried_again(
    smslink: Smslink,
    tmp_path,
    base_url: str,
) -> None:
    """The create's answer reaches the store a moment after Twilio may call: the callback
    is kept, and applied at a later try once the delivery holds its sid."""
    run_id = _tracked_delivery(smslink, tmp_path, base_url)
    store = _posting_delivery(smslink, run_id)
    early = _callback(
        _form(sid="SMlate", status="failed", ErrorCode="30007"), idempotency_token="e1"
    )

    assert smslink.callbacks.receive(early) is CallbackOutcome.UNKNOWN
    assert smslink.callbacks.early_waiting == 1
    assert smslink.callbacks.retry_early(now=time.monotonic() - 60) == 0  # not due yet
    store.deliveries.save_progress(
        [Progress(run_id, 1, Stage.TRACKING, twilio_status="queued", message_sid="SMlate")]
    )

    assert smslink.callbacks.retry_early(now=time.monotonic() + 1) == 1
    assert smslink.callbacks.early_waiting == 0
    [row] = [d for d in store.deliveries.iter_deliveries(run_id) if d.seq == 1]
    assert (row.stage, row.status, row.error_code) == (Stage.DONE, ResultStatus.FAILED, 30007)
    assert smslink.callbacks.receive(early) is CallbackOutcome.DUPLICATE  # Twilio's retry


def test_a_callback_no_delivery_ever_holds_is_let_go_after_its_last_try(
    smslink: Smslink,
    tmp_path,
    base_url: str,
) -> None:
    _tracked_delivery(smslink, tmp_path, base_url)
    assert smslink.callbacks.receive(_callback(_form(sid="SMforeign"))) is CallbackOutcome.UNKNOWN
    later = time.monotonic()
    for delay in EARLY_RETRIES_S:
        assert smslink.callbacks.early_waiting == 1
        assert smslink.callbacks.retry_early(now=later + delay + 0.01) == 0
    assert smslink.callbacks.early_waiting == 0


def test_a_later_callback_of_a_kept_message_is_applied_after_the_kept_ones(
    smslink: Smslink,
    tmp_path,
    base_url: str,
) -> None:
    """`sending` and `sent` came before the sid was stored and are kept; `delivered` comes
    once it is stored, before their next try: all three are applied, in Twilio's order,
    so the delivery's events show every change rather than only the last."""
    run_id = _tracked_delivery(smslink, tmp_path, base_url)
    store = _posting_delivery(smslink, run_id)
    for status in ("sending", "sent"):
        assert smslink.callbacks.receive(_callback(_form(sid="SMlate", status=status))) is (
            CallbackOutcome.UNKNOWN
        )
    store.deliveries.save_progress(
        [Progress(run_id, 1, Stage.TRACKING, twilio_status="queued", message_sid="SMlate")]
    )

    delivered = _callback(_form(sid="SMlate", status="delivered"))
    assert smslink.callbacks.receive_many([delivered]) == [CallbackOutcome.APPLIED]

    assert smslink.callbacks.early_waiting == 0
    events = smslink.events.delivery(f"{run_id}-2").events
    assert [e.twilio_status for e in events] == ["queued", "sending", "sent", "delivered"]


def test_a_retry_under_way_is_never_overtaken_by_a_later_status_of_its_message(
    smslink: Smslink,
    tmp_path,
    base_url: str,
) -> None:
    """The retry of a kept `sent` has taken it out and is writing it when the message's
    `delivered` arrives in another thread: `delivered` waits for the retry, so the events
    are queued, sent, delivered (applied the other way round, `sent` would be stale and
    its event missing). The retry is held at its write to make the race certain."""
    run_id = _tracked_delivery(smslink, tmp_path, base_url)
    store = _posting_delivery(smslink, run_id)
    assert smslink.callbacks.receive(_callback(_form(sid="SMlate", status="sent"))) is (
        CallbackOutcome.UNKNOWN
    )
    store.deliveries.save_progress(
        [Progress(run_id, 1, Stage.TRACKING, twilio_status="queued", message_sid="SMlate")]
    )
    callbacks = smslink.callbacks
    write = callbacks._apply
    writing, go_on = threading.Event(), threading.Event()

    def held_write(writes: list[Any]) -> Any:
        if threading.current_thread().name == "retry":
            writing.set()
            go_on.wait(5)
        return write(writes)

    callbacks._apply = held_write  # type: ignore[method-assign]
    retry = threading.Thread(target=lambda: callbacks.retry_early(now=10**9), name="retry")
    retry.start()
    assert writing.wait(5)
    later: list[Any] = []
    delivered = _callback(_form(sid="SMlate", status="delivered"))
    arrival = threading.Thread(target=lambda: later.extend(callbacks.receive_many([delivered])))
    arrival.start()
    time.sleep(0.3)  # the later status is here, and must wait
    go_on.set()
    retry.join(10)
    arrival.join(10)

    assert later == [CallbackOutcome.APPLIED]
    events = smslink.events.delivery(f"{run_id}-2").events
    assert [e.twilio_status for e in events] == ["queued", "sent", "delivered"]
