"""The journey API over real HTTP against the simulator: records in one at a time or in
batches, answered only once stored; a repeated request (the same Idempotency-Key, or the
same identity) sends nothing twice; bad records get their problem while the good ones go
out; every stored record ends with exactly one final event carrying its identity."""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from smslink.app import open_app
from smslink.app.touchpoints import TouchpointChanges
from smslink.domain.models import Touchpoint
from tests.web.site import Site
from tests.web.test_api_events import _every_event
from tests.web.test_api_runs import post_audience, token, wait
from tests.web.test_runs import (
    MESSAGE,
    _config,
    _messages,
    audience,
    configure,
    phone,
    simulator_with,
)

URL = "/api/touchpoints/spring/messages"


def record(i: int, **fields: object) -> dict[str, Any]:
    """Customer `i` with a valid phone and a name (the touchpoint's placeholder)."""
    values: dict[str, object] = {"phone": phone(i), "name": f"Customer {i}"}
    values.update(fields)
    return {"identity": {"CustomerID": f"C-{i}"}, "fields": values}


def post(site: Site, auth: dict[str, str], body: object, **headers: str) -> requests.Response:
    return requests.post(site.url + URL, headers={**auth, **headers}, json=body, timeout=30)


def messages_to(simulator: str) -> dict[str, int]:
    """How many messages the simulator holds per recipient."""
    counts: dict[str, int] = defaultdict(int)
    for message in _messages(simulator):
        counts[message["to"]] += 1
    return dict(counts)


def final_events(
    site: Site, auth: dict[str, str], expected: int, timeout_s: float = 30
) -> dict[str, list[dict[str, Any]]]:
    """Every delivery's events once `expected` deliveries have their final event."""
    deadline = time.monotonic() + timeout_s
    while True:
        by_delivery: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for event in _every_event(site, auth, limit=500):
            by_delivery[event["delivery_id"]].append(event)
        finals = [d for d, history in by_delivery.items() if history[-1]["status"]]
        if len(finals) >= expected:
            return dict(by_delivery)
        assert time.monotonic() < deadline, f"{len(finals)} of {expected} final"
        time.sleep(0.1)


def test_one_record_is_answered_once_stored_and_its_events_carry_its_identity(
    site: Site,
) -> None:
    with simulator_with() as simulator:
        configure(site, simulator)
        auth = token(site)
        answer = post(site, auth, record(1))
        assert answer.status_code == 202, answer.text
        body = answer.json()
        [only] = body["records"]
        assert only["status"] == "queued" and only["id"] == f"{body['run']}-1"
        assert not only["repeated"] and not body["replayed"]
        history = final_events(site, auth, 1)[only["id"]]
        assert all(e["identity"] == {"CustomerID": "C-1"} for e in history)
        assert [e["status"] for e in history][-1] == "delivered"
        assert sum(1 for e in history if e["status"]) == 1
        delivery = requests.get(f"{site.url}/api/deliveries/{only['id']}", headers=auth).json()
        assert delivery["identity"] == {"CustomerID": "C-1"} and delivery["status"] == "delivered"
        assert messages_to(simulator) == {phone(1): 1}


def test_a_request_repeated_with_its_idempotency_key_sends_one_sms(site: Site) -> None:
    with simulator_with() as simulator:
        configure(site, simulator)
        auth = token(site)
        key = str(uuid.uuid4())
        batch = {"records": [record(1), record(2)]}
        answers = [post(site, auth, batch, **{"Idempotency-Key": key}) for _ in range(3)]
        assert [a.status_code for a in answers] == [202, 202, 202]
        first = answers[0].json()
        assert all(a.json()["records"] == first["records"] for a in answers)
        assert [a.json()["replayed"] for a in answers] == [False, True, True]
        assert answers[1].headers["Idempotent-Replayed"] == "true"
        other = post(site, auth, {"records": [record(3)]}, **{"Idempotency-Key": key})
        assert other.status_code == 422, other.text
        assert other.json()["error"]["problems"][0]["field"] == "Idempotency-Key"
        # A new key is a new request: the same customers are sent to again, on purpose.
        again = post(site, auth, batch, **{"Idempotency-Key": str(uuid.uuid4())})
        assert [r["status"] for r in again.json()["records"]] == ["queued", "queued"]
        final_events(site, auth, 4)
        assert messages_to(simulator) == {phone(1): 2, phone(2): 2}


def test_the_same_identity_sent_again_or_at_once_is_sent_one_sms(site: Site) -> None:
    with simulator_with() as simulator:
        configure(site, simulator)
        auth = token(site)
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: post(site, auth, record(7)), range(8)))
        assert {a.status_code for a in answers} == {202}
        ids = {a.json()["records"][0]["id"] for a in answers}
        assert len(ids) == 1
        assert sorted(a.json()["records"][0]["repeated"] for a in answers) == [False] + [True] * 7
        # The identity is the key whatever order its fields come in.
        twin = {"identity": {"Region": "EU", "CustomerID": "C-9"}, "fields": record(9)["fields"]}
        post(site, auth, twin)
        swapped = {"identity": {"CustomerID": "C-9", "Region": "EU"}, "fields": twin["fields"]}
        assert post(site, auth, swapped).json()["records"][0]["repeated"] is True
        final_events(site, auth, 2)
        assert messages_to(simulator) == {phone(7): 1, phone(9): 1}


