"""Status callbacks over real loopback HTTP: what Twilio POSTs to a StatusCallback URL.

A real aiohttp receiver on its own loopback port records every POST; messages are sent with
the official SDK, and every signature is checked with the SDK's RequestValidator (and with
smslink's own check, which must agree).
"""

from __future__ import annotations

import dataclasses
import re
import socket
import time
from collections.abc import Callable

import pytest
from receiver import Received, Receiver
from simkit import ACCOUNT_SID, FAST, FROM, SERVICE_SID, TOKEN, Sim
from twilio.request_validator import RequestValidator

from smslink.simulator import SimulatorConfig
from smslink.twilio import is_valid_signature

TO = "+14155550100"
LIFECYCLE = ["sending", "sent", "delivered"]


@pytest.fixture
def receiver(start_receiver: Callable[..., Receiver]) -> Receiver:
    return start_receiver()


def fast(**changes: object) -> SimulatorConfig:
    return dataclasses.replace(FAST, **changes)


def statuses(got: list[Received], sid: str | None = None) -> list[str]:
    return [r.form["MessageStatus"] for r in got if sid is None or r.form["MessageSid"] == sid]


def assert_signed(got: Received, url: str) -> None:
    """Signed as Twilio signs: the SDK's validator and smslink's both accept it."""
    assert got.signature is not None
    assert RequestValidator(TOKEN).validate(url, got.form, got.signature)
    assert is_valid_signature(TOKEN, url, got.form, got.signature)
    assert not RequestValidator("another-token").validate(url, got.form, got.signature)


def test_delivered_message_reports_each_change_after_the_first(
    start_sim: Callable[..., Sim], receiver: Receiver
) -> None:
    sim = start_sim(FAST)
    url = receiver.url()
    began = time.monotonic()
    message = sim.client().messages.create(to=TO, from_=FROM, body="Hi", status_callback=url)
    assert message.status == "queued"  # the first status is the create answer, no callback
    got = receiver.wait(3)
    assert statuses(receiver.settle()) == LIFECYCLE  # in order, 'queued' never POSTed
    for callback, status in zip(got, LIFECYCLE, strict=True):
        assert callback.path_qs == "/twilio/status?run=7&kind=sms"
        assert callback.content_type == "application/x-www-form-urlencoded"
        assert callback.user_agent == "TwilioProxy/1.1"
        expected = {
            "ApiVersion": "2010-04-01",
            "MessageStatus": status,
            "SmsSid": message.sid,
            "SmsStatus": status,
            "To": TO,
            "From": FROM,
            "MessageSid": message.sid,
            "AccountSid": ACCOUNT_SID,
            "NumSegments": "1",
        }
        form = dict(callback.form)
        if status == "delivered":
            assert re.fullmatch(r"\d{10}", form.pop("RawDlrDoneDate"))  # YYMMDDhhmm
        assert form == expected
        assert_signed(callback, url)
    # Fired when each status begins (sending at 0.03 s, sent 0.06 s, delivered 0.12 s)...
    for callback, starts in zip(got, (0.03, 0.06, 0.12), strict=True):
        assert callback.at - began >= starts - 0.005
    # ...so a fetch after the last callback shows the same final status.
    assert sim.client().messages(message.sid).fetch().status == "delivered"
    stats = sim.stats()
    assert (stats["callbacks_sent"], stats["callbacks_failed"], stats["callbacks_retried"]) == (
        3,
        0,
        0,
    )


@pytest.mark.parametrize(
    ("shares", "expected"),
    [
        ({"undelivered_share": 1.0}, ["sending", "sent", "undelivered"]),
        ({"failed_share": 1.0}, ["sending", "failed"]),
        ({"stuck_share": 1.0}, ["sending", "sent"]),
    ],
)
def test_failures_carry_their_error_code(
    start_sim: Callable[..., Sim],
    receiver: Receiver,
    shares: dict[str, float],
    expected: list[str],
) -> None:
    sim = start_sim(fast(**shares))
    url = receiver.url()
    sid = sim.client().messages.create(to=TO, from_=FROM, body="Hi", status_callback=url).sid
    receiver.wait(len(expected))
    got = receiver.settle()
    assert statuses(got) == expected
    final = sim.client().messages(sid).fetch()
    for callback in got:
        assert_signed(callback, url)
        status = callback.form["MessageStatus"]
        if status in ("failed", "undelivered"):
            assert callback.form["ErrorCode"] == str(final.error_code)
            assert 30003 <= final.error_code <= 30008
        else:
            assert "ErrorCode" not in callback.form
        assert ("RawDlrDoneDate" in callback.form) == (status == "undelivered")


