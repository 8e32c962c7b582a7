"""Twilio status callbacks over real HTTP: the simulator posts them (signed, as Twilio does)
to the service's `/twilio/status/{connection}` while a run started beside the service (as
`smslink send` would) tracks its messages; and requests nobody signed, replays, late
statuses and garbage, posted straight to the receiver."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest
import requests

from smslink.app import Config, RunCounters, RunRequest, open_app
from smslink.domain.models import Connection, Delivery, Progress, ResultStatus, Stage, Touchpoint
from smslink.twilio.signature import compute_signature
from tests.web.conftest import TOKEN
from tests.web.site import Site
from tests.web.test_runs import SID, _messages, audience, simulator_with, stats

#: Longer than the default test simulator's, so that a message's final status comes after
#: its sid is stored (the progress writer flushes every 0.25 s) and before the first poll.
LIFECYCLE = {"queued_s": 0.3, "sending_s": 0.2, "sent_s": 0.3}


def _config(site: Site) -> Config:
    return Config(database_url=f"sqlite:///{site.home / 'smslink.db'}")


def _add_connection(
    site: Site, simulator: str, name: str, *, callbacks: bool, poll_interval_ms: int = 1500
) -> None:
    with open_app(_config(site)) as app:
        app.connections.add(
            Connection(
                name=name,
                account_sid=SID,
                auth_token=TOKEN,
                from_number="+15005550006",
                base_url=simulator,
                poll_interval_ms=poll_interval_ms,
                poll_attempts=20,
                concurrency=20,
                callback_base_url=site.url if callbacks else None,
            )
        )
        app.touchpoints.add(Touchpoint(name, name, "Hi <Name>", "phone", {"Name": "name"}))


def _send(site: Site, touchpoint: str, n: int) -> list[Delivery]:
    """Send `n` records through `touchpoint` as the command line would, to the end."""
    source = site.home / f"{touchpoint}.csv"
    source.write_text(audience(n))
    with open_app(_config(site)) as app:
        run_id = app.runs.start(
            RunRequest(touchpoint, source, site.home / f"{touchpoint}-results.csv")
        )
        # In a thread of its own: a browser test on the same worker may hold a running
        # event loop in this one.
        with ThreadPoolExecutor(1) as pool:
            run = pool.submit(asyncio.run, app.runs.execute(run_id, RunCounters())).result()
        assert run.state == "completed", run.error
        return app.runs.deliveries(run_id, per_page=10_000).deliveries


def _as_simulator_says(simulator: str, rows: list[Delivery]) -> None:
    """Every delivery's status and error code are the simulator's (`GET /_messages`)."""
    truth = {m["sid"]: m for m in _messages(simulator)}
    assert len(truth) == len(rows)
    for row in rows:
        message = truth[row.message_sid]
        assert row.stage is Stage.DONE
        assert (row.twilio_status, row.error_code) == (message["status"], message["error_code"])


def _tracking_gets(simulator: str) -> int:
    return int(stats(simulator)["gets"])


def test_callbacks_finish_a_run_right_with_fewer_requests_than_polling(site: Site) -> None:
    with simulator_with(**LIFECYCLE, undelivered_share=0.2, failed_share=0.1) as simulator:
        root = simulator.rsplit("/2010-04-01", 1)[0]
        # A long interval: every callback arrives well within it even on a loaded machine
        # (a message is final 0.8 s after its create), so the callback run polls nothing
        # while polling needs at least one round.
        _add_connection(site, simulator, "polling", callbacks=False, poll_interval_ms=4000)
        _add_connection(site, simulator, "callbacks", callbacks=True, poll_interval_ms=4000)

        polled = _send(site, "polling", 80)
        _as_simulator_says(simulator, polled)
        polling_gets = _tracking_gets(simulator)
        requests.post(f"{root}/_reset", timeout=10)

        called_back = _send(site, "callbacks", 80)
        _as_simulator_says(simulator, called_back)
        counts = stats(simulator)

    assert counts["callbacks_sent"] > 0 and counts["callbacks_failed"] == 0
    assert polling_gets > 0
    assert counts["gets"] == 0
    # The same result fields as polling writes: a failing code comes with Twilio's title.
    failing = [d for d in called_back if d.status in (ResultStatus.UNDELIVERED, "failed")]
    assert failing and all(d.error_code and d.error_message for d in failing)


def test_callbacks_that_come_before_the_sid_is_stored_are_applied_not_lost(site: Site) -> None:
    """A message that is final 0.04 s after its create: Twilio's callbacks arrive before
    the create's answer is stored (the progress writer stores answers every 0.25 s). The
    service keeps them and applies them once the sid is there, so the run ends right
    without a single poll (interval 4 s; the first would come 2 s after the last send).
    Before, those callbacks were dropped and every status was found by polling."""
    with simulator_with(queued_s=0.0, sending_s=0.02, sent_s=0.02) as simulator:
        _add_connection(site, simulator, "quick", callbacks=True, poll_interval_ms=4000)
        rows = _send(site, "quick", 40)
        _as_simulator_says(simulator, rows)
        counts = stats(simulator)
    assert counts["callbacks_sent"] >= 3 * 40 and counts["callbacks_failed"] == 0
    assert counts["gets"] == 0


def test_with_a_tenth_of_callbacks_lost_polling_still_ends_every_message_right(
    site: Site,
) -> None:
    with simulator_with(**LIFECYCLE, callback_drop_share=0.1, undelivered_share=0.2) as simulator:
        _add_connection(site, simulator, "callbacks", callbacks=True)
        rows = _send(site, "callbacks", 80)
        _as_simulator_says(simulator, rows)
        counts = stats(simulator)
    assert counts["callbacks_dropped"] > 0
    assert counts["gets"] > 0  # the fallback polled for what was lost


# -- the receiver on its own -----------------------------------------------------------------


@contextmanager
def _tracked(site: Site, simulator: str, n: int = 3) -> Iterator[int]:
    """A run whose deliveries SM0..SM{n-1} are being tracked (as if just accepted)."""
    _add_connection(site, simulator, "sim", callbacks=True)
    source = site.home / "a.csv"
    source.write_text(audience(n))
    with open_app(_config(site)) as app:
        run_id = app.runs.start(RunRequest("sim", source, site.home / "out.csv"))
        store = app._store  # the stage a run reaches after its POSTs, set directly
        store.deliveries.add_deliveries(
            run_id,
            [Delivery(run_id, i, {}, f"+1212555{i:04d}", "Hi", 1) for i in range(n)],
            ["phone"],
        )
        store.deliveries.claim_pending(run_id, n, app.runs.get(run_id).created_at)
        store.deliveries.save_progress(
            [
                Progress(run_id, i, Stage.TRACKING, twilio_status="queued", message_sid=f"SM{i}")
                for i in range(n)
            ]
        )
    yield run_id


def _rows(site: Site, run_id: int) -> dict[str, Delivery]:
    with open_app(_config(site)) as app:
        found = app.runs.deliveries(run_id, per_page=100).deliveries
    return {str(d.message_sid): d for d in found}


def _post(
    site: Site,
    form: dict[str, str],
    *,
    token: str | None = None,
    signature: str | None = "sign",
    connection: str = "sim",
) -> requests.Response:
    url = f"{site.url}/twilio/status/{connection}"
    headers = {}
    if signature == "sign":
        signature = compute_signature(TOKEN, url + "#rc=5&rp=all", form)
    if signature is not None:
        headers["X-Twilio-Signature"] = signature
    if token is not None:
        headers["I-Twilio-Idempotency-Token"] = token
    return requests.post(url, data=form, headers=headers, timeout=10)


def _form(sid: str, status: str, **more: str) -> dict[str, str]:
    return {"MessageSid": sid, "MessageStatus": status, "AccountSid": SID, **more}


@pytest.fixture
def idle_simulator() -> Iterator[str]:
    with simulator_with() as simulator:
        yield simulator


def test_a_missing_or_forged_signature_is_refused_and_changes_nothing(
    site: Site, idle_simulator: str
) -> None:
    with _tracked(site, idle_simulator) as run_id:
        form = _form("SM0", "delivered")
        refused = [
            _post(site, form, signature=None),
            _post(site, form, signature=""),
            _post(site, form, signature=compute_signature("not-the-token", site.url, form)),
            _post(site, {**form, "MessageStatus": "failed"}, signature=_post_signature(site, form)),
            _post(site, form, connection="nobody"),
        ]
        assert [answer.status_code for answer in refused] == [403] * len(refused)
        row = _rows(site, run_id)["SM0"]
        assert (row.stage, row.twilio_status) == (Stage.TRACKING, "queued")


def _post_signature(site: Site, form: dict[str, str]) -> str:
    return compute_signature(TOKEN, f"{site.url}/twilio/status/sim#rc=5&rp=all", form)


def test_replays_late_statuses_and_repeated_failures_never_undo_what_came_first(
    site: Site, idle_simulator: str
) -> None:
    with _tracked(site, idle_simulator) as run_id:
        delivered = _post(site, _form("SM0", "delivered"), token="tok-1")
        replayed = _post(site, _form("SM0", "delivered"), token="tok-1")
        late = _post(site, _form("SM0", "sent"), token="tok-2")
        failed = _post(site, _form("SM1", "failed", ErrorCode="30005"), token="tok-3")
        failed_again = _post(site, _form("SM1", "failed", ErrorCode="30008"), token="tok-4")
        unknown = _post(site, _form("SMunknown", "delivered"), token="tok-5")

        assert [a.status_code for a in (delivered, replayed, late, failed, failed_again)] == [
            200
        ] * 5
        assert unknown.status_code == 200 and unknown.content == b""
        rows = _rows(site, run_id)
        assert (rows["SM0"].stage, rows["SM0"].status, rows["SM0"].twilio_status) == (
            Stage.DONE,
            ResultStatus.DELIVERED,
            "delivered",
        )
        assert (rows["SM1"].status, rows["SM1"].error_code, rows["SM1"].error_message) == (
            ResultStatus.FAILED,
            30005,
            "Unknown destination handset",
        )
        assert rows["SM2"].stage is Stage.TRACKING
    with sqlite3.connect(site.home / "smslink.db") as db:
        tokens = [t for (t,) in db.execute("SELECT token FROM callback_tokens ORDER BY token")]
    # tok-1 once; tok-5 (a sid no delivery holds) is not spent: that callback is tried
    # again for a while, in case it came before its create's answer was stored.
    assert tokens == ["tok-1", "tok-2", "tok-3", "tok-4"]


@pytest.mark.parametrize(
    "body",
    [
        b"\xff\xfe\x00garbage",
        b"%%%&&&===",
        b"MessageSid=" + b"A" * 20_000,
        b"x=1&" * 500,
        b"",
    ],
    ids=["not-utf8", "not-a-form", "huge", "too-many-fields", "empty"],
)
def test_garbage_is_refused_without_an_error_of_the_service(
    site: Site, idle_simulator: str, body: bytes
) -> None:
    with _tracked(site, idle_simulator):
        headers: dict[str, Any] = {
            "X-Twilio-Signature": "c2lnbmF0dXJl",
            "Content-Type": "application/x-www-form-urlencoded",
        }
        answer = requests.post(
            f"{site.url}/twilio/status/sim", data=body, headers=headers, timeout=10
        )
    assert answer.status_code in (400, 403, 413)


def test_the_receiver_takes_posts_only_and_answers_with_the_security_headers(
    site: Site, idle_simulator: str
) -> None:
    """The receiver answers its own path ahead of the app's routes: another method is
    405 (saying POST), a NUL in the connection's name is refused like a forgery, and every
    answer carries the headers every page does."""
    with _tracked(site, idle_simulator):
        fetched = requests.get(f"{site.url}/twilio/status/sim", timeout=10)
        nul = _post(site, _form("SM0", "delivered"), connection="%00")
        posted = _post(site, _form("SM0", "delivered"), token="tok-h")
    assert (fetched.status_code, fetched.headers["allow"]) == (405, "POST")
    assert nul.status_code == 403
    assert posted.status_code == 200
    for answer in (fetched, nul, posted):
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["cache-control"] == "no-store"
        assert "set-cookie" not in answer.headers  # no session for Twilio