def test_a_batch_with_bad_records_sends_the_good_ones_and_names_each_problem(
    site: Site,
) -> None:
    with simulator_with() as simulator:
        configure(site, simulator)
        auth = token(site)
        with open_app(_config(site)) as app:
            app.optouts.inbound("sim", from_=phone(4), to="+15005550006", body="STOP")
        batch = {
            "records": [
                record(1),
                record(2, phone="555"),  # not a phone number
                record(3, name=""),  # the placeholder would be empty
                record(4),  # replied STOP earlier
                {"fields": {"phone": phone(5)}},  # no identity
                {"identity": {"CustomerID": "C-6"}, "fields": {"phone": [1, 2]}},
                record(7, name=42),  # numbers are text too
            ]
        }
        answer = post(site, auth, batch)
        assert answer.status_code == 202, answer.text
        run = answer.json()["run"]
        got = answer.json()["records"]
        assert [r["status"] for r in got] == [
            "queued", "error", "error", "error", "rejected", "rejected", "queued",
        ]  # fmt: skip
        assert [r["id"] for r in got] == [
            f"{run}-1", f"{run}-2", f"{run}-3", f"{run}-4", None, None, f"{run}-5",
        ]  # fmt: skip
        assert "phone" in got[1]["errormessage"]
        assert "'name' is empty" in got[2]["errormessage"]
        assert got[3]["error_code"] == 21610 and "opted out" in got[3]["errormessage"]
        assert got[4]["field"] == "records[4].identity"
        assert got[5]["field"] == "records[5].fields.phone"
        events = final_events(site, auth, 5)
        assert set(events) == {f"{run}-{n}" for n in range(1, 6)}
        for history in events.values():
            assert sum(1 for e in history if e["status"]) == 1, history
        assert events[f"{run}-2"][0]["identity"] == {"CustomerID": "C-2"}
        assert events[f"{run}-5"][-1]["status"] == "delivered"
        assert messages_to(simulator) == {phone(1): 1, phone(7): 1}


def test_requests_that_cannot_be_read_are_refused_whole(site: Site) -> None:
    with simulator_with() as simulator:
        configure(site, simulator)
        auth = token(site)
        too_many = post(site, auth, {"records": [record(i) for i in range(501)]})
        assert too_many.status_code == 422
        assert too_many.json()["error"]["problems"][0]["field"] == "records"
        for body in ([], "text", {"records": []}, {"records": {}}):
            assert post(site, auth, body).status_code == 422, body
        not_json = requests.post(site.url + URL, headers=auth, data=b"{", timeout=10)
        assert not_json.status_code == 422
        unknown = requests.post(
            site.url + "/api/touchpoints/nope/messages", headers=auth, json=record(1)
        )
        assert unknown.status_code == 404
        assert requests.post(site.url + URL, json=record(1), timeout=10).status_code == 401
        long_key = post(site, auth, record(1), **{"Idempotency-Key": "k" * 256})
        assert long_key.status_code == 422
        assert messages_to(simulator) == {}


def test_editing_the_touchpoint_seals_its_run_and_the_next_records_open_another(
    site: Site,
) -> None:
    with simulator_with() as simulator:
        configure(site, simulator)
        auth = token(site)
        first = post(site, auth, record(1)).json()
        with open_app(_config(site)) as app:
            app.touchpoints.update("spring", TouchpointChanges(message="Bye <Name>"))
        second = post(site, auth, record(2)).json()
        assert second["run"] != first["run"]
        final_events(site, auth, 2)
        old = requests.get(f"{site.url}/api/runs/{first['run']}", headers=auth, timeout=10)
        deadline = time.monotonic() + 30
        while old.json()["state"] != "completed":
            assert time.monotonic() < deadline, old.json()
            time.sleep(0.1)
            old = requests.get(f"{site.url}/api/runs/{first['run']}", headers=auth, timeout=10)
        assert messages_to(simulator) == {phone(1): 1, phone(2): 1}


def test_a_journey_and_two_campaigns_on_one_connection_share_its_pace_and_all_progress(
    site: Site,
) -> None:
    """The sender's segment cap holds for all three together (each run alone would send at
    the cap), and the journey's records go out while the campaigns are still sending."""
    cap = 25
    with simulator_with() as simulator:
        configure(site, simulator, max_segments_per_second=cap)
        with open_app(_config(site)) as app:
            app.touchpoints.add(Touchpoint("autumn", "sim", MESSAGE, "phone", {"Name": "name"}))
        auth = token(site)
        runs = []
        for touchpoint, offset in (("spring", 0), ("autumn", 1000)):
            content = audience(100, bad=lambda i, o=offset: phone(i + o))
            started = post_audience(site, auth, content, touchpoint=touchpoint)
            assert started.status_code == 201, started.text
            runs.append(started.json()["id"])
        samples: list[tuple[float, int]] = []

        def sample() -> None:
            samples.append((time.monotonic(), len(_messages(simulator))))

        sample()
        while samples[-1][1] < 10:
            time.sleep(0.05)
            sample()
        journey = [post(site, auth, record(5000 + i)).json() for i in range(5)]
        ids = {a["records"][0]["id"] for a in journey}
        deadline = time.monotonic() + 30
        while not ids <= {d for d, h in final_events(site, auth, 0).items() if h[-1]["status"]}:
            assert time.monotonic() < deadline
            time.sleep(0.1)
            sample()
        states = [requests.get(f"{site.url}/api/runs/{r}", headers=auth).json() for r in runs]
        assert all(s["state"] == "sending" for s in states), states  # not starved
        while samples[-1][1] < 150:
            time.sleep(0.1)
            sample()
        (t0, n0), (t1, n1) = next(s for s in samples if s[1] >= 10), samples[-1]
        rate = (n1 - n0) / (t1 - t0)
        assert rate <= cap * 1.2, f"{rate:.1f} segments a second with a cap of {cap}"
        for run in runs:
            wait(site, auth, run, "completed")
        assert len(_messages(simulator)) == 205
