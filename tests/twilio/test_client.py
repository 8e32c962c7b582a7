"""smslink's Twilio client against the simulator over loopback HTTP, and its error grouping."""

from __future__ import annotations

import asyncio
import json
import socket
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from smslink.engine.pacing import AdaptiveWindow
from smslink.simulator import SimulatorConfig, run_in_thread
from smslink.twilio import (
    AnswerLost,
    ApiError,
    ConnectFailed,
    ErrorKind,
    TwilioClient,
    Withheld,
)
from smslink.twilio.client import RETRY_AFTER_CAP_S, RetryPolicy, _parse_retry_after
from tests.clikit import Simulator

ACCOUNT = "AC" + "c1000000000000000000000000000001"
TOKEN = "client-token"
SENDER = "+15005550006"


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    config = SimulatorConfig(auth_token=TOKEN, queued_s=0.05, sending_s=0.05, sent_s=0.05)
    with run_in_thread(config) as url:
        yield url


def _client(base_url: str, *, token: str = TOKEN, **kwargs: object) -> TwilioClient:
    return TwilioClient(
        base_url=base_url, account_sid=ACCOUNT, username=ACCOUNT, password=token, **kwargs
    )


def test_create_fetch_and_list_round_trip(base_url: str) -> None:
    async def scenario() -> None:
        async with _client(base_url) as client:
            created = [
                await client.create_message(to=f"+1212555{n:04d}", body="Hi €", from_number=SENDER)
                for n in range(5)
            ]
            assert all(m.sid.startswith("SM") and len(m.sid) == 34 for m in created)
            assert created[0].status == "queued" and created[0].num_segments == 1
            await asyncio.sleep(0.3)
            fetched = await client.fetch_message(created[0].sid)
            assert fetched.status == "delivered"
            assert fetched.date_created is not None and fetched.date_created.tzinfo is not None
            pages = [page async for page in client.list_messages(from_number=SENDER, page_size=2)]
            listed = [m.sid for page in pages for m in page]
            assert [len(p) for p in pages][:2] == [2, 2]
            assert set(listed) >= {m.sid for m in created}
            assert client.requests["create"] == 5 and client.requests["list"] == len(pages)

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("to", "from_number", "code", "kind"),
    [
        ("+15005550001", SENDER, 21211, ErrorKind.RECIPIENT),
        ("+15005550004", SENDER, 21610, ErrorKind.RECIPIENT),
        ("+15005550009", SENDER, 21614, ErrorKind.RECIPIENT),
        ("+15005550002", SENDER, 21612, ErrorKind.RECIPIENT),
        ("+15005550003", SENDER, 21408, ErrorKind.RECIPIENT),
        ("+12125550100", "+15005550001", 21212, ErrorKind.CONFIGURATION),
        ("+12125550100", "+15005550007", 21606, ErrorKind.CONFIGURATION),
        ("+12125550100", "+15005550008", 21611, ErrorKind.RETRYABLE),
    ],
)
def test_api_errors_carry_twilio_code_and_what_to_do(
    base_url: str, to: str, from_number: str, code: int, kind: ErrorKind
) -> None:
    async def scenario() -> ApiError:
        async with _client(base_url, retry=RetryPolicy(max_retries=0)) as client:
            with pytest.raises(ApiError) as raised:
                await client.create_message(to=to, body="x", from_number=from_number)
            return raised.value

    error = asyncio.run(scenario())
    assert (error.code, error.status, error.kind) == (code, 400, kind)
    assert error.more_info == f"https://www.twilio.com/docs/errors/{code}"


def test_wrong_token_is_a_configuration_error(base_url: str) -> None:
    async def scenario() -> None:
        async with _client(base_url, token="wrong") as client:
            await client.fetch_account()

    with pytest.raises(ApiError) as raised:
        asyncio.run(scenario())
    assert (raised.value.code, raised.value.status) == (20003, 401)
    assert raised.value.kind is ErrorKind.CONFIGURATION


