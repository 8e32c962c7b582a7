"""Webhook subscriptions over real HTTP: a local subscriber (an http.server in a thread)
verifies every delivery's Standard Webhooks signature with the secret the API answered
once. A run against the simulator reaches it exactly once per event, each delivery's events
in order (different deliveries' are posted side by side); one that refuses its first
requests gets everything afterwards, in order per delivery; one that keeps failing is
disabled with its reason; a touchpoint's subscription gets that touchpoint's events only;
a service restarted while its subscriber was failing resumes from the stored cursor."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import requests
from aiohttp import web
from standardwebhooks.webhooks import Webhook

from smslink.app import Config, WebhookTimings, open_app
from smslink.domain.events import DeliveryEvent
from smslink.domain.models import Touchpoint
from smslink.web.webhooks import WebhookDispatcher
from tests.web.site import ADMIN, Site, running_site
from tests.web.test_api_events import _every_event
from tests.web.test_api_runs import post_audience, token, wait
from tests.web.test_runs import MESSAGE, _config, audience, configure, simulator_with

FAST = WebhookTimings(
    poll_s=0.05, request_timeout_s=5.0, backoff_base_s=0.05, backoff_max_s=0.2, batch=7
)


@dataclass
class Received:
    status: int
    headers: dict[str, str]
    body: str


@dataclass
class Subscriber:
    """A webhook receiver on a free loopback port: answers `answer(n)` to its n-th request
    (from 0), and keeps every request."""

    answer: Callable[[int], int] = lambda n: 200
    got: list[Received] = field(default_factory=list)
    url: str = ""

    def accepted(self) -> list[Received]:
        return [r for r in self.got if 200 <= r.status < 300]


@contextmanager
def subscriber(answer: Callable[[int], int] = lambda n: 200) -> Iterator[Subscriber]:
    sub = Subscriber(answer)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"])).decode()
            with lock:
                status = sub.answer(len(sub.got))
                sub.got.append(Received(status, dict(self.headers.items()), body))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    sub.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    try:
        yield sub
    finally:
        server.shutdown()
        server.server_close()


def _subscribe(site: Site, admin: dict[str, str], url: str, **fields: Any) -> dict[str, Any]:
    answer = requests.post(
        f"{site.url}/api/webhooks", headers=admin, json={"url": url, **fields}, timeout=10
    )
    assert answer.status_code == 201, answer.text
    created = dict(answer.json())
    assert created["secret"].startswith("whsec_") and created["enabled"] is True
    shown = requests.get(f"{site.url}/api/webhooks/{created['id']}", headers=admin, timeout=10)
    assert "secret" not in shown.json()  # shown once
    return created


def _run(site: Site, marketer: dict[str, str], n: int, touchpoint: str = "spring") -> int:
    started = post_audience(site, marketer, audience(n), touchpoint=touchpoint)
    assert started.status_code == 201, started.text
    run_id = int(started.json()["id"])
    wait(site, marketer, run_id, "completed")
    return run_id


def _until(check: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def _verified(secret: str, received: list[Received]) -> list[dict[str, Any]]:
    """Each delivery's body, once its signature is verified and its id is its event's."""
    bodies = []
    for r in received:
        assert r.headers["Content-Type"] == "application/json"
        body = Webhook(secret).verify(r.body, r.headers)
        assert r.headers["webhook-id"] == str(body["event_id"])
        bodies.append(body)
    return bodies


def _each_in_order(bodies: list[dict[str, Any]], every: list[dict[str, Any]]) -> None:
    """`bodies`, once repeats are dropped by event id (as a subscriber does), are exactly
    `every` event, and each delivery's come in the order the events were made."""
    first: dict[int, dict[str, Any]] = {}
    for body in bodies:
        first.setdefault(body["event_id"], body)
    assert sorted(first) == [e["event_id"] for e in every]
    assert [first[e["event_id"]] for e in every] == every
    made: dict[str, list[int]] = {}
    for e in every:
        made.setdefault(e["delivery_id"], []).append(e["event_id"])
    arrived: dict[str, list[int]] = {}
    for event_id, body in first.items():  # dicts keep the order of arrival
        arrived.setdefault(body["delivery_id"], []).append(event_id)
    assert arrived == made


@pytest.fixture
def fast_site(home: Path) -> Iterator[Site]:
    with running_site(home, webhook_timings=FAST) as site:
        yield site


