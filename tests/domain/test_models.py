"""Status ordering: a status only ever moves forward, and what polling reports at the end."""

from __future__ import annotations

import pytest

from smslink.domain.models import ResultStatus, advances, result_for_twilio_status


@pytest.mark.parametrize(
    ("current", "new", "moves"),
    [
        (None, "queued", True),
        ("queued", "sending", True),
        ("sending", "sent", True),
        ("sent", "delivered", True),
        ("accepted", "queued", True),
        ("sent", "sending", False),  # a late poll answer
        ("delivered", "sent", False),  # an out-of-order callback
        ("delivered", "undelivered", False),  # final statuses never change
        ("failed", "delivered", False),
        ("sent", "sent", False),
        ("sent", "some-new-status", False),  # unknown statuses never win
    ],
)
def test_advances_only_forward(current: str | None, new: str, moves: bool) -> None:
    assert advances(current, new) is moves


@pytest.mark.parametrize(
    ("twilio", "result"),
    [
        ("delivered", ResultStatus.DELIVERED),
        ("read", ResultStatus.DELIVERED),
        ("undelivered", ResultStatus.UNDELIVERED),
        ("failed", ResultStatus.FAILED),
        ("canceled", ResultStatus.FAILED),
        ("sent", ResultStatus.SENT),
        ("queued", ResultStatus.SENT),  # polling ran out: the original reports `sent`
    ],
)
def test_result_at_the_end_of_polling(twilio: str, result: ResultStatus) -> None:
    assert result_for_twilio_status(twilio) is result
