"""Reading a journey's request: whatever JSON arrives, the envelope is refused whole or
each record is read or rejected on its own, naming the field; a record's key does not
depend on the order of its identity fields."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smslink.domain.errors import InvalidInput
from smslink.domain.journeys import (
    MAX_RECORDS,
    REJECTED,
    JourneyRecord,
    RecordAnswer,
    check_idempotency_key,
    read_request,
    request_sha256,
)

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(JSON)
def test_any_json_is_refused_whole_or_answered_record_by_record(body: object) -> None:
    try:
        records = read_request(body)
    except InvalidInput as refused:
        assert refused.problems and refused.problems[0].field in ("body", "records")
        return
    expected = len(body["records"]) if isinstance(body, dict) and "records" in body else 1
    assert len(records) == expected
    for found in records:
        if isinstance(found, RecordAnswer):
            assert found.status == REJECTED and found.field and found.errormessage
            assert found.id is None
        else:
            assert found.identity and all(isinstance(v, str) for v in found.values.values())


@given(st.dictionaries(st.text(min_size=1).filter(str.strip), st.text(), min_size=2))
def test_the_identity_key_ignores_the_order_of_its_fields(identity: dict[str, str]) -> None:
    reordered = dict(reversed(list(identity.items())))
    assert JourneyRecord(identity, {}).identity_key == JourneyRecord(reordered, {}).identity_key


def test_values_become_text_and_bad_ones_name_their_field() -> None:
    [good] = read_request({"identity": {"id": 7}, "fields": {"n": 1.5, "b": True, "z": None}})
    assert isinstance(good, JourneyRecord)
    assert good.values == {"id": "7", "n": "1.5", "b": "true", "z": ""}
    answers = read_request(
        {
            "records": [
                {"identity": {}, "fields": {}},
                {"identity": {"id": "1"}, "fields": {"x": {"nested": 1}}},
                {"identity": {"id": "1"}, "fields": {"x": "a\x00b"}},
                {"identity": {"id": "1"}, "fields": {"x": "\ud800"}},
                {"identity": {"id": "1"}, "fields": {"id": "2"}},
                {"identity": {"id": "1"}, "extra": 1},
                {"identity": {"id": "1"}, "fields": {"x": "y" * 1601}},
            ]
        }
    )
    fields = [a.field for a in answers if isinstance(a, RecordAnswer)]
    assert fields == [
        "records[0].identity",
        "records[1].fields.x",
        "records[2].fields.x",
        "records[3].fields.x",
        "records[4].fields.id",
        "records[5].extra",
        "records[6].fields.x",
    ]


def test_the_envelope_is_refused_whole() -> None:
    for body in ([], "x", None, {"records": []}, {"records": "x"}, {"records": [], "x": 1}):
        with pytest.raises(InvalidInput):
            read_request(body)
    with pytest.raises(InvalidInput) as refused:
        read_request({"records": [{}] * (MAX_RECORDS + 1)})
    assert "501 records" in str(refused.value.problems[0].message)


def test_an_idempotency_key_is_printable_and_bounded() -> None:
    assert check_idempotency_key("abc") == "request:abc"
    for bad in ("", "k" * 256, "a\nb"):
        with pytest.raises(InvalidInput):
            check_idempotency_key(bad)


def test_a_request_fingerprint_tells_a_retry_from_other_records() -> None:
    one = read_request(json.loads('{"identity": {"a": "1", "b": "2"}, "fields": {"p": "x"}}'))
    same = read_request(json.loads('{"identity": {"b": "2", "a": "1"}, "fields": {"p": "x"}}'))
    other = read_request(json.loads('{"identity": {"a": "1", "b": "2"}, "fields": {"p": "y"}}'))
    assert request_sha256(one) == request_sha256(same) != request_sha256(other)
