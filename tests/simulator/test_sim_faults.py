"""Limits and faults over real loopback HTTP: 429 over the concurrency limit, 5xx, resets
before and after creation, answers held past the client's timeout, latency jitter, the
counters that record them, /_messages, and the `smslink simulator` options that set them.

Clients are real (aiohttp, urllib, the official SDK): a reset must reach a client as a
dropped connection, never as an HTTP answer, or a client's handling of it proves nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from simkit import ACCOUNT_SID, FROM, TOKEN, Sim
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from typer.testing import CliRunner

from smslink.cli import app as cli_app
from smslink.simulator import SimulatorConfig, run_in_thread

MESSAGES = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
ACCOUNT = f"/2010-04-01/Accounts/{ACCOUNT_SID}.json"
AUTH = {"Authorization": aiohttp.encode_basic_auth(ACCOUNT_SID, TOKEN)}
#: Any connection-level failure: what a client sees when no HTTP answer comes back.
DROPPED = (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)
TWILIO_429 = {
    "code": 20429,
    "message": "Too Many Requests",
    "more_info": "https://www.twilio.com/docs/errors/20429",
    "status": 429,
}


def recipient(i: int) -> str:
    return f"+1415555{i:04d}"


def form(to: str) -> dict[str, str]:
    return {"To": to, "From": FROM, "Body": "Hi"}


async def post(
    sim: Sim, to: str, *, timeout: float = 5.0
) -> tuple[int, dict[str, Any], dict[str, str]]:
    """One create on a fresh connection: status, JSON body and headers."""
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    async with (
        aiohttp.ClientSession(headers=AUTH, timeout=client_timeout) as session,
        session.post(sim.origin + MESSAGES, data=form(to)) as response,
    ):
        return response.status, await response.json(), dict(response.headers)


async def get(sim: Sim, path: str) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession(headers=AUTH) as session,
        session.get(sim.origin + path) as response,
    ):
        return response.status, await response.json()


def messages(sim: Sim) -> list[dict[str, Any]]:
    status, body = sim.http("GET", "/_messages", auth=None)
    assert status == 200
    return body["messages"]


# --- concurrency limit -------------------------------------------------------------------


def test_requests_over_the_limit_get_429_at_once_and_the_peak_stays_within_it(
    start_sim: Callable[..., Sim],
) -> None:
    sim = start_sim(SimulatorConfig(concurrency_limit=5, latency_ms=600))

    async def timed(i: int) -> tuple[int, dict[str, Any], dict[str, str], float]:
        started = time.monotonic()
        status, body, headers = await post(sim, recipient(i))
        return status, body, headers, time.monotonic() - started

    async def burst() -> list[tuple[int, dict[str, Any], dict[str, str], float]]:
        return await asyncio.gather(*(timed(i) for i in range(20)))

    results = asyncio.run(burst())
    throttled = [r for r in results if r[0] == 429]
    created = [r for r in results if r[0] == 201]
    assert len(created) + len(throttled) == 20
    assert len(created) >= 5 and len(throttled) >= 10  # all 20 arrive well within 600 ms
    for _, body, headers, elapsed in throttled:
        assert body == TWILIO_429
        assert "Retry-After" not in headers  # as Twilio often answers
        assert elapsed < 0.5  # answered at once, not after the latency
    stats = sim.stats()
    assert stats["throttled"] == len(throttled)
    assert stats["peak_concurrency"] == 5
    assert stats["posts"] == 20  # every POST received, throttled ones included
    assert sum(stats["posts_by_to"].values()) == 20
    assert stats["messages"] == sum(stats["messages_by_to"].values()) == len(created)


def test_429_carries_retry_after_when_configured(start_sim: Callable[..., Sim]) -> None:
    sim = start_sim(SimulatorConfig(concurrency_limit=1, latency_ms=400, retry_after_s=2))

    async def pair() -> list[tuple[int, dict[str, Any], dict[str, str]]]:
        return await asyncio.gather(post(sim, recipient(1)), post(sim, recipient(2)))

    (status_a, _, headers_a), (status_b, _, headers_b) = asyncio.run(pair())
    assert sorted([status_a, status_b]) == [201, 429]
    throttled_headers = headers_a if status_a == 429 else headers_b
    assert throttled_headers["Retry-After"] == "2"


def test_sdk_sees_twilio_rest_exception_20429(start_sim: Callable[..., Sim]) -> None:
    sim = start_sim(SimulatorConfig(concurrency_limit=1, latency_ms=800))
    slow = threading.Thread(target=sim.http, args=("GET", ACCOUNT))
    slow.start()
    try:
        deadline = time.monotonic() + 5
        while sim.stats()["peak_concurrency"] < 1:  # the slow request now holds the slot
            assert time.monotonic() < deadline
            time.sleep(0.01)
        with pytest.raises(TwilioRestException) as caught:
            sim.client().messages.create(to=recipient(1), from_=FROM, body="Hi")
    finally:
        slow.join()
    assert caught.value.status == 429
    assert caught.value.code == 20429
    assert sim.stats()["messages"] == 0


# --- 5xx -----------------------------------------------------------------------------------


def statuses_of_sequential_posts(sim: Sim, count: int) -> list[int]:
    return [sim.http("POST", MESSAGES, form(recipient(i)))[0] for i in range(count)]


def test_server_error_share_is_roughly_honoured_and_creates_nothing(
    start_sim: Callable[..., Sim],
) -> None:
    sim = start_sim(SimulatorConfig(server_error_share=0.3, seed=1))
    created: set[str] = set()
    failures: Counter[int] = Counter()
    for i in range(200):
        status, body = sim.http("POST", MESSAGES, form(recipient(i)))
        if status == 201:
            created.add(body["to"])
            continue
        failures[status] += 1
        code = {500: 20500, 503: 20503}[status]
        assert body["code"] == code and body["status"] == status
        assert body["more_info"] == f"https://www.twilio.com/docs/errors/{code}"
    assert 35 <= sum(failures.values()) <= 85  # 60 expected; binomial sd about 6.5
    assert failures[500] and failures[503]
    stats = sim.stats()
    assert stats["server_errors"] == sum(failures.values())
    assert set(stats["messages_by_to"]) == created == {m["to"] for m in messages(sim)}
    assert stats["posts"] == 200 and set(stats["posts_by_to"].values()) == {1}


def test_fault_draws_repeat_for_the_same_seed_and_after_reset(
    start_sim: Callable[..., Sim],
) -> None:
    config = SimulatorConfig(server_error_share=0.5, seed=42)
    first = start_sim(config)
    statuses = statuses_of_sequential_posts(first, 30)
    assert statuses_of_sequential_posts(start_sim(config), 30) == statuses
    assert first.http("POST", "/_reset", {}, auth=None)[0] == 200
    assert statuses_of_sequential_posts(first, 30) == statuses
    other_seed = start_sim(SimulatorConfig(server_error_share=0.5, seed=43))
    assert statuses_of_sequential_posts(other_seed, 30) != statuses


def test_5xx_also_hits_gets(start_sim: Callable[..., Sim]) -> None:
    sim = start_sim(SimulatorConfig(server_error_share=1.0))
    status, body = sim.http("GET", ACCOUNT)
    assert status in (500, 503) and body["code"] in (20500, 20503)
    status, body = sim.http("GET", ACCOUNT, auth=None)  # no auth check: the work never ran
    assert status in (500, 503)


# --- connection resets --------------------------------------------------------------------


def test_reset_before_creates_nothing_and_gives_no_http_answer(
    start_sim: Callable[..., Sim],
) -> None:
    sim = start_sim(SimulatorConfig(reset_before_share=1.0))
    with pytest.raises(DROPPED):
        asyncio.run(post(sim, recipient(1)))
    with pytest.raises(DROPPED):
        asyncio.run(get(sim, ACCOUNT))
    with pytest.raises(ConnectionError):  # urllib too: reset, not an answer
        sim.http("POST", MESSAGES, form(recipient(2)))
    stats = sim.stats()
    # Every request was reset; aiohttp silently retries an idempotent GET once after a
    # dropped connection, so count requests received rather than calls made.
    assert stats["posts"] == 2 and stats["gets"] >= 1
    assert stats["resets_before"] == stats["posts"] + stats["gets"]
    assert stats["messages"] == 0 and messages(sim) == []
    assert stats["posts_by_to"] == {recipient(1): 1, recipient(2): 1}


def test_reset_after_stores_the_message_but_the_client_gets_no_answer(
    start_sim: Callable[..., Sim],
) -> None:
    sim = start_sim(SimulatorConfig(reset_after_share=1.0))
    with pytest.raises(DROPPED):
        asyncio.run(post(sim, recipient(1)))
    [stored] = messages(sim)
    assert stored["to"] == recipient(1) and stored["from"] == FROM
    stats = sim.stats()
    assert stats["resets_after"] == 1
    assert stats["messages_by_to"] == {recipient(1): 1}
    # Only creates are reset after the work: the message can be read back.
    status, fetched = asyncio.run(
        get(sim, f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{stored['sid']}.json")
    )
    assert status == 200 and fetched["sid"] == stored["sid"]
    # Failed creates were never stored, so there is nothing to reset after.
    status, body = sim.http("POST", MESSAGES, form("+15005550004"))
    assert (status, body["code"]) == (400, 21610)
    assert sim.stats()["resets_after"] == 1


# --- answers held past the client's timeout -----------------------------------------------


def test_delay_after_create_stores_the_message_and_the_client_times_out(
    start_sim: Callable[..., Sim],
) -> None:
    sim = start_sim(SimulatorConfig(delay_after_create_share=1.0, delay_after_create_s=1.0))
    started = time.monotonic()
    with pytest.raises(TimeoutError):  # aiohttp's timeouts are TimeoutErrors
        asyncio.run(post(sim, recipient(1), timeout=0.3))
    assert time.monotonic() - started < 0.9
    [stored] = messages(sim)  # created before the answer was held
    assert stored["to"] == recipient(1)
    assert sim.stats()["delayed"] == 1


def test_sdk_times_out_on_a_delayed_create(start_sim: Callable[..., Sim]) -> None:
    sim = start_sim(SimulatorConfig(delay_after_create_share=1.0, delay_after_create_s=1.0))
    client = sim.client(http_client=TwilioHttpClient(timeout=0.3))
    with pytest.raises(Exception, match=r"(?i)timed? ?out"):
        client.messages.create(to=recipient(1), from_=FROM, body="Hi")
    assert sim.stats()["messages_by_to"] == {recipient(1): 1}


def test_a_held_answer_frees_its_concurrency_slot_once_the_client_gives_up(
    start_sim: Callable[..., Sim],
) -> None:
    sim = start_sim(
        SimulatorConfig(concurrency_limit=2, delay_after_create_share=1.0, delay_after_create_s=30)
    )

    async def two_timeouts() -> None:
        posts = (post(sim, recipient(i), timeout=0.2) for i in range(2))
        results = await asyncio.gather(*posts, return_exceptions=True)
        assert all(isinstance(r, TimeoutError) for r in results)

    asyncio.run(two_timeouts())
    time.sleep(0.2)  # the holds notice their clients hung up
    status, _ = asyncio.run(get(sim, f"/2010-04-01/Accounts/{ACCOUNT_SID}.json"))
    assert status == 200  # not 429: nobody is waiting for those answers any more
    assert sim.stats()["throttled"] == 0


def test_a_held_answer_does_not_stall_the_server_stop() -> None:
    config = SimulatorConfig(delay_after_create_share=1.0, delay_after_create_s=30.0)
    with run_in_thread(config) as base_url:
        with pytest.raises(TimeoutError):
            asyncio.run(post(Sim(base_url), recipient(1), timeout=0.2))
        stopping = time.monotonic()
    assert time.monotonic() - stopping < 5


# --- latency jitter -----------------------------------------------------------------------


def test_latency_jitter_adds_a_varying_delay_on_top_of_the_fixed_one(
    start_sim: Callable[..., Sim],
) -> None:
    sim = start_sim(SimulatorConfig(latency_ms=20, latency_jitter_ms=30, seed=3))
    elapsed = []
    for _ in range(15):
        started = time.monotonic()
        assert sim.http("GET", ACCOUNT)[0] == 200
        elapsed.append(time.monotonic() - started)
    assert min(elapsed) >= 0.02
    assert max(elapsed) - min(elapsed) > 0.01  # exponential extras, mean 30 ms
    assert max(elapsed) < 0.02 + 0.3 + 0.5  # capped at 10x the mean, plus slack


# --- stats, /_reset and /_messages --------------------------------------------------------


def test_reset_clears_fault_counters(start_sim: Callable[..., Sim]) -> None:
    sim = start_sim(SimulatorConfig(server_error_share=0.5, reset_after_share=0.5, seed=9))
    for i in range(20):
        with contextlib.suppress(ConnectionError):  # the resets after creation
            sim.http("POST", MESSAGES, form(recipient(i)))
    stats = sim.stats()
    assert stats["server_errors"] > 0 and stats["resets_after"] > 0
    assert stats["peak_concurrency"] == 1
    assert sim.http("POST", "/_reset", {}, auth=None)[0] == 200
    cleared = sim.stats()
    for key in ("throttled", "server_errors", "resets_before", "resets_after", "delayed"):
        assert cleared[key] == 0
    assert cleared["peak_concurrency"] == 0 and messages(sim) == []


def test_messages_hook_shows_every_message_as_of_now_and_is_never_faulted(
    start_sim: Callable[..., Sim],
) -> None:
    config = SimulatorConfig(
        queued_s=0.02, sending_s=0.02, sent_s=0.02, failed_share=1.0, concurrency_limit=1
    )
    sim = start_sim(config)
    sent = sim.send(recipient(1), body="Hello")
    time.sleep(0.1)
    assert messages(sim) == [
        {
            "sid": sent["sid"],
            "to": recipient(1),
            "from": FROM,
            "status": "failed",
            "error_code": sent_error_code(sim, sent["sid"]),
            "body": "Hello",
        }
    ]
    faulty = start_sim(SimulatorConfig(server_error_share=1.0))
    assert faulty.http("GET", "/_messages", auth=None)[0] == 200
    assert faulty.http("GET", "/_stats", auth=None)[0] == 200
    assert faulty.http("POST", "/_reset", {}, auth=None)[0] == 200


def sent_error_code(sim: Sim, sid: str) -> int:
    """The error code the API itself shows for `sid` (the hook must agree with it)."""
    status, body = sim.http("GET", f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}.json")
    assert status == 200 and body["status"] == "failed"
    assert isinstance(body["error_code"], int)
    return body["error_code"]


# --- configuration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings",
    [
        {"server_error_share": 1.5},
        {"reset_before_share": -0.1},
        {"server_error_share": 0.6, "reset_before_share": 0.6},
        {"reset_after_share": 0.6, "delay_after_create_share": 0.6},
        {"concurrency_limit": 0},
        {"retry_after_s": -1.0},
        {"latency_jitter_ms": -1.0},
        {"delay_after_create_s": -1.0},
    ],
)
def test_config_rejects_impossible_fault_settings(settings: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        SimulatorConfig(**settings)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--server-error-share", "0.6", "--reset-before-share", "0.6"], "server_error_share"),
        (["--reset-after-share", "0.6", "--delay-after-create-share", "0.6"], "reset_after"),
        (["--concurrency-limit", "0"], "concurrency_limit"),
        (["--retry-after-s", "-1"], "retry_after_s"),
        (["--latency-jitter-ms", "-1"], "latency_jitter_ms"),
        (["--delay-after-create-s", "-1"], "delay_after_create_s"),
    ],
)
def test_cli_options_reach_the_config(options: list[str], message: str) -> None:
    # An impossible value is refused by SimulatorConfig itself, so the refusal proves the
    # option arrived under the right field; no server is started.
    result = CliRunner().invoke(cli_app, ["simulator", *options])
    assert result.exit_code == 2
    assert message in result.output


def test_cli_serves_with_limit_and_faults() -> None:
    command = [
        sys.executable,
        "-m",
        "smslink",
        "simulator",
        "--concurrency-limit",
        "1",
        "--retry-after-s",
        "2",
        "--latency-ms",
        "400",
        "--reset-after-share",
        "1",
        "--seed",
        "5",
    ]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        try:
            line = process.stdout.readline() if process.stdout else ""
            assert line.startswith("Twilio simulator listening on "), line
            sim = Sim(line.rsplit(" ", 1)[1].strip())

            async def pair() -> list[Any]:
                return await asyncio.gather(
                    post(sim, recipient(1)), post(sim, recipient(2)), return_exceptions=True
                )

            outcomes = asyncio.run(pair())
            dropped = [o for o in outcomes if isinstance(o, DROPPED)]
            answered = [o for o in outcomes if isinstance(o, tuple)]
            assert len(dropped) == len(answered) == 1
            status, _, headers = answered[0]
            assert (status, headers["Retry-After"]) == (429, "2")
            stats = sim.stats()
            assert (stats["throttled"], stats["resets_after"], stats["messages"]) == (1, 1, 1)
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=10) == 0
        finally:
            if process.poll() is None:
                process.kill()
