"""A connection's rules, by field, with every problem reported at once and no flag named."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smslink.domain.connection_rules import checked_connection, connection_problems
from smslink.domain.errors import InvalidInput
from smslink.domain.models import Connection

SID = "AC" + "a" * 32


def _connection(**overrides: object) -> Connection:
    fields: dict[str, object] = {
        "name": "prod",
        "account_sid": SID,
        "auth_token": "secret",
        "from_number": "+14155550123",
    }
    fields.update(overrides)
    return Connection(**fields)  # type: ignore[arg-type]


def test_a_good_connection_comes_back_normalised() -> None:
    checked = checked_connection(
        _connection(
            base_url=" https://api.twilio.com/2010-04-01/ ",
            region="de",
            max_segments_per_second=0,
        )
    )

    assert checked.base_url == "https://api.twilio.com/2010-04-01"
    assert checked.region == "DE"
    assert checked.max_segments_per_second is None  # 0 takes a cap away


def test_every_problem_is_reported_at_once_by_field() -> None:
    bad = _connection(
        name=" x",
        account_sid="AC1",
        auth_token="",
        from_number="not a sender!",
        messaging_service_sid="MGxyz",
        api_key_sid="SK1",
        base_url="http://example.com/2010-04-01",
        poll_interval_ms=50,
        poll_attempts=0,
        concurrency=0,
        region="UK",
        max_segments_per_second=float("nan"),
        request_timeout_s=0,
    )

    with pytest.raises(InvalidInput) as refused:
        checked_connection(bad)

    assert [p.field for p in refused.value.problems] == [
        "name",
        "account_sid",
        "auth_token",
        "from_number",
        "messaging_service_sid",
        "api_key_sid",
        "base_url",
        "poll_interval_ms",
        "poll_attempts",
        "concurrency",
        "region",
        "max_segments_per_second",
        "request_timeout_s",
    ]
    said = str(refused.value)
    assert "--" not in said  # the layers below the faces name fields, never flags
    assert "the United Kingdom is GB" in said


def test_a_sender_or_a_messaging_service_is_needed() -> None:
    problems, _ = connection_problems(_connection(from_number=None))

    assert [p.field for p in problems] == ["from_number"]
    assert connection_problems(
        _connection(from_number=None, messaging_service_sid="MG" + "b" * 32)
    ) == ([], _connection(from_number=None, messaging_service_sid="MG" + "b" * 32))


def test_the_token_may_be_left_out_when_it_is_not_being_set() -> None:
    problems, _ = connection_problems(_connection(auth_token=""), token_required=False)

    assert problems == []


@given(st.integers(min_value=-10_000, max_value=10_000))
def test_concurrency_is_accepted_exactly_from_1_to_1000(concurrency: int) -> None:
    problems, _ = connection_problems(_connection(concurrency=concurrency))

    assert (problems == []) == (1 <= concurrency <= 1000)
