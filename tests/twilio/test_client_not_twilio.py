"""Answers that are not Twilio's: a proxy's HTML page, another server's 404. They must never
pass for Twilio's verdict on a message (a 404 page is not "this recipient is invalid")."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from smslink.simulator import SimulatorConfig
from smslink.twilio import ApiError, ErrorKind, NotTwilio, TwilioClient
from smslink.twilio.client import RetryPolicy
from tests.outage import Outage, simulator_behind_proxy

ACCOUNT = "AC" + "c2000000000000000000000000000001"
TOKEN = "not-twilio-token"
SENDER = "+15005550006"


@pytest.fixture
def outage() -> Iterator[Outage]:
    with simulator_behind_proxy(SimulatorConfig(auth_token=TOKEN)) as proxy:
        yield proxy


def _client(outage: Outage) -> TwilioClient:
    return TwilioClient(
        base_url=outage.base_url,
        account_sid=ACCOUNT,
        username=ACCOUNT,
        password=TOKEN,
        retry=RetryPolicy(max_retries=2),
    )


def _create(outage: Outage) -> BaseException | None:
    async def scenario() -> BaseException | None:
        async with _client(outage) as client:
            try:
                await client.create_message(to="+12125550100", body="Hi", from_number=SENDER)
            except Exception as error:
                return error
        return None

    return asyncio.run(scenario())


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_proxy_5xx_page_to_a_post_may_have_reached_twilio(outage: Outage, status: int) -> None:
    outage.status = status

    error = _create(outage)

    assert isinstance(error, NotTwilio) and not isinstance(error, ApiError)
    assert error.kind is ErrorKind.AMBIGUOUS  # reconcile: never a record's final error
    assert error.status == status
    assert f"HTTP {status}" in str(error) and "HTML page" in str(error)
    assert f"{status} Bad Gateway" in str(error)  # the page's title says who answered
    assert outage.answered == {"POST": 1}  # a POST is never repeated blindly


@pytest.mark.parametrize("status", [400, 404, 405, 501])
def test_another_servers_error_page_to_a_post_is_a_configuration_problem(
    outage: Outage, status: int
) -> None:
    outage.status = status
    outage.body = "<html><title>Not Found</title>nothing here</html>"

    error = _create(outage)

    assert isinstance(error, NotTwilio)
    expected = ErrorKind.AMBIGUOUS if status >= 500 else ErrorKind.CONFIGURATION
    assert error.kind is expected
    assert "base URL" in str(error)


def test_a_proxy_5xx_page_to_a_get_is_retried_then_raised_as_retryable(outage: Outage) -> None:
    outage.status = 502

    async def scenario() -> BaseException:
        async with _client(outage) as client:
            with pytest.raises(NotTwilio) as caught:
                await client.fetch_message("SM" + "0" * 32)
            return caught.value

    error = asyncio.run(scenario())

    assert error.kind is ErrorKind.RETRYABLE
    assert outage.answered == {"GET": 3}  # the first try and two retries


def test_an_empty_or_plain_text_error_is_not_twilio_either(outage: Outage) -> None:
    outage.status = 404
    outage.body = ""
    outage.content_type = "text/plain"

    error = _create(outage)

    assert isinstance(error, NotTwilio) and "empty answer" in str(error)


def test_a_json_error_that_is_not_twilios_shape_is_not_twilio(outage: Outage) -> None:
    outage.status = 404
    outage.body = '{{"error": "no route"}}'
    outage.content_type = "application/json"

    error = _create(outage)

    assert isinstance(error, NotTwilio) and error.kind is ErrorKind.CONFIGURATION


def test_a_429_page_is_throttling_whoever_sent_it(outage: Outage) -> None:
    outage.status = 429

    error = _create(outage)

    assert isinstance(error, ApiError) and error.kind is ErrorKind.RETRYABLE
    assert outage.answered == {"POST": 3}  # never processed: retried


def test_twilios_own_error_json_is_still_its_verdict(outage: Outage) -> None:
    async def scenario() -> BaseException:
        async with _client(outage) as client:
            with pytest.raises(ApiError) as caught:
                await client.create_message(to="+15005550001", body="Hi", from_number=SENDER)
            return caught.value

    error = asyncio.run(scenario())

    assert error.code == 21211 and error.kind is ErrorKind.RECIPIENT


def test_a_title_with_control_characters_is_cleaned(outage: Outage) -> None:
    outage.status = 502
    outage.body = "<html><title>\x1b[2Jbad\x9b\ngateway</title></html>"

    error = _create(outage)

    assert "\x1b" not in str(error) and "\x9b" not in str(error)
    assert "bad gateway" in str(error)
