"""Status callbacks in the domain: the URL Twilio is given, what a callback says, and
which callback base URLs a connection may have."""

from __future__ import annotations

import pytest

from smslink.domain.base_url import check_callback_base_url
from smslink.domain.callbacks import (
    signed_url_candidates,
    status_callback_url,
    status_update,
)
from smslink.domain.connection_rules import connection_problems
from smslink.domain.models import Connection

SID = "AC" + "a" * 32


def test_the_status_callback_names_the_connection_and_asks_twilio_to_retry() -> None:
    url = status_callback_url("https://sms.example.com", "prod eu/1")
    assert url == "https://sms.example.com/twilio/status/prod%20eu%2F1#rc=5&rp=all"
    assert signed_url_candidates("https://sms.example.com", "prod eu/1") == (
        url,
        "https://sms.example.com/twilio/status/prod%20eu%2F1",
    )


def test_a_callback_form_becomes_an_update() -> None:
    update = status_update(
        {"MessageSid": "SM" + "1" * 32, "MessageStatus": "undelivered", "ErrorCode": "30003"}
    )
    assert update is not None
    assert (update.status, update.error_code, update.error_message) == (
        "undelivered",
        30003,
        "Unreachable destination handset",
    )
    # The older names of the same fields, and no error code at all.
    old = status_update({"SmsSid": "SM1", "SmsStatus": "delivered", "ErrorCode": ""})
    assert old is not None and (old.sid, old.status, old.error_code) == ("SM1", "delivered", None)


@pytest.mark.parametrize(
    "form",
    [
        {},
        {"MessageSid": "SM1"},
        {"MessageStatus": "sent"},
        {"MessageSid": "SM1; DROP TABLE", "MessageStatus": "sent"},
        {"MessageSid": "SM" + "1" * 200, "MessageStatus": "sent"},
        {"MessageSid": "SM1", "MessageStatus": "sent!"},
    ],
)
def test_what_is_not_a_status_update_is_none(form: dict[str, str]) -> None:
    assert status_update(form) is None


def test_callback_base_urls_follow_the_base_url_rules() -> None:
    assert check_callback_base_url(" https://sms.example.com/ ") == "https://sms.example.com"
    assert check_callback_base_url("http://127.0.0.1:8080") == "http://127.0.0.1:8080"
    for bad in ("http://sms.example.com", "https://u:p@sms.example.com", "https://x/?a=1", ""):
        with pytest.raises(ValueError):
            check_callback_base_url(bad)


def _connection(**overrides: object) -> Connection:
    fields: dict[str, object] = {
        "name": "prod",
        "account_sid": SID,
        "auth_token": "secret",
        "from_number": "+14155550123",
    }
    fields.update(overrides)
    return Connection(**fields)  # type: ignore[arg-type]


def test_a_connection_normalises_its_callback_base_url_and_empty_means_none() -> None:
    problems, c = connection_problems(_connection(callback_base_url="https://sms.example.com/"))
    assert problems == [] and c.callback_base_url == "https://sms.example.com"
    problems, c = connection_problems(_connection(callback_base_url="  "))
    assert problems == [] and c.callback_base_url is None


def test_callbacks_are_refused_for_plain_http_elsewhere_and_for_api_keys() -> None:
    problems, _ = connection_problems(_connection(callback_base_url="http://sms.example.com"))
    assert [p.field for p in problems] == ["callback_base_url"]
    assert "http" in problems[0].message

    api_key = _connection(api_key_sid="SK" + "b" * 32, callback_base_url="https://sms.example.com")
    problems, _ = connection_problems(api_key)
    assert [p.field for p in problems] == ["callback_base_url"]
    assert "API key" in problems[0].message
