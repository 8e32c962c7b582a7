"""The Messages list: paging the SDK can follow, filters, and Twilio's page object."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from simkit import ACCOUNT_SID, FROM, Sim

from smslink.simulator import SimulatorConfig

LIST = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
PAGE_KEYS = {
    "messages", "page", "page_size", "start", "end", "uri",
    "first_page_uri", "next_page_uri", "previous_page_uri",
}  # fmt: skip


def _send_many(sim: Sim, count: int, to: str | None = None) -> list[str]:
    """Sids of `count` new messages, oldest first."""
    return [sim.send(to or f"+1415555{i:04d}", f"m{i}")["sid"] for i in range(count)]


def test_sdk_lists_every_message_newest_first_across_pages(sim: Sim) -> None:
    sids = _send_many(sim, 23)
    listed = sim.client().messages.list(page_size=5)
    assert [m.sid for m in listed] == sids[::-1]
    assert sim.stats()["lists"] == 5  # 5+5+5+5+3: no request for an empty extra page


def test_sdk_limit_stops_early(sim: Sim) -> None:
    sids = _send_many(sim, 12)
    listed = sim.client().messages.list(limit=7, page_size=3)
    assert [m.sid for m in listed] == sids[::-1][:7]
    assert sim.stats()["lists"] == 3


def test_page_object_has_exactly_twilios_keys(sim: Sim) -> None:
    sids = _send_many(sim, 3)
    status, page = sim.http("GET", f"{LIST}?PageSize=2")
    assert status == 200 and set(page) == PAGE_KEYS
    assert [m["sid"] for m in page["messages"]] == [sids[2], sids[1]]
    assert (page["page"], page["page_size"], page["start"], page["end"]) == (0, 2, 0, 1)
    assert page["previous_page_uri"] is None
    assert page["first_page_uri"] == f"{LIST}?PageSize=2&Page=0"
    assert page["next_page_uri"] == f"{LIST}?PageSize=2&Page=1&PageToken=PA{sids[1]}"

    _, last = sim.http("GET", page["next_page_uri"])
    assert [m["sid"] for m in last["messages"]] == [sids[0]]
    assert (last["page"], last["start"], last["end"], last["next_page_uri"]) == (1, 2, 2, None)
    assert last["previous_page_uri"] == f"{LIST}?PageSize=2&Page=0&PageToken=PB{sids[0]}"

    _, back = sim.http("GET", last["previous_page_uri"])
    assert [m["sid"] for m in back["messages"]] == [sids[2], sids[1]]


def test_empty_list_is_a_valid_last_page(sim: Sim) -> None:
    status, page = sim.http("GET", LIST)
    assert status == 200
    assert (page["messages"], page["next_page_uri"], page["start"], page["end"]) == ([], None, 0, 0)
    assert page["page_size"] == 50


def test_paging_is_stable_while_new_messages_arrive(sim: Sim) -> None:
    sids = _send_many(sim, 6)
    _, first = sim.http("GET", f"{LIST}?PageSize=3")
    _send_many(sim, 4)  # newer ones must not shift the next page
    _, second = sim.http("GET", first["next_page_uri"])
    assert [m["sid"] for m in second["messages"]] == sids[2::-1]


def test_page_number_without_token_skips_pages(sim: Sim) -> None:
    sids = _send_many(sim, 5)
    _, page = sim.http("GET", f"{LIST}?PageSize=2&Page=1")
    assert [m["sid"] for m in page["messages"]] == [sids[2], sids[1]]


@pytest.mark.parametrize(
    ("query", "code"),
    [("PageSize=1001", 20007), ("PageSize=0", 20001), ("PageSize=x", 20001)],
)
def test_bad_page_size_is_rejected(sim: Sim, query: str, code: int) -> None:
    status, body = sim.http("GET", f"{LIST}?{query}")
    assert (status, body["code"]) == (400, code)


def test_page_size_1000_is_allowed(sim: Sim) -> None:
    assert sim.http("GET", f"{LIST}?PageSize=1000")[0] == 200


def test_unknown_page_token_is_rejected(sim: Sim) -> None:
    status, body = sim.http("GET", f"{LIST}?PageToken=PASM{'0' * 32}")
    assert (status, body["code"]) == (400, 20001)


def test_filters_by_to_and_from(start_sim) -> None:
    sim = start_sim(SimulatorConfig(owned_numbers=frozenset({"+14155559999"})))
    client = sim.client()
    mine = [
        client.messages.create(to="+14155550001", from_=FROM, body=str(i)).sid for i in range(3)
    ]
    client.messages.create(to="+14155550002", from_=FROM, body="other")
    other_from = client.messages.create(to="+14155550001", from_="+14155559999", body="x").sid
    assert [m.sid for m in client.messages.list(to="+14155550001", from_=FROM)] == mine[::-1]
    assert [m.sid for m in client.messages.list(from_="+14155559999")] == [other_from]
    listed = client.messages.list(to="+14155550001", page_size=2)
    assert [m.sid for m in listed] == [other_from, *mine[::-1]]
    _, page = sim.http("GET", f"{LIST}?To=%2B14155550001&PageSize=2")
    assert page["next_page_uri"].startswith(f"{LIST}?To=%2B14155550001&PageSize=2&Page=1&")


def test_date_sent_filters_as_the_sdk_encodes_them(fast_sim: Sim) -> None:
    client = fast_sim.client()
    sid = client.messages.create(to="+14155550100", from_=FROM, body="x").sid
    assert client.messages.list(date_sent_after=datetime.now(UTC) - timedelta(days=1)) == []
    time.sleep(0.1)  # now it is sent: date_sent is set
    today = datetime.now(UTC)
    yesterday, tomorrow = today - timedelta(days=1), today + timedelta(days=1)
    assert [m.sid for m in client.messages.list(date_sent=today)] == [sid]
    assert [m.sid for m in client.messages.list(date_sent_after=yesterday)] == [sid]
    assert [m.sid for m in client.messages.list(date_sent_before=tomorrow)] == [sid]
    assert client.messages.list(date_sent_after=tomorrow) == []
    assert client.messages.list(date_sent_before=yesterday) == []


def test_date_sent_filters_in_url_form_include_the_whole_day(fast_sim: Sim) -> None:
    sid = fast_sim.send("+14155550100")["sid"]
    time.sleep(0.1)
    day = datetime.now(UTC).date().isoformat()
    for query in (f"DateSent%3E={day}", f"DateSent%3C={day}", f"DateSent={day}"):
        _, page = fast_sim.http("GET", f"{LIST}?{query}")
        assert [m["sid"] for m in page["messages"]] == [sid], query
    _, page = fast_sim.http("GET", f"{LIST}?DateSent%3E={day}&PageSize=1")
    assert parse_qs(urlsplit(page["first_page_uri"]).query)["DateSent>"] == [day]
    status, body = fast_sim.http("GET", f"{LIST}?DateSent=yesterday")
    assert (status, body["code"]) == (400, 20001)
