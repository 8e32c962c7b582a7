"""prepare(): one audience record to a sendable delivery, or an error naming the fix."""

from __future__ import annotations

import pytest

from smslink.audience.readers import AudienceRecord
from smslink.domain.models import ResultStatus, Stage, Touchpoint
from smslink.engine.prepare import Recipe, prepare


@pytest.fixture
def recipe() -> Recipe:
    touchpoint = Touchpoint(
        name="t",
        connection="c",
        message="Hi <First Name>, code <Code>",
        phone_column="Mobile",
        mapping={"First Name": "first", "Code": "code"},
    )
    return Recipe.from_touchpoint(touchpoint, "GB")


def _record(**values: str) -> AudienceRecord:
    return AudienceRecord(number=7, line=8, values=values)


def test_a_good_record_is_pending_with_e164_body_and_segments(recipe: Recipe) -> None:
    delivery = prepare(3, 5, _record(first="Zoë", code="42", Mobile="07400 123456"), recipe)

    assert (delivery.run_id, delivery.seq, delivery.stage) == (3, 5, Stage.PENDING)
    assert delivery.to == "+447400123456"  # national GB number, the connection's region
    assert delivery.body == "Hi Zoë, code 42"
    assert delivery.segments == 1
    assert delivery.row == {"first": "Zoë", "code": "42", "Mobile": "07400 123456"}


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"first": "Ann", "code": "1", "Mobile": "12"}, "column 'Mobile': '12' is not a valid"),
        ({"first": "", "code": "1", "Mobile": "+447400123456"}, "column 'first' is empty"),
        ({"code": "1", "Mobile": "+447400123456"}, "column 'first' is empty"),
        ({"first": "x" * 1600, "code": "1", "Mobile": "+447400123456"}, "Twilio's limit is 1600"),
    ],
    ids=["bad-phone", "empty-value", "missing-column", "too-long"],
)
def test_a_bad_record_is_done_with_an_error_naming_column_and_fix(
    recipe: Recipe, values: dict[str, str], expected: str
) -> None:
    delivery = prepare(1, 0, _record(**values), recipe)

    assert (delivery.stage, delivery.status) == (Stage.DONE, ResultStatus.ERROR)
    assert expected in (delivery.error_message or "")
    assert delivery.updated_at is not None


def test_a_body_of_exactly_1600_characters_is_allowed(recipe: Recipe) -> None:
    name = "x" * (1600 - len("Hi , code 1"))
    delivery = prepare(1, 0, _record(first=name, code="1", Mobile="+447400123456"), recipe)

    assert delivery.stage is Stage.PENDING and len(delivery.body or "") == 1600
    assert delivery.segments == 11  # 1600 GSM-7 characters at 153 per segment


def test_a_malformed_record_keeps_the_readers_reason(recipe: Recipe) -> None:
    record = AudienceRecord(2, 3, {"Mobile": "+447400123456"}, problem="a.csv: record 2 ...")

    delivery = prepare(1, 1, record, recipe)

    assert delivery.status is ResultStatus.ERROR
    assert delivery.error_message == "a.csv: record 2 ..."