def test_refused_connection_is_safe_to_retry_and_says_so() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again below: nothing listens there

    async def scenario() -> None:
        async with _client(
            f"http://127.0.0.1:{port}/2010-04-01", retry=RetryPolicy(max_retries=1)
        ) as client:
            await client.fetch_message("SM" + "0" * 32)

    with pytest.raises(ConnectFailed) as raised:
        asyncio.run(scenario())
    assert "cannot connect to 127.0.0.1" in str(raised.value)
    assert raised.value.kind is ErrorKind.RETRYABLE


def test_a_post_whose_answer_is_late_is_ambiguous_not_retried() -> None:
    late = SimulatorConfig(auth_token=TOKEN, latency_ms=500)
    with run_in_thread(late) as url:

        async def scenario() -> None:
            async with _client(url, read_timeout_s=0.1) as client:
                await client.create_message(to="+12125550100", body="x", from_number=SENDER)

        with pytest.raises(AnswerLost) as raised:
            asyncio.run(scenario())
    assert raised.value.kind is ErrorKind.AMBIGUOUS


def _stats(base_url: str) -> dict:
    origin = base_url.removesuffix("/2010-04-01")
    with urllib.request.urlopen(f"{origin}/_stats") as response:
        return json.load(response)


def test_an_adaptive_window_finds_the_accounts_limit_instead_of_retrying_into_it() -> None:
    limited = SimulatorConfig(auth_token=TOKEN, concurrency_limit=5, latency_ms=20)
    with run_in_thread(limited) as url:
        window = AdaptiveWindow(ceiling=50)

        async def scenario() -> list[str]:
            async with _client(url, gate=window) as client:
                sends = [
                    client.create_message(to=f"+1212555{i:04d}", body="hi", from_number=SENDER)
                    for i in range(300)
                ]
                return [message.sid for message in await asyncio.gather(*sends)]

        sids = asyncio.run(scenario())
        stats = _stats(url)
    assert len(set(sids)) == 300 and stats["messages"] == 300  # each created exactly once
    assert stats["peak_concurrency"] <= 5
    assert window.throttled == stats["throttled"]  # the gate heard of every 429
    assert stats["throttled"] < 0.1 * stats["posts"]  # it settled under the limit
    assert window.window <= 6


def test_retry_after_is_waited_out_before_a_429_is_retried() -> None:
    # One request at a time, and the second is told to come back in 0.4 s.
    limited = SimulatorConfig(
        auth_token=TOKEN, concurrency_limit=1, retry_after_s=0.4, latency_ms=50
    )
    with run_in_thread(limited) as url:

        async def scenario() -> float:
            async with _client(url) as client:
                loop = asyncio.get_running_loop()
                start = loop.time()
                await asyncio.gather(
                    *(
                        client.create_message(to=f"+121255501{i:02d}", body="x", from_number=SENDER)
                        for i in range(2)
                    )
                )
                return loop.time() - start

        elapsed = asyncio.run(scenario())
        stats = _stats(url)
    assert stats["throttled"] >= 1 and stats["messages"] == 2
    assert elapsed >= 0.4


def test_retry_after_takes_seconds_or_an_http_date_and_is_capped() -> None:
    now = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
    assert _parse_retry_after("2", lambda: now) == 2.0
    assert _parse_retry_after("Thu, 26 Nov 2026 12:00:05 GMT", lambda: now) == 5.0
    assert _parse_retry_after("Thu, 26 Nov 2026 11:00:00 GMT", lambda: now) == 0.0
    assert _parse_retry_after("86400", lambda: now) == RETRY_AFTER_CAP_S
    assert _parse_retry_after("soon", lambda: now) is None
    assert _parse_retry_after(None) is None


def test_a_withheld_request_never_leaves_and_frees_its_place_in_the_window(base_url: str) -> None:
    window = AdaptiveWindow(ceiling=4)

    async def scenario() -> None:
        async with _client(base_url, gate=window) as client:
            await client.create_message(
                to="+12125550199", body="x", from_number=SENDER, may_send=lambda: False
            )

    before = _stats(base_url)["posts"]
    with pytest.raises(Withheld):
        asyncio.run(scenario())
    assert _stats(base_url)["posts"] == before
    assert window.in_flight == 0


