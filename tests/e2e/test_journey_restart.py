"""A journey's records keep arriving while the service dies: records stream in at a steady
rate through `POST /api/touchpoints/hello/messages`, `smslink serve` is killed with SIGKILL
while some accepted records are still waiting to be sent, and a new `smslink serve` on the
same store takes over. Every accepted record gets exactly one SMS and exactly one final
event (after de-duplication by event id), and none is lost.

Why this matters: a 202 is a promise that the record is stored and will be sent, so a kill
must neither drop a record that was answered nor send one twice when the resumed run picks
up its journey's standing run. The journey's side is played as a real client would play
it: a request that got no answer (connection refused or reset, or a timeout) is sent again
with the same record until it is answered, and the identity de-duplication of the intake
makes that retry safe even when the dead service had already stored the record.
"""

from __future__ import annotations

import itertools
import signal
import subprocess
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests

from smslink.app import Config, open_app
from tests.clikit import Simulator
from tests.e2e.conftest import Cli
from tests.e2e.test_serve_restart import _serve

PASSWORD = "correct horse battery"
URL = "/api/touchpoints/hello/messages"
#: Client threads and the pause each keeps between its requests: ~50 records a second.
CLIENTS = 4
PAUSE_S = CLIENTS / 50
#: Sending is slower than arriving (20 a second), so accepted records queue up unsent.
MAX_SEGMENTS_PER_SECOND = "20"
#: Records each service must have accepted before it is killed / the stream ends.
BEFORE_KILL = 60
AFTER_RESTART = 60
#: Accepted records not yet at the simulator when the kill lands (it lands mid-stream).
BACKLOG = 10
#: How long one record is retried while the service is down or restarting.
RETRY_FOR_S = 60.0


def record(i: int) -> dict[str, Any]:
    """Customer `i`: its own identity and its own phone (the touchpoint `hello` reads
    `phone` and, for its <Name> placeholder, `name`)."""
    return {"identity": {"CustomerID": f"C-{i}"}, "fields": {"phone": phone(i), "name": f"N{i}"}}


def phone(i: int) -> str:
    return f"+1212{5550000 + i:07d}"


@dataclass
class Accepted:
    """A record's 202 answer and where it came from."""

    delivery_id: str
    service: int  # 1: the killed service, 2: the restarted one
    retried: bool  # its first request went unanswered
    repeated: bool  # the answer said the dead service had stored it already


@dataclass
class Stream:
    """The journey's side: client threads posting records one per request, each retried
    until it is answered, against whichever service is up now."""

    auth: dict[str, str]
    url: str
    service: int = 1
    accepted: dict[int, Accepted] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _numbers: itertools.count[int] = field(default_factory=itertools.count)

    def switch(self, url: str, service: int) -> None:
        with self._lock:
            self.url, self.service = url, service

    def accepted_by(self, service: int) -> int:
        with self._lock:
            return sum(1 for a in self.accepted.values() if a.service == service)

    def run(self) -> None:
        """One client: a record every PAUSE_S until `stop`."""
        next_at = time.monotonic()
        while not self.stop.is_set():
            with self._lock:
                i = next(self._numbers)
            self._deliver(i)
            next_at += PAUSE_S
            time.sleep(max(0.0, next_at - time.monotonic()))

    def _deliver(self, i: int) -> None:
        """Post record `i` until it is answered, as a journey retries a lost request."""
        retried = False
        deadline = time.monotonic() + RETRY_FOR_S
        while True:
            with self._lock:
                url, service = self.url, self.service
            try:
                answer = requests.post(url + URL, headers=self.auth, json=record(i), timeout=10)
            # Refused, reset, timed out, or cut off mid-answer by the kill: no answer, so
            # the journey sends the same record again.
            except (
                requests.ConnectionError,
                requests.Timeout,
                requests.exceptions.ChunkedEncodingError,
            ):
                assert time.monotonic() < deadline, f"record {i} was never answered"
                retried = True
                time.sleep(0.1)
                continue
            assert answer.status_code == 202, answer.text
            [only] = answer.json()["records"]
            assert only["status"] == "queued" and only["id"], only
            # Only a retry may find its record stored already, never a first request.
            assert retried or not only["repeated"], (i, only)
            with self._lock:
                self.accepted[i] = Accepted(only["id"], service, retried, only["repeated"])
            return


def _token(cli: Cli) -> dict[str, str]:
    """An Authorization header with a new API token of ada's, made over the service's
    own SQLite store."""
    with open_app(Config(database_url=f"sqlite:///{cli.home / 'smslink.db'}")) as app:
        [user] = [u for u in app.users.list() if u.name == "ada"]
        _, secret = app.users.create_token(user.id, "journey")
    return {"Authorization": f"Bearer {secret}"}


