"""Send, fetch and errors, with the official twilio SDK as the referee."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import UTC, datetime

import pytest
from simkit import (
    ACCOUNT_SID,
    API_KEY_SID,
    FROM,
    OTHER_ACCOUNT_SID,
    SERVICE_SID,
    TOKEN,
    Sim,
)
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient

from smslink.simulator import SimulatorConfig

MESSAGE_FIELDS = {
    "account_sid", "api_version", "body", "date_created", "date_sent", "date_updated",
    "direction", "error_code", "error_message", "from", "messaging_service_sid", "num_media",
    "num_segments", "price", "price_unit", "sid", "status", "subresource_uris", "to", "uri",
}  # fmt: skip
RFC2822 = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d [A-Z][a-z]{2} \d{4} [\d:]{8} \+0000$")
CREATE = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"


def test_create_answers_201_with_the_twenty_fields_typed_as_twilio_does(sim: Sim) -> None:
    status, msg = sim.http("POST", CREATE, {"To": "+14155550100", "From": FROM, "Body": "Hi"})
    assert status == 201
    assert set(msg) == MESSAGE_FIELDS
    assert re.fullmatch(r"SM[0-9a-f]{32}", msg["sid"])
    assert msg["account_sid"] == ACCOUNT_SID
    assert (msg["to"], msg["from"], msg["body"]) == ("+14155550100", FROM, "Hi")
    assert (msg["status"], msg["direction"], msg["api_version"]) == (
        "queued",
        "outbound-api",
        "2010-04-01",
    )
    assert (msg["num_segments"], msg["num_media"]) == ("1", "0")
    assert msg["price"] is msg["price_unit"] is msg["date_sent"] is None
    assert msg["error_code"] is msg["error_message"] is msg["messaging_service_sid"] is None
    assert RFC2822.match(msg["date_created"]) and RFC2822.match(msg["date_updated"])
    assert msg["uri"] == f"{CREATE.removesuffix('.json')}/{msg['sid']}.json"
    assert msg["subresource_uris"] == {"media": msg["uri"].removesuffix(".json") + "/Media.json"}


def test_sdk_parses_a_created_message(sim: Sim) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    msg = sim.client().messages.create(to="+14155550100", from_=FROM, body="Hello! 👍")
    assert msg.status == "queued" and msg.num_segments == "1"
    assert msg.error_code is None and msg.date_sent is None
    assert before <= msg.date_created <= datetime.now(UTC)


def test_segments_are_counted_by_encoding(sim: Sim) -> None:
    assert sim.send("+14155550100", "a" * 161)["num_segments"] == "2"
    assert sim.send("+14155550100", "€" * 80)["num_segments"] == "1"
    assert sim.send("+14155550100", "ж" * 71)["num_segments"] == "2"


def test_messaging_service_starts_accepted_then_picks_a_sender(fast_sim: Sim) -> None:
    client = fast_sim.client()
    msg = client.messages.create(to="+14155550100", messaging_service_sid=SERVICE_SID, body="x")
    assert (msg.status, msg.from_, msg.num_segments) == ("accepted", None, "0")
    assert msg.messaging_service_sid == SERVICE_SID
    time.sleep(0.2)
    later = client.messages(msg.sid).fetch()
    assert (later.status, later.from_, later.num_segments) == ("delivered", FROM, "1")


def test_media_url_makes_an_mms_even_without_body(sim: Sim) -> None:
    msg = sim.client().messages.create(
        to="+14155550100", from_=FROM, media_url=["https://example.com/a.png"]
    )
    assert msg.sid.startswith("MM") and msg.num_media == "1" and msg.body == ""


def test_fetch_returns_the_message_and_404_for_unknown(sim: Sim) -> None:
    client = sim.client()
    sent = client.messages.create(to="+14155550100", from_=FROM, body="Hi")
    assert client.messages(sent.sid).fetch().body == "Hi"
    with pytest.raises(TwilioRestException) as caught:
        client.messages("SM" + "0" * 32).fetch()
    assert (caught.value.code, caught.value.status) == (20404, 404)


def test_message_of_another_account_is_not_found(sim: Sim) -> None:
    sent = sim.send("+14155550100")
    other = sim.client(OTHER_ACCOUNT_SID)
    with pytest.raises(TwilioRestException) as caught:
        other.messages(sent["sid"]).fetch()
    assert caught.value.code == 20404


@pytest.mark.parametrize(
    ("to", "from_", "code"),
    [
        ("+15005550001", FROM, 21211),
        ("+15005550002", FROM, 21612),
        ("+15005550003", FROM, 21408),
        ("+15005550004", FROM, 21610),
        ("+15005550009", FROM, 21614),
        ("+14155550100", "+15005550001", 21212),
        ("+14155550100", "+15005550007", 21606),
        ("+14155550100", "+15005550008", 21611),
        ("+14155550100", "+14155559999", 21606),
        ("+14155550100", "Apple", 21212),
        ("11234", FROM, 21211),
        ("+1415", FROM, 21211),
    ],
)
def test_magic_numbers_and_bad_numbers_raise_twilio_errors(
    sim: Sim, to: str, from_: str, code: int
) -> None:
    with pytest.raises(TwilioRestException) as caught:
        sim.client().messages.create(to=to, from_=from_, body="Hi")
    assert (caught.value.code, caught.value.status) == (code, 400)


def test_owned_numbers_may_send(start_sim) -> None:
    sim = start_sim(SimulatorConfig(owned_numbers=frozenset({"+14155559999", "Acme"})))
    client = sim.client()
    assert client.messages.create(to="+14155550100", from_="+14155559999", body="x").sid
    assert client.messages.create(to="+14155550100", from_="Acme", body="x").sid
    assert client.messages.create(to="+14155550100", from_=FROM, body="x").sid


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"From": FROM, "Body": "x"}, 21604),
        ({"To": "+14155550100", "Body": "x"}, 21603),
        ({"To": "+14155550100", "From": FROM}, 21602),
        ({"To": "+14155550100", "From": FROM, "Body": "x" * 1601}, 21617),
        ({"To": "+14155550100", "MessagingServiceSid": "MG123", "Body": "x"}, 21701),
    ],
)
def test_missing_or_bad_fields_are_rejected(sim: Sim, form: dict[str, str], code: int) -> None:
    status, body = sim.http("POST", CREATE, form)
    assert status == 400
    assert body == {
        "code": code,
        "message": body["message"],
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": 400,
    }


def test_error_messages_use_twilios_wording(sim: Sim) -> None:
    _, body = sim.http("POST", CREATE, {"To": "11234", "From": FROM, "Body": "x"})
    assert body["message"] == "The 'To' number 11234 is not a valid phone number."
    _, body = sim.http("POST", CREATE, {"To": "+14155550100", "From": FROM})
    assert body["message"] == "Message body is required."


def test_body_of_exactly_1600_characters_is_accepted(sim: Sim) -> None:
    assert sim.send("+14155550100", "x" * 1600)["num_segments"] == "11"


def test_bad_credentials_are_20003(sim: Sim) -> None:
    with pytest.raises(TwilioRestException) as caught:
        sim.client(secret="wrong").messages.create(to="+14155550100", from_=FROM, body="x")
    assert (caught.value.code, caught.value.status) == (20003, 401)
    status, body = sim.http("GET", CREATE, auth=None)
    assert (status, body["code"], body["message"]) == (401, 20003, "Authenticate")


def test_account_in_path_must_be_the_authenticated_one(sim: Sim) -> None:
    path = f"/2010-04-01/Accounts/{OTHER_ACCOUNT_SID}/Messages.json"
    assert sim.http("GET", path)[0] == 401
    status, body = sim.http("GET", "/2010-04-01/Accounts/ACnope/Messages.json")
    assert (status, body["code"]) == (404, 20404)


def test_api_key_authenticates_for_any_account(sim: Sim) -> None:
    client = sim.client(API_KEY_SID, TOKEN, account_sid=ACCOUNT_SID)
    msg = client.messages.create(to="+14155550100", from_=FROM, body="x")
    assert msg.account_sid == ACCOUNT_SID


def test_unknown_twilio_path_is_20404(sim: Sim) -> None:
    status, body = sim.http("GET", f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json")
    assert (status, body["code"]) == (404, 20404)


def test_account_fetch_for_connection_tests_never_shows_the_token(sim: Sim) -> None:
    account = sim.client().api.accounts(ACCOUNT_SID).fetch()
    assert (account.sid, account.status, account.type) == (ACCOUNT_SID, "active", "Full")
    status, body = sim.http("GET", f"/2010-04-01/Accounts/{ACCOUNT_SID}.json")
    assert status == 200 and "auth_token" not in body and TOKEN not in str(body)
    assert body["owner_account_sid"] == ACCOUNT_SID
    assert body["subresource_uris"]["messages"] == CREATE


def test_latency_is_added_before_each_response(start_sim) -> None:
    sim = start_sim(SimulatorConfig(latency_ms=120))
    started = time.perf_counter()
    sim.send("+14155550100")
    assert time.perf_counter() - started >= 0.12


# twilio 9.13 still uses aiohttp.BasicAuth, which aiohttp 3.14 deprecates.
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_async_sdk_client_works_too(sim: Sim) -> None:
    """The SDK's async client is the benchmark baseline, so it must run against us as well."""

    async def scenario() -> list[str]:
        http = AsyncTwilioHttpClient()
        try:
            client = sim.client(http_client=http)
            sent = await asyncio.gather(
                *(
                    client.messages.create_async(to=f"+1415555{i:04d}", from_=FROM, body="x")
                    for i in range(5)
                )
            )
            assert {m.status for m in sent} == {"queued"}
            return [m.sid for m in await client.messages.list_async(page_size=2)]
        finally:
            await http.close()

    assert len(asyncio.run(scenario())) == 5
