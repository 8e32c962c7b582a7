"""Inbound STOP and START over real HTTP: the simulator, playing Twilio, POSTs a recipient's
reply to the service's `/twilio/inbound/<connection>` webhook, signed with the account's
auth token; the service records or removes the opt-out, and the next run skips the
recipient without a POST. Requests that cannot be shown to come from Twilio (no signature,
a forged one, another connection, a replay with another body) change nothing."""

from __future__ import annotations

import urllib.request
from typing import Any

import pytest
import requests

from smslink.app import Config, open_app
from smslink.domain.models import Connection
from tests.web.conftest import TOKEN
from tests.web.site import MARKETER, Site
from tests.web.test_runs import (
    SID,
    audience,
    configure,
    csv_rows,
    phone,
    start,
    stats,
    wait_for_state,
)

SENDER = "+15005550006"  # the From number of configure()'s connection `sim`
RECIPIENT = phone(0)


def deliver(site: Site, simulator: str, body: str, **extra: Any) -> dict[str, Any]:
    """The simulator delivers `body` from `extra["from"]` (else RECIPIENT) to the sender,
    as Twilio delivers an incoming message; what the webhook answered, and what was sent."""
    root = simulator.rsplit("/2010-04-01", 1)[0]
    asked: dict[str, Any] = {
        "url": f"{site.url}/twilio/inbound/sim",
        "from": RECIPIENT,
        "to": SENDER,
        "body": body,
        "account_sid": SID,
    }
    asked.update(extra)
    answer = requests.post(f"{root}/_inbound", json=asked, timeout=30)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def optouts(site: Site) -> list[dict[str, Any]]:
    s = site.signed_in(MARKETER)
    answer = s.get(f"{site.url}/api/optouts")
    assert answer.status_code == 200, answer.text
    return list(answer.json()["optouts"])


def removals(site: Site) -> list[dict[str, Any]]:
    s = site.signed_in(MARKETER)
    answer = s.get(f"{site.url}/api/optouts/removals")
    assert answer.status_code == 200, answer.text
    return list(answer.json())


def _config(site: Site) -> Config:
    return Config(database_url=f"sqlite:///{site.home / 'smslink.db'}")


def test_a_stop_is_recorded_at_once_and_the_next_run_skips_the_recipient_without_a_post(
    site: Site, simulator: str
) -> None:
    configure(site, simulator)

    answered = deliver(site, simulator, "STOP")

    assert answered["status"] == 200
    assert answered["content_type"] == "text/xml" and "<Response/>" in answered["response"]
    [optout] = optouts(site)
    assert (optout["phone"], optout["sender"]) == (RECIPIENT, SENDER)
    assert optout["source"] == "inbound STOP" and optout["run_id"] is None
    page = site.signed_in(MARKETER).get(site.url + "/optouts").text
    assert "The recipient replied STOP" in page

    s = site.signed_in(MARKETER)
    run_id = start(site, s, audience(3))
    wait_for_state(site, s, run_id, "completed")

    posts = stats(simulator)["posts_by_to"]
    assert RECIPIENT not in posts and sorted(posts.values()) == [1, 1]
    rows = csv_rows(s.get(f"{site.url}/runs/{run_id}/results.csv").text)
    [skipped] = [row for row in rows if row["phone"] == RECIPIENT]
    assert skipped["status"] == "error" and skipped["error_code"] == "21610"
    assert skipped["error_message"].startswith(f"not sent: {RECIPIENT} opted out of messages")


def test_start_removes_the_optout_and_the_removal_is_kept(site: Site, simulator: str) -> None:
    configure(site, simulator)
    deliver(site, simulator, "STOP")
    deliver(site, simulator, "stop")  # the same reply twice: one opt-out
    assert len(optouts(site)) == 1

    answered = deliver(site, simulator, "Start")

    assert answered["status"] == 200 and "<Response/>" in answered["response"]
    assert optouts(site) == []
    [removal] = removals(site)
    assert (removal["phone"], removal["sender"]) == (RECIPIENT, SENDER)
    assert removal["removed_by"] == "recipient (START)"
    assert removal["reason"].startswith(f"replied START to {SENDER} (message SM")

    again = deliver(site, simulator, "START")  # nothing left to remove: nothing happens
    assert again["status"] == 200 and len(removals(site)) == 1


def test_only_a_whole_keyword_counts_in_any_case_with_spaces_around_it(
    site: Site, simulator: str
) -> None:
    configure(site, simulator)
    replies = {
        "  stop  ": True,
        "Unsubscribe": True,
        "sToPaLl\n": True,
        "revoke": True,
        "OPTOUT": True,
        "quit": True,
        "STOP please": False,  # Twilio matches the whole body
        "please stop": False,
        "S T O P": False,
        "HELP": False,
        "info": False,
        "": False,
        "stop.": False,
    }
    for i, body in enumerate(replies):
        answered = deliver(site, simulator, body, **{"from": phone(100 + i)})
        assert answered["status"] == 200, (body, answered)

    recorded = {o["phone"]: o["source"] for o in optouts(site)}
    expected = {phone(100 + i) for i, (_, stops) in enumerate(replies.items()) if stops}
    assert set(recorded) == expected
    assert recorded[phone(100)] == "inbound STOP"
    assert recorded[phone(101)] == "inbound UNSUBSCRIBE"