def _wait_for(what: str, condition: Any, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _new_events(url: str, auth: dict[str, str], after: int) -> tuple[list[dict[str, Any]], int]:
    """Every event after `after`, read as JSON pages; and the last event id."""
    found: list[dict[str, Any]] = []
    while True:
        page = requests.get(
            url + "/api/events",
            headers={**auth, "Accept": "application/json"},
            params={"after": after, "limit": 500},
            timeout=10,
        )
        assert page.status_code == 200, page.text
        body = page.json()
        if not body["events"]:
            return found, after
        found += body["events"]
        after = body["last_event_id"]


def _final_events(
    url: str, auth: dict[str, str], deliveries: set[str], timeout_s: float
) -> dict[str, list[dict[str, Any]]]:
    """Each delivery's events, de-duplicated by event id, once every one of `deliveries`
    has a final event (and a little longer, for any second final event to show)."""
    by_id: dict[int, dict[str, Any]] = {}
    after = 0
    deadline = time.monotonic() + timeout_s
    settled_at: float | None = None
    while True:
        events, after = _new_events(url, auth, after)
        for event in events:
            assert by_id.setdefault(event["event_id"], event) == event  # one id, one event
        finished = {e["delivery_id"] for e in by_id.values() if e["status"] is not None}
        if deliveries <= finished:
            settled_at = settled_at or time.monotonic()
            if time.monotonic() - settled_at > 1.5:
                break
        else:
            assert time.monotonic() < deadline, f"{len(deliveries - finished)} not final"
        time.sleep(0.2)
    history: dict[str, list[dict[str, Any]]] = {}
    for event_id in sorted(by_id):
        history.setdefault(by_id[event_id]["delivery_id"], []).append(by_id[event_id])
    return history


def test_records_streamed_across_a_killed_service_are_each_sent_once(
    cli: Cli, simulator: Simulator
) -> None:
    cli.env["SMSLINK_PASSWORD"] = PASSWORD
    cli.in_process.run("user", "add", "ada", "--role", "marketer")
    cli.add_touchpoint(simulator.base_url, "--max-segments-per-second", MAX_SEGMENTS_PER_SECOND)
    auth = _token(cli)

    first, url = _serve(cli)
    second: subprocess.Popen | None = None
    stream = Stream(auth, url)
    clients = ThreadPoolExecutor(CLIENTS)
    try:
        running = [clients.submit(stream.run) for _ in range(CLIENTS)]

        def backlog() -> int:
            return stream.accepted_by(1) - len(simulator.messages())

        _wait_for(
            "records accepted and waiting to be sent",
            lambda: stream.accepted_by(1) >= BEFORE_KILL and backlog() >= BACKLOG,
            timeout_s=30,
        )
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        accepted_at_kill = stream.accepted_by(1)
        sent_at_kill = len(simulator.messages())
        assert sent_at_kill < accepted_at_kill  # killed with accepted records unsent

        second, url = _serve(cli)
        stream.switch(url, 2)
        _wait_for(
            "records accepted after the restart",
            lambda: stream.accepted_by(2) >= AFTER_RESTART,
            timeout_s=60,
        )
        stream.stop.set()
        for client in running:
            client.result(timeout=RETRY_FOR_S + 15)  # a client's failed assertion fails here

        accepted = dict(stream.accepted)
        history = _final_events(url, auth, {a.delivery_id for a in accepted.values()}, timeout_s=60)
    finally:
        stream.stop.set()
        clients.shutdown(wait=True, cancel_futures=True)
        if first.poll() is None:
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
        if second is not None:
            second.send_signal(signal.SIGINT)
            second.wait(timeout=20)

    # The stream really was cut: records were accepted by both services, and some records
    # had to be retried across the outage.
    assert stream.accepted_by(1) >= accepted_at_kill >= BEFORE_KILL
    assert stream.accepted_by(2) >= AFTER_RESTART
    assert any(a.retried for a in accepted.values())
    # Every record the journey handed over was answered once (retries included), each
    # with its own delivery.
    assert sorted(accepted) == list(range(len(accepted)))
    ids = [a.delivery_id for a in accepted.values()]
    assert len(set(ids)) == len(ids)

    # Exactly one SMS per accepted record, to its own phone, and none to anyone else.
    per_phone = Counter(m["to"] for m in simulator.messages().values())
    assert set(per_phone) == {phone(i) for i in accepted}
    assert set(per_phone.values()) == {1}, {p: n for p, n in per_phone.items() if n > 1}

    # Exactly one final event per accepted record, carrying its identity; none lost, and
    # no delivery that nobody was answered for.
    assert set(history) == set(ids)
    for i, answer in accepted.items():
        events = history[answer.delivery_id]
        finals = [e for e in events if e["status"] is not None]
        assert len(finals) == 1 and events[-1] is finals[0], events
        assert finals[0]["status"] == "delivered", finals
        assert all(e["identity"] == record(i)["identity"] for e in events), events
    assert sum(1 for e in history.values() for x in e if x["status"]) == len(accepted)
