"""A recipient's own reply through the front door: `OptOuts.inbound` records a STOP at once
and removes the opt-out on START (kept as a removal), and `OptOuts.receive` acts only on a
request Twilio signed with the connection's auth token."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from smslink.app import Smslink
from smslink.app.optouts import InboundAction, InboundRefused, inbound_url
from smslink.domain.models import OptOut
from smslink.twilio import compute_signature
from tests.app.conftest import ACCOUNT, TOKEN, connection

NOWHERE = "http://127.0.0.1:9/2010-04-01"  # never called: nothing here talks to Twilio
SENDER = "+15005550006"
PHONE = "+12125550101"
SERVICE = "MG" + "ab" * 16
URL = "https://sms.example.com/twilio/inbound/sim"


@pytest.fixture
def app(smslink: Smslink) -> Smslink:
    smslink.connections.add(connection(NOWHERE))
    return smslink


def test_stop_records_the_optout_once_with_its_keyword(app: Smslink) -> None:
    first = app.optouts.inbound("sim", PHONE, SENDER, "Stop")
    second = app.optouts.inbound("sim", PHONE, SENDER, " UNSUBSCRIBE ")

    assert (first.action, first.keyword, first.phone, first.sender) == (
        InboundAction.OPTED_OUT,
        "STOP",
        PHONE,
        SENDER,
    )
    assert second.action is InboundAction.ALREADY_OPTED_OUT
    [optout] = app.optouts.list()
    assert (optout.sender, optout.phone, optout.source, optout.run_id) == (
        SENDER,
        PHONE,
        "inbound STOP",  # the first sighting is the one kept
        None,
    )


def test_an_optout_learned_from_twilio_is_kept_as_it_was(app: Smslink) -> None:
    day = datetime(2026, 11, 20, tzinfo=UTC)
    app._store.catalogue.add_optout(OptOut(SENDER, PHONE, day, 3, message="Attempt to send"))

    outcome = app.optouts.inbound("sim", PHONE, SENDER, "STOP")

    assert outcome.action is InboundAction.ALREADY_OPTED_OUT
    [optout] = app.optouts.list()
    assert (optout.source, optout.run_id, optout.created_at) == ("twilio", 3, day)


def test_start_removes_it_through_the_removal_path_and_again_does_nothing(app: Smslink) -> None:
    app.optouts.inbound("sim", PHONE, SENDER, "STOP")
    app._store.catalogue.add_optout(OptOut("+12125550199", PHONE, datetime.now(UTC)))

    removed = app.optouts.inbound("sim", PHONE, SENDER, "yes", message_sid="SM" + "1" * 32)
    again = app.optouts.inbound("sim", PHONE, SENDER, "UNSTOP")

    assert removed.action is InboundAction.OPTED_IN and removed.keyword == "YES"
    assert again.action is InboundAction.NOT_OPTED_OUT
    assert [o.sender for o in app.optouts.list()] == ["+12125550199"]  # only this sender's
    [removal] = app.optouts.removals()
    assert (removal.phone, removal.sender, removal.removed_by) == (PHONE, SENDER, "recipient (YES)")
    assert removal.reason == f"replied YES to {SENDER} (message SM{'1' * 32})"


@pytest.mark.parametrize("body", ["HELP", "info", "STOP please", "", "hello"])
def test_help_and_ordinary_messages_change_nothing(app: Smslink, body: str) -> None:
    app.optouts.inbound("sim", "+12125550102", SENDER, "STOP")

    outcome = app.optouts.inbound("sim", "+12125550102", SENDER, body)
    other = app.optouts.inbound("sim", PHONE, SENDER, body)

    assert outcome.action is other.action is InboundAction.NOTHING
    assert [o.phone for o in app.optouts.list()] == ["+12125550102"]
    assert app.optouts.removals() == []


def test_phones_are_read_like_an_audiences_and_unusable_ones_change_nothing(
    app: Smslink,
) -> None:
    written = app.optouts.inbound("sim", "+1 (212) 555-0101", "+1 500 555 0006", "STOP")
    short_code = app.optouts.inbound("sim", "12345", SENDER, "STOP")
    not_a_phone = app.optouts.inbound("sim", "whatsapp:+12125550102", SENDER, "STOP")
    no_sender = app.optouts.inbound("sim", "+12125550103", "", "STOP")

    assert (written.phone, written.sender) == (PHONE, SENDER)
    assert short_code.action is not_a_phone.action is no_sender.action is InboundAction.NOTHING
    assert [o.phone for o in app.optouts.list()] == [PHONE]


def test_the_sender_is_the_service_the_message_came_through_or_the_number(
    app: Smslink,
) -> None:
    app.connections.add(
        connection(NOWHERE, "pool", from_number=None, messaging_service_sid=SERVICE)
    )
    via_service = app.optouts.inbound("pool", PHONE, "+12125559999", "STOP", SERVICE)
    to_the_number = app.optouts.inbound("pool", "+12125550102", "+12125559999", "STOP")
    # A From-number connection whose number is in some service: its own number.
    from_number = app.optouts.inbound("sim", "+12125550103", SENDER, "STOP", SERVICE)

    assert via_service.sender == SERVICE
    assert to_the_number.sender == "+12125559999"
    assert from_number.sender == SENDER


def _signed(url: str, params: dict[str, str], token: str = TOKEN) -> str:
    return compute_signature(token, url, params)


def _stop(body: str = "STOP", **extra: str) -> dict[str, str]:
    return {
        "MessageSid": "SM" + "2" * 32,
        "AccountSid": ACCOUNT,
        "From": PHONE,
        "To": SENDER,
        "Body": body,
        "NumMedia": "0",
        "ApiVersion": "2010-04-01",
        **extra,
    }


def _lists(params: dict[str, str]) -> dict[str, list[str]]:
    return {name: [value] for name, value in params.items()}


def test_receive_acts_on_a_request_twilio_signed(app: Smslink) -> None:
    params = _stop()

    outcome = app.optouts.receive("sim", URL, _lists(params), _signed(URL, params))

    assert outcome.action is InboundAction.OPTED_OUT and outcome.connection == "sim"


@pytest.mark.parametrize(
    ("name", "url", "signature"),
    [
        ("sim", URL, None),  # no signature
        ("sim", URL, ""),
        ("sim", URL, _signed(URL, _stop(), "another-token")),  # forged
        ("sim", URL, _signed(URL, _stop("HELP"))),  # signed for another body
        ("sim", URL + "?x=1", _signed(URL, _stop())),  # signed for another URL
        ("nosuch", URL, _signed(URL, _stop())),  # no such connection
    ],
)
def test_receive_refuses_anything_else_and_records_nothing(
    app: Smslink, name: str, url: str, signature: str | None
) -> None:
    with pytest.raises(InboundRefused):
        app.optouts.receive(name, url, _lists(_stop()), signature)

    assert app.optouts.list() == []


def test_receive_refuses_an_api_key_connection_whose_auth_token_it_does_not_hold(
    app: Smslink,
) -> None:
    app.connections.add(connection(NOWHERE, "keyed", api_key_sid="SK" + "0a" * 16))
    url = URL.replace("/sim", "/keyed")
    params = _stop()

    with pytest.raises(InboundRefused, match="API key"):
        app.optouts.receive("keyed", url, _lists(params), _signed(url, params))

    assert app.optouts.list() == []


def test_a_message_for_another_account_changes_nothing(app: Smslink) -> None:
    params = _stop(AccountSid="AC" + "f" * 32)

    outcome = app.optouts.receive("sim", URL, _lists(params), _signed(URL, params))

    assert outcome.action is InboundAction.NOTHING and app.optouts.list() == []


def test_with_a_callback_base_url_the_public_url_is_the_one_checked(app: Smslink) -> None:
    base = "https://sms.example.com/prefix/"
    app.connections.add(connection(NOWHERE, "proxied", callback_base_url=base))
    public = inbound_url(base, "proxied")
    inside = "http://127.0.0.1:8000/twilio/inbound/proxied"
    params = _stop()

    assert public == "https://sms.example.com/prefix/twilio/inbound/proxied"
    with pytest.raises(InboundRefused):
        app.optouts.receive("proxied", inside, _lists(params), _signed(inside, params))
    outcome = app.optouts.receive("proxied", inside, _lists(params), _signed(public, params))
    assert outcome.action is InboundAction.OPTED_OUT