def test_help_changes_nothing_even_for_someone_who_opted_out(site: Site, simulator: str) -> None:
    configure(site, simulator)
    deliver(site, simulator, "STOP")

    answered = deliver(site, simulator, "HELP")

    assert answered["status"] == 200 and "<Response/>" in answered["response"]
    assert len(optouts(site)) == 1 and removals(site) == []


def test_requests_that_twilio_did_not_sign_for_this_connection_change_nothing(
    site: Site, simulator: str
) -> None:
    configure(site, simulator)
    url = f"{site.url}/twilio/inbound/sim"
    deliver(site, simulator, "STOP", **{"from": phone(1)})  # one to START later
    before = optouts(site)

    forged = deliver(site, simulator, "STOP", auth_token="someone-elses-token")
    other_connection = deliver(site, simulator, "STOP", url=f"{site.url}/twilio/inbound/nosuch")
    help_ = deliver(site, simulator, "HELP")
    unsigned = requests.post(url, data=help_["params"] | {"Body": "STOP"}, timeout=10)
    altered = requests.post(
        url,
        data=help_["params"] | {"Body": "STOP"},
        headers={"X-Twilio-Signature": help_["signature"]},
        timeout=10,
    )
    start_ = deliver(site, simulator, "HELP", **{"from": phone(1)})
    altered_start = requests.post(
        url,
        data=start_["params"] | {"Body": "START"},
        headers={"X-Twilio-Signature": start_["signature"]},
        timeout=10,
    )
    elsewhere = requests.post(  # a genuine request, replayed to another path
        f"{site.url}/twilio/inbound/sim?x=1",
        data=help_["params"],
        headers={"X-Twilio-Signature": help_["signature"]},
        timeout=10,
    )

    assert forged["status"] == 403
    assert other_connection["status"] == 403
    assert unsigned.status_code == 403 and altered.status_code == 403
    assert altered_start.status_code == 403 and elsewhere.status_code == 403
    assert "Response" not in altered.text
    assert optouts(site) == before and removals(site) == []
    replayed = requests.post(  # the genuine request, replayed as it was: still harmless
        url,
        data=help_["params"],
        headers={"X-Twilio-Signature": help_["signature"]},
        timeout=10,
    )
    assert replayed.status_code == 200 and optouts(site) == before


def test_an_api_key_connection_refuses_since_smslink_cannot_check_the_signature(
    site: Site, simulator: str
) -> None:
    configure(site, simulator, api_key_sid="SK" + "0a" * 16)

    answered = deliver(site, simulator, "STOP")

    assert answered["status"] == 403 and optouts(site) == []


def test_behind_a_proxy_the_connections_public_url_is_the_one_checked(
    site: Site, simulator: str
) -> None:
    configure(site, simulator, callback_base_url="https://sms.example.com/smslink")
    public = "https://sms.example.com/smslink/twilio/inbound/sim"

    through_proxy = deliver(
        site, simulator, "STOP", url=public, deliver_to=f"{site.url}/twilio/inbound/sim"
    )
    signed_for_the_inside = deliver(site, simulator, "STOP", **{"from": phone(1)})

    assert through_proxy["status"] == 200
    assert signed_for_the_inside["status"] == 403
    assert [o["phone"] for o in optouts(site)] == [RECIPIENT]


def test_a_messaging_service_connection_records_the_optout_for_its_service(
    site: Site, simulator: str
) -> None:
    service = "MG" + "5e" * 16
    configure(site, simulator)
    with open_app(_config(site)) as app:
        app.connections.add(
            Connection(
                name="pool",
                account_sid=SID,
                auth_token=TOKEN,
                messaging_service_sid=service,
                base_url=simulator,
            )
        )

    deliver(
        site,
        simulator,
        "STOP",
        url=f"{site.url}/twilio/inbound/pool",
        to="+12125559999",  # one of the service's numbers
        messaging_service_sid=service,
    )

    [optout] = optouts(site)
    assert (optout["phone"], optout["sender"]) == (RECIPIENT, service)


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"\xff\xfe\x00garbage\x00" * 50, "application/x-www-form-urlencoded"),
        (b"Body=STOP&From=%2B12125550000&To=%2B15005550006", "application/x-www-form-urlencoded"),
        (b'{"Body": "STOP"}', "application/json"),
        (b"&".join(b"f%d=1" % i for i in range(5000)), "application/x-www-form-urlencoded"),
        (b"Body=" + b"x" * 200_000, "application/x-www-form-urlencoded"),
        (b"", "text/plain"),
    ],
)
def test_garbage_and_huge_bodies_are_refused_without_a_server_error(
    site: Site, simulator: str, content: bytes, content_type: str
) -> None:
    configure(site, simulator)

    answer = requests.post(
        f"{site.url}/twilio/inbound/sim",
        data=content,
        headers={"Content-Type": content_type, "X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"},
        timeout=10,
    )

    assert answer.status_code in (403, 413), answer.text
    assert optouts(site) == []


def test_a_long_signed_message_is_an_ordinary_message(site: Site, simulator: str) -> None:
    configure(site, simulator)

    answered = deliver(site, simulator, "STOP " + "\N{PILE OF POO}" * 1500)

    assert answered["status"] == 200 and optouts(site) == []


def test_the_webhook_is_not_in_the_api_document_and_takes_no_session(site: Site) -> None:
    with urllib.request.urlopen(f"{site.url}/openapi.json") as answer:
        document = answer.read().decode()

    assert "/twilio/inbound" not in document
    assert requests.get(f"{site.url}/twilio/inbound/sim", timeout=10).status_code == 405
