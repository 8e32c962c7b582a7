"""Deliveries and their events over real HTTP against the simulator: every delivery's
status changes in order with its final status exactly once (equal to the store's result),
the Server-Sent Events stream resumed after a disconnect without a gap or a repeat, the
records that never went out (bad phones) with their one event, and a delivery by id."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import pytest
import requests

from tests.web.site import Site
from tests.web.test_api_runs import post_audience, token, wait
from tests.web.test_runs import audience, configure, simulator_with, store_statuses

BAD = {0, 17, 33}  # records (from 0) whose phone does not validate
N = 50


def _every_event(site: Site, auth: dict[str, str], *, limit: int = 7) -> list[dict[str, Any]]:
    """Every event so far, read as JSON pages of `limit`."""
    found: list[dict[str, Any]] = []
    after = 0
    while True:
        page = requests.get(
            f"{site.url}/api/events",
            headers={**auth, "Accept": "application/json"},
            params={"after": after, "limit": limit},
            timeout=10,
        )
        assert page.status_code == 200, page.text
        body = page.json()
        if not body["events"]:
            assert body["last_event_id"] == after
            return found
        found += body["events"]
        after = body["last_event_id"]
        assert after == body["events"][-1]["event_id"]


def _stream(
    site: Site, auth: dict[str, str], *, until: int, last_event_id: int | None = None
) -> list[tuple[int, dict[str, Any]]]:
    """Read the SSE stream (resumed after `last_event_id`) until event `until` arrives (or
    `until` events when negative), then drop the connection."""
    headers = {**auth, "Accept": "text/event-stream"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    got: list[tuple[int, dict[str, Any]]] = []
    for _ in range(10):  # a stream ends after its lifetime: reconnect as EventSource does
        with requests.get(f"{site.url}/api/events", headers=headers, stream=True, timeout=30) as r:
            assert r.status_code == 200, r.text
            assert r.headers["content-type"].startswith("text/event-stream")
            event_id, name = None, ""
            for line in r.iter_lines(decode_unicode=True):
                if line.startswith("id: "):
                    event_id = int(line[4:])
                elif line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: "):
                    assert name == "delivery" and event_id is not None
                    got.append((event_id, json.loads(line[6:])))
                    headers["Last-Event-ID"] = str(event_id)
                    if (until < 0 and len(got) == -until) or event_id == until:
                        return got
    raise AssertionError(f"event {until} never came: {len(got)} events")


@pytest.fixture
def finished(site: Site) -> Any:
    """A run of N records (three with bad phones, a fifth of the rest undelivered) sent by
    the API, with SSE read during the run up to a disconnect; yields what the tests look at."""
    with simulator_with(undelivered_share=0.2) as simulator:
        configure(site, simulator)
        auth = token(site)
        started = post_audience(site, auth, audience(N, bad=lambda i: "x" if i in BAD else None))
        assert started.status_code == 201, started.text
        run_id = started.json()["id"]
        first = _stream(site, auth, until=-25)  # during the run, then the client goes away
        wait(site, auth, run_id, "completed")
        every = _every_event(site, auth)
        rest = _stream(site, auth, until=every[-1]["event_id"], last_event_id=first[-1][0])
    yield {"auth": auth, "run": run_id, "every": every, "streamed": first + rest}


def test_every_delivery_has_its_changes_in_order_and_one_final_event(
    site: Site, finished: dict[str, Any]
) -> None:
    run_id, every = finished["run"], finished["every"]
    ids = [e["event_id"] for e in every]
    assert ids == sorted(set(ids))
    by_delivery: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in every:
        assert (e["run"], e["touchpoint"]) == (run_id, "spring")
        by_delivery[e["delivery_id"]].append(e)
    results = store_statuses(site, run_id)
    assert set(by_delivery) == {f"{run_id}-{record}" for record in results}
    for record, result in results.items():
        history = by_delivery[f"{run_id}-{record}"]
        finals = [e for e in history if e["status"] is not None]
        assert len(finals) == 1 and history[-1] is finals[0], history
        assert finals[0]["status"] == result
        statuses = [e["twilio_status"] for e in history]
        assert len(statuses) == len(set(statuses))  # each event is a change
        if record - 1 in BAD:
            assert len(history) == 1 and result == "error"
            assert history[0]["errormessage"] and history[0]["message_sid"] is None
        else:
            assert history[-1]["twilio_status"] in ("delivered", "undelivered")
            assert all(e["message_sid"] for e in history) and history[0]["segments"] == 1
    assert {r for r in results.values()} >= {"delivered", "undelivered", "error"}


def test_a_stream_resumed_after_a_disconnect_has_every_event_once(
    finished: dict[str, Any],
) -> None:
    streamed, every = finished["streamed"], finished["every"]
    assert [event_id for event_id, _ in streamed] == [e["event_id"] for e in every]
    assert [data for _, data in streamed] == every


def test_a_delivery_by_id_and_the_filtered_list(site: Site, finished: dict[str, Any]) -> None:
    auth, run_id = finished["auth"], finished["run"]
    url = f"{site.url}/api/deliveries"

    good = requests.get(f"{url}/{run_id}-2", headers=auth, timeout=10)
    bad = requests.get(f"{url}/{run_id}-1", headers=auth, timeout=10)
    errors = requests.get(url, headers=auth, params={"status": "error"}, timeout=10)
    pages, after = [], ""
    while True:
        page = requests.get(
            url, headers=auth, params={"run": run_id, "limit": 20, "after": after}, timeout=10
        ).json()
        pages.append(page["deliveries"])
        if page["next_after"] is None:
            break
        after = page["next_after"]

    assert good.status_code == 200, good.text
    one = good.json()
    assert (one["id"], one["run"], one["record"], one["touchpoint"]) == (
        f"{run_id}-2",
        run_id,
        2,
        "spring",
    )
    assert one["to"] == "+12125550001" and one["message_sid"].startswith("SM")
    assert one["status"] in ("delivered", "undelivered") and one["stage"] == "done"
    assert one["events"] == [e for e in finished["every"] if e["delivery_id"] == one["id"]]
    assert one["events"][-1]["status"] == one["status"]
    assert bad.json()["status"] == "error" and len(bad.json()["events"]) == 1
    assert [d["record"] for d in errors.json()["deliveries"]] == [i + 1 for i in sorted(BAD)]
    listed = [d["record"] for page in pages for d in page]
    assert listed == list(range(1, N + 1)) and [len(p) for p in pages] == [20, 20, 10]


@pytest.mark.parametrize(
    "delivery_id",
    ["x", "1-0", "999-1", "1-999", "0-1", "01-1", "-1-1", "1-1-1", "1 -1", "1-",
     "99999999999999999999-1", "1-99999999999999999999", "2147483648-1", "1-2147483648"],
)  # fmt: skip
def test_a_malformed_or_unknown_delivery_id_is_not_found(site: Site, delivery_id: str) -> None:
    auth = token(site)
    answer = requests.get(f"{site.url}/api/deliveries/{delivery_id}", headers=auth, timeout=10)
    assert answer.status_code == 404, answer.text
    assert answer.json()["error"]["kind"] == "not_found"


def test_bad_filters_are_refused_in_the_one_error_shape(site: Site) -> None:
    auth = token(site)
    for params, field in (
        ({"status": "nope"}, "status"),
        ({"after": "x"}, "after"),
        ({"limit": 0}, "limit"),
    ):
        answer = requests.get(f"{site.url}/api/deliveries", headers=auth, params=params, timeout=10)
        assert answer.status_code == 422, answer.text
        assert [p["field"] for p in answer.json()["error"]["problems"]] == [field]
    answer = requests.get(
        f"{site.url}/api/events", headers={**auth, "Last-Event-ID": "soon"}, timeout=10
    )
    assert answer.status_code == 422 and answer.json()["error"]["kind"] == "invalid_input"
    empty = requests.get(f"{site.url}/api/events", headers=auth, params={"after": 5}, timeout=10)
    assert empty.json() == {"events": [], "last_event_id": 5}
    assert requests.get(f"{site.url}/api/events", timeout=10).status_code == 401
