"""smslink's Twilio client against the simulator over loopback HTTP, and its error grouping."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest

from smslink.simulator import SimulatorConfig, run_in_thread
from smslink.twilio import AnswerLost, ApiError, ConnectFailed, ErrorKind, TwilioClient

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
        ("+12125550100", "+15005550001", 21212, ErrorKind.CONFIGURATION),
        ("+12125550100", "+15005550007", 21606, ErrorKind.CONFIGURATION),
    ],
)
def test_api_errors_carry_twilio_code_and_what_to_do(
    base_url: str, to: str, from_number: str, code: int, kind: ErrorKind
) -> None:
    async def scenario() -> ApiError:
        async with _client(base_url) as client:
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
        async with _client(f"http://127.0.0.1:{port}/2010-04-01", max_retries=1) as client:
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