def test_a_post_whose_permission_lapses_while_it_waits_for_a_connection_never_leaves() -> None:
    """The lease of a paused worker lapses between the check before a POST and its bytes
    (here: the only pooled connection is busy for a second): the POST is withheld, and the
    connection pool goes on working. Sent anyway, it would duplicate the message the run's
    new holder sends after finding none at Twilio."""
    slow = SimulatorConfig(auth_token=TOKEN, latency_ms=1000)
    with run_in_thread(slow) as url:

        async def scenario() -> list[object]:
            async with _client(url, max_connections=1) as client:
                loop = asyncio.get_running_loop()
                held_until = loop.time() + 0.4
                checks: list[float] = []

                def lease_held() -> bool:
                    checks.append(loop.time())
                    return loop.time() < held_until

                first = asyncio.create_task(
                    client.create_message(to="+12125550100", body="a", from_number=SENDER)
                )
                await asyncio.sleep(0.05)  # the first holds the only connection
                waiting = await asyncio.gather(
                    client.create_message(
                        to="+12125550101", body="b", from_number=SENDER, may_send=lease_held
                    ),
                    return_exceptions=True,
                )
                await first
                after = await client.create_message(to="+12125550102", body="c", from_number=SENDER)
                return [*waiting, after, checks]

        withheld, after, checks = asyncio.run(scenario())
        stats = Simulator(url).stats()
        messages = Simulator(url).messages()
    assert isinstance(withheld, Withheld), withheld
    assert len(checks) == 2 and checks[0] < checks[1]  # before the wait, and at the write
    assert sorted(m["to"] for m in messages.values()) == ["+12125550100", "+12125550102"]
    assert stats["posts"] == 2 and after.to == "+12125550102"


@pytest.mark.parametrize(
    ("fault", "post_kind", "get_kind", "raised"),
    [
        ("server_error_share", ErrorKind.AMBIGUOUS, ErrorKind.RETRYABLE, ApiError),
        ("reset_before_share", ErrorKind.AMBIGUOUS, ErrorKind.RETRYABLE, AnswerLost),
    ],
)
def test_a_post_that_may_have_been_processed_is_ambiguous_a_get_is_retryable(
    fault: str, post_kind: ErrorKind, get_kind: ErrorKind, raised: type[Exception]
) -> None:
    broken = SimulatorConfig(auth_token=TOKEN, **{fault: 1.0})
    with run_in_thread(broken) as url:

        async def scenario() -> list[BaseException]:
            async with _client(url, retry=RetryPolicy(max_retries=0)) as client:
                return await asyncio.gather(
                    client.create_message(to="+12125550100", body="x", from_number=SENDER),
                    client.fetch_message("SM" + "0" * 32),
                    return_exceptions=True,
                )

        post_error, get_error = asyncio.run(scenario())
        assert _stats(url)["messages"] == 0
    assert isinstance(post_error, raised) and isinstance(get_error, raised)
    assert post_error.kind is post_kind  # type: ignore[attr-defined]
    assert get_error.kind is get_kind  # type: ignore[attr-defined]


def test_an_unknown_account_is_a_configuration_error(base_url: str) -> None:
    async def scenario() -> None:
        client = TwilioClient(
            base_url=base_url, account_sid="ACnot-an-account", username=ACCOUNT, password=TOKEN
        )
        async with client:
            await client.fetch_account()

    with pytest.raises(ApiError) as raised:
        asyncio.run(scenario())
    assert (raised.value.code, raised.value.status) == (20404, 404)
    assert raised.value.kind is ErrorKind.CONFIGURATION


def test_answers_orjson_refuses_are_read_as_the_json_module_reads_them():
    """Answers are decoded by orjson; the few valid JSON texts it refuses (a byte-order
    mark, a lone surrogate in a body) still read as before, and non-JSON is None."""
    from smslink.twilio.client import _decode

    assert _decode(b'{"sid": "SM1", "num_segments": "1"}') == {"sid": "SM1", "num_segments": "1"}
    assert _decode(b'\xef\xbb\xbf{"sid": "SM1"}') == {"sid": "SM1"}
    assert _decode(b'{"body": "\\ud83d"}') == {"body": "\ud83d"}
    assert _decode(b"<html>Bad gateway</html>") is None
    assert _decode(b"") is None