def test_messaging_service_reports_queued_after_accepted(
    start_sim: Callable[..., Sim], receiver: Receiver
) -> None:
    sim = start_sim(FAST)
    url = receiver.url()
    message = sim.client().messages.create(
        to=TO, messaging_service_sid=SERVICE_SID, body="Hi", status_callback=url
    )
    assert message.status == "accepted"
    receiver.wait(4)
    got = receiver.settle()
    assert statuses(got) == ["queued", *LIFECYCLE]
    for callback in got:
        assert callback.form["MessagingServiceSid"] == SERVICE_SID
        assert callback.form["From"] == FROM  # the sender the service assigned
        assert_signed(callback, url)


def test_message_without_status_callback_fires_nothing(
    start_sim: Callable[..., Sim], receiver: Receiver
) -> None:
    sim = start_sim(FAST)
    client = sim.client()
    silent = client.messages.create(to=TO, from_=FROM, body="no callback")
    loud = client.messages.create(
        to="+14155550101", from_=FROM, body="Hi", status_callback=(receiver.url())
    )
    receiver.wait(3)
    got = receiver.settle()
    assert {r.form["MessageSid"] for r in got} == {loud.sid}
    assert client.messages(silent.sid).fetch().status == "delivered"
    assert sim.stats()["callbacks_sent"] == 3


def test_disorder_delivers_every_callback_but_not_in_order(
    start_sim: Callable[..., Sim], receiver: Receiver
) -> None:
    sim = start_sim(fast(callback_disorder=True, seed=3))
    client = sim.client()
    url = receiver.url()
    sids = [
        client.messages.create(
            to=f"+1415555{i:04d}", from_=FROM, body="Hi", status_callback=url
        ).sid
        for i in range(12)
    ]
    receiver.wait(3 * len(sids))
    got = receiver.settle()
    assert len(got) == 3 * len(sids)
    orders = [statuses(got, sid) for sid in sids]
    assert all(sorted(order) == sorted(LIFECYCLE) for order in orders)
    assert any(order != LIFECYCLE for order in orders), orders
    for callback in got:
        assert_signed(callback, url)
    assert sim.stats()["callbacks_sent"] == 3 * len(sids)


def test_failed_callback_is_retried(
    start_sim: Callable[..., Sim], start_receiver: Callable[..., Receiver]
) -> None:
    receiver = start_receiver(answers=[500])
    sim = start_sim(fast(callback_retries=2))
    url = receiver.url()
    sim.client().messages.create(to=TO, from_=FROM, body="Hi", status_callback=url)
    receiver.wait(4)
    got = receiver.settle()
    # The first 'sending' was answered 500 and came again (after a short backoff, so maybe
    # after 'sent'), identical and still signed.
    assert sorted(statuses(got)) == sorted(["sending", *LIFECYCLE])
    first, again = (r for r in got if r.form["MessageStatus"] == "sending")
    assert again == dataclasses.replace(first, at=again.at)
    assert again.at > first.at
    for callback in got:
        assert_signed(callback, url)
    stats = sim.stats()
    assert (stats["callbacks_sent"], stats["callbacks_failed"], stats["callbacks_retried"]) == (
        3,
        0,
        1,
    )


def test_without_retries_a_failed_callback_is_given_up(
    start_sim: Callable[..., Sim], start_receiver: Callable[..., Receiver]
) -> None:
    receiver = start_receiver(answers=[503] * 3)
    sim = start_sim(FAST)
    sim.client().messages.create(to=TO, from_=FROM, body="Hi", status_callback=receiver.url())
    receiver.wait(3)
    assert statuses(receiver.settle()) == LIFECYCLE  # each tried once, none again
    stats = sim.stats()
    assert (stats["callbacks_sent"], stats["callbacks_failed"], stats["callbacks_retried"]) == (
        0,
        3,
        0,
    )