def test_a_run_reaches_the_subscriber_once_per_event_in_order_signed(fast_site: Site) -> None:
    site = fast_site
    with simulator_with() as simulator, subscriber() as sub:
        configure(site, simulator)
        admin, marketer = token(site, ADMIN[0]), token(site)
        created = _subscribe(site, admin, sub.url)
        _run(site, marketer, 30)
        every = _every_event(site, marketer)
        _until(lambda: len(sub.got) >= len(every), "not every event arrived")
        time.sleep(0.3)  # nothing more comes

    assert len(every) >= 60  # at least two changes per record
    assert all(r.status == 200 for r in sub.got)
    verified = _verified(created["secret"], sub.got)
    assert len(verified) == len(every)  # nothing posted twice
    _each_in_order(verified, every)
    shown = requests.get(f"{site.url}/api/webhooks/{created['id']}", headers=admin, timeout=10)
    assert shown.json()["last_event_id"] == every[-1]["event_id"]
    assert shown.json()["attempts"] == 0


def test_a_subscriber_that_refuses_at_first_gets_everything_in_order_afterwards(
    fast_site: Site,
) -> None:
    site = fast_site
    with simulator_with() as simulator, subscriber(lambda n: 500 if n < 4 else 200) as sub:
        configure(site, simulator)
        admin, marketer = token(site, ADMIN[0]), token(site)
        created = _subscribe(site, admin, sub.url)
        _run(site, marketer, 5)
        every = _every_event(site, marketer)
        _until(lambda: len(sub.accepted()) >= len(every), "not every event arrived")
        time.sleep(0.3)

    assert [r.status for r in sub.got[:5]] == [500, 500, 500, 500, 200]
    refused = {json.loads(r.body)["event_id"] for r in sub.got[:4]}
    taken = {json.loads(r.body)["event_id"] for r in sub.accepted()}
    assert refused <= taken  # each refused event was posted again, and taken
    _each_in_order(_verified(created["secret"], sub.accepted()), every)


def test_a_subscriber_that_keeps_failing_is_disabled_with_its_reason_and_enabled_again(
    home: Path,
) -> None:
    timings = WebhookTimings(
        poll_s=0.05, backoff_base_s=0.05, backoff_max_s=0.1, give_up_after_s=0.5
    )
    answers = {"status": 503}
    with (
        running_site(home, webhook_timings=timings) as site,
        simulator_with() as simulator,
        subscriber(lambda n: answers["status"]) as sub,
    ):
        configure(site, simulator)
        admin, marketer = token(site, ADMIN[0]), token(site)
        created = _subscribe(site, admin, sub.url)
        url = f"{site.url}/api/webhooks/{created['id']}"
        _run(site, marketer, 2)

        def disabled() -> bool:
            return not requests.get(url, headers=admin, timeout=10).json()["enabled"]

        _until(disabled, "the subscription was never disabled")
        shown = requests.get(url, headers=admin, timeout=10).json()
        tries = len(sub.got)
        time.sleep(0.3)
        assert len(sub.got) == tries  # a disabled subscription is left alone
        assert shown["disabled_at"] and shown["attempts"] >= 2
        assert "HTTP 503" in shown["disabled_reason"] and shown["last_error"] == "HTTP 503"
        assert shown["last_event_id"] == created["last_event_id"]

        answers["status"] = 204
        enabled = requests.post(url + "/enable", headers=admin, timeout=10)
        assert enabled.status_code == 200, enabled.text
        assert (enabled.json()["enabled"], enabled.json()["attempts"]) == (True, 0)
        every = _every_event(site, marketer)
        _until(lambda: len(sub.accepted()) >= len(every), "not delivered after enabling")
        listed = requests.get(f"{site.url}/api/webhooks", headers=admin, timeout=10).json()

    _each_in_order(_verified(created["secret"], sub.accepted()), every)
    assert [w["id"] for w in listed] == [created["id"]]


