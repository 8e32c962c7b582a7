"""Incoming messages over real loopback HTTP: `POST /_inbound` makes the simulator POST a
recipient's reply to a webhook as Twilio does, form-encoded and signed with the account's
auth token; the SDK's RequestValidator (and smslink's own check) accept the signature."""

from __future__ import annotations

import re
import socket
from collections.abc import Callable
from typing import Any

import requests
from receiver import Receiver
from simkit import ACCOUNT_SID, FROM, SERVICE_SID, TOKEN, Sim
from twilio.request_validator import RequestValidator

from smslink.twilio import is_valid_signature

RECIPIENT = "+14155550100"


def inbound(sim: Sim, **asked: Any) -> tuple[int, dict[str, Any]]:
    answer = requests.post(f"{sim.origin}/_inbound", json=asked, timeout=30)
    return answer.status_code, answer.json()


def test_a_reply_is_posted_to_the_webhook_signed_like_twilios(
    sim: Sim, start_receiver: Callable[..., Receiver]
) -> None:
    receiver = start_receiver([200])
    url = receiver.url("/twilio/inbound/prod?x=1")

    status, answer = inbound(
        sim, url=url, to=FROM, body="STOP", account_sid=ACCOUNT_SID, **{"from": RECIPIENT}
    )

    assert status == 200 and answer["status"] == 200
    [got] = receiver.wait(1)
    assert got.path_qs == "/twilio/inbound/prod?x=1"
    assert got.content_type == "application/x-www-form-urlencoded"
    assert got.user_agent == "TwilioProxy/1.1"
    form = got.form
    assert (form["From"], form["To"], form["Body"]) == (RECIPIENT, FROM, "STOP")
    assert form["AccountSid"] == ACCOUNT_SID and form["ApiVersion"] == "2010-04-01"
    assert re.fullmatch(r"SM[0-9a-f]{32}", form["MessageSid"])
    assert form["SmsSid"] == form["SmsMessageSid"] == form["MessageSid"]
    assert (form["NumMedia"], form["NumSegments"], form["SmsStatus"]) == ("0", "1", "received")
    assert form["FromCity"] == "" and "MessagingServiceSid" not in form
    assert form == answer["params"] and got.signature == answer["signature"]
    assert got.signature is not None
    assert RequestValidator(TOKEN).validate(url, form, got.signature)
    assert is_valid_signature(TOKEN, url, form, got.signature)
    assert not RequestValidator("another-token").validate(url, form, got.signature)


def test_a_service_a_forger_and_a_proxy(sim: Sim, start_receiver: Callable[..., Receiver]) -> None:
    receiver = start_receiver()
    public = "https://sms.example.com/twilio/inbound/prod"

    inbound(
        sim,
        url=public,
        deliver_to=receiver.url("/inside"),
        to=FROM,
        body="start",
        messaging_service_sid=SERVICE_SID,
        auth_token="forger",
        **{"from": RECIPIENT},
    )

    [got] = receiver.wait(1)
    assert got.path_qs == "/inside" and got.form["MessagingServiceSid"] == SERVICE_SID
    assert got.signature is not None
    assert RequestValidator("forger").validate(public, got.form, got.signature)
    assert not RequestValidator(TOKEN).validate(public, got.form, got.signature)


def test_what_the_webhook_answers_and_a_webhook_that_is_not_there(
    sim: Sim, start_receiver: Callable[..., Receiver]
) -> None:
    receiver = start_receiver([403])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}/twilio/inbound/prod"

    _, refused = inbound(sim, url=receiver.url(), to=FROM, body="STOP", **{"from": RECIPIENT})
    _, unreachable = inbound(sim, url=closed, to=FROM, body="STOP", **{"from": RECIPIENT})

    assert refused["status"] == 403
    assert unreachable["status"] == 0 and unreachable["error"]
    assert sim.stats()["posts"] == 0  # a reply is not a message the account sent


def test_a_request_without_the_fields_is_refused(sim: Sim) -> None:
    assert inbound(sim, to=FROM, body="STOP")[0] == 400
    assert inbound(sim, url="http://x", to=FROM, body=7, **{"from": RECIPIENT})[0] == 400
    answer = requests.post(f"{sim.origin}/_inbound", data="not json", timeout=10)
    assert answer.status_code == 400