def test_unreachable_receiver_counts_as_failed_after_retries(
    start_sim: Callable[..., Sim],
) -> None:
    # A loopback port with nobody listening: bound, never listening, and held for the test,
    # so that no server of a test running beside this one (pytest -n) can take it meanwhile.
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        sim = start_sim(fast(callback_retries=1, stuck_share=1.0))
        url = f"http://127.0.0.1:{port}/status"
        sim.client().messages.create(to=TO, from_=FROM, body="Hi", status_callback=url)
        deadline = time.monotonic() + 5
        while sim.stats()["callbacks_failed"] < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        stats = sim.stats()
    assert (stats["callbacks_sent"], stats["callbacks_failed"], stats["callbacks_retried"]) == (
        0,
        2,
        2,
    )


def test_reset_drops_pending_callbacks(start_sim: Callable[..., Sim], receiver: Receiver) -> None:
    sim = start_sim(SimulatorConfig(queued_s=0.3, sending_s=0.1, sent_s=0.1))
    sim.send(TO, StatusCallback=receiver.url())
    assert sim.http("POST", "/_reset", auth=None)[0] == 200
    time.sleep(0.7)
    assert receiver.got == []


def test_queued_sender_reports_sending_when_its_turn_comes(
    start_sim: Callable[..., Sim], receiver: Receiver
) -> None:
    """With 5 MPS the second message leaves 'queued' 0.2 s after the first, and says so."""
    sim = start_sim(fast(sender_mps=5))
    client = sim.client()
    url = receiver.url()
    first, second = (
        client.messages.create(to=to, from_=FROM, body="Hi", status_callback=url).sid
        for to in (TO, "+14155550101")
    )
    receiver.wait(6)
    got = receiver.settle()
    sending = {r.form["MessageSid"]: r.at for r in got if r.form["MessageStatus"] == "sending"}
    assert sending[second] - sending[first] >= 0.2 - 0.02


def test_a_retry_count_in_the_url_fragment_overrides_the_default(
    start_sim: Callable[..., Sim], start_receiver: Callable[..., Receiver]
) -> None:
    """Twilio's connection override `#rc=N`: the URL asks for retries the account does not
    make by default; the fragment never reaches the receiver, and the signature is over the
    URL as given."""
    receiver = start_receiver(answers=[500, 500])
    sim = start_sim(FAST)  # callback_retries=0
    url = receiver.url("/twilio/status/sim#rc=5&rp=all")
    sim.client().messages.create(to=TO, from_=FROM, body="Hi", status_callback=url)
    receiver.wait(5)
    got = receiver.settle()
    # Two answered 500 and came again: five POSTs, every status delivered in the end.
    assert len(got) == 5 and set(statuses(got)) == set(LIFECYCLE)
    assert {r.path_qs for r in got} == {"/twilio/status/sim"}
    for callback in got:
        assert_signed(callback, url)
    assert sim.stats()["callbacks_retried"] == 2


def test_a_share_of_callbacks_can_be_dropped(
    start_sim: Callable[..., Sim], receiver: Receiver
) -> None:
    sim = start_sim(fast(callback_drop_share=0.5, seed=3))
    client = sim.client()
    for i in range(20):
        client.messages.create(
            to=f"+1415555{i:04d}", from_=FROM, body="Hi", status_callback=receiver.url()
        )
    time.sleep(0.5)
    got = receiver.settle()
    stats = sim.stats()
    assert stats["callbacks_dropped"] > 0 and stats["callbacks_sent"] == len(got)
    assert stats["callbacks_dropped"] + len(got) == 20 * len(LIFECYCLE)


def test_a_callback_keeps_its_idempotency_token_on_every_attempt(
    start_sim: Callable[..., Sim], start_receiver: Callable[..., Receiver]
) -> None:
    receiver = start_receiver(answers=[500])
    sim = start_sim(fast(callback_retries=1))
    sim.client().messages.create(to=TO, from_=FROM, body="Hi", status_callback=receiver.url())
    receiver.wait(4)
    tokens = [r.token for r in receiver.settle()]
    assert all(tokens) and len(set(tokens)) == len(LIFECYCLE)