def test_a_touchpoints_subscription_gets_that_touchpoints_events_only(fast_site: Site) -> None:
    site = fast_site
    with simulator_with() as simulator, subscriber() as sub:
        configure(site, simulator)
        with open_app(_config(site)) as app:
            app.touchpoints.add(Touchpoint("autumn", "sim", MESSAGE, "phone", {"Name": "name"}))
        admin, marketer = token(site, ADMIN[0]), token(site)
        created = _subscribe(site, admin, sub.url, touchpoint="autumn")
        _run(site, marketer, 4, "spring")
        autumn = _run(site, marketer, 3, "autumn")
        _run(site, marketer, 5, "spring")  # another audience: not a repeated send
        every = _every_event(site, marketer)
        theirs = [e for e in every if e["touchpoint"] == "autumn"]
        _until(lambda: len(sub.got) >= len(theirs), "not every autumn event arrived")
        url = f"{site.url}/api/webhooks/{created['id']}"
        _until(
            lambda: (
                requests.get(url, headers=admin, timeout=10).json()["last_event_id"]
                == every[-1]["event_id"]
            ),
            "the cursor did not move past the other touchpoint's events",
        )

    assert theirs and all(e["run"] == autumn for e in theirs)
    verified = _verified(created["secret"], sub.got)
    assert len(verified) == len(theirs)
    _each_in_order(verified, theirs)


def test_a_subscription_to_a_touchpoint_that_is_not_there_or_a_remote_http_url_is_refused(
    site: Site,
) -> None:
    admin = token(site, ADMIN[0])
    answer = requests.post(
        f"{site.url}/api/webhooks",
        headers=admin,
        json={"url": "http://hooks.example.com/x", "touchpoint": "nope"},
        timeout=10,
    )
    marketer = requests.get(f"{site.url}/api/webhooks", headers=token(site), timeout=10)

    assert answer.status_code == 422, answer.text
    assert {p["field"] for p in answer.json()["error"]["problems"]} == {"url", "touchpoint"}
    assert marketer.status_code == 403
    assert (
        requests.delete(f"{site.url}/api/webhooks/99", headers=admin, timeout=10).status_code == 404
    )


def test_a_restarted_service_resumes_from_the_stored_cursor(home: Path) -> None:
    answers = {"status": 500}
    with simulator_with() as simulator, subscriber(lambda n: answers["status"]) as sub:
        with running_site(home, webhook_timings=FAST) as site:
            configure(site, simulator)
            admin, marketer = token(site, ADMIN[0]), token(site)
            created = _subscribe(site, admin, sub.url)
            _run(site, marketer, 3)
            _until(lambda: len(sub.got) >= 2, "no delivery tried")
        answers["status"] = 200
        with running_site(home, users=False, webhook_timings=FAST) as site:
            every = _every_event(site, marketer)
            _until(lambda: len(sub.accepted()) >= len(every), "not resumed after the restart")
            time.sleep(0.3)

    _each_in_order(_verified(created["secret"], sub.accepted()), every)


def test_a_batch_moves_the_cursor_only_past_events_taken_with_all_before_them(
    tmp_path: Path,
) -> None:
    """Two deliveries' events posted side by side; the subscriber refuses the second
    delivery's first event. The cursor stops before it (the event before it was taken),
    the refusal is the batch's error, and that delivery's later event is not posted: a
    delivery's events never arrive out of order."""
    posted: list[int] = []

    async def take(request: web.Request) -> web.Response:
        event_id = int(request.headers["webhook-id"])
        posted.append(event_id)
        await asyncio.sleep(1.0 if event_id == 1 else 0.0)  # the refusal of 2 comes first
        return web.Response(status=500 if event_id == 2 else 204)

    def event(event_id: int, seq: int) -> DeliveryEvent:
        return DeliveryEvent(event_id, 7, seq, datetime.now(UTC), None, "sent", None, None, 1, "SM")

    async def main() -> tuple[int, str | None]:
        app = web.Application()
        app.router.add_post("/hook", take)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            with open_app(Config(database_url=f"sqlite:///{tmp_path / 'smslink.db'}")) as smslink:
                dispatcher = WebhookDispatcher(smslink.webhooks)
                async with aiohttp.ClientSession() as session:
                    # delivery 0: events 1 and 3; delivery 1: events 2 and 4
                    batch = [event(1, 0), event(2, 1), event(3, 0), event(4, 1)]
                    return await dispatcher._post_batch(
                        session, f"http://127.0.0.1:{port}/hook", "whsec_" + "A" * 32, batch
                    )
        finally:
            await runner.cleanup()

    cursor, error = asyncio.run(main())

    assert (cursor, error) == (1, "HTTP 500")
    # Delivery 1's second event waits for its first; delivery 0's second is not started
    # either, as its first was answered after the refusal (a failure ends the batch).
    assert sorted(posted) == [1, 2]
