"""Touchpoints through the front door: rules by field, updates that keep what still
applies, and a preview that is what a send would do."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from smslink.app import AlreadyExists, NotFound, Smslink
from smslink.app.touchpoints import MAX_SAMPLE_BYTES, TouchpointChanges, Touchpoints
from smslink.domain.errors import Action, InvalidInput
from smslink.domain.models import Touchpoint
from tests.app.conftest import connection, touchpoint


def test_an_unmapped_placeholder_is_a_problem_of_its_field_with_a_remedy(
    smslink: Smslink, base_url: str
) -> None:
    smslink.connections.add(connection(base_url))
    bad = touchpoint()
    bad.message = "Hi <Name> in <City>"

    with pytest.raises(InvalidInput) as refused:
        smslink.touchpoints.add(bad)

    (problem,) = refused.value.problems
    assert problem.field == "mapping.City"
    assert problem.remedy is not None and problem.remedy.action is Action.MAP_FIELD


def test_a_new_message_keeps_the_mappings_it_still_uses(smslink: Smslink, base_url: str) -> None:
    smslink.connections.add(connection(base_url))
    smslink.touchpoints.add(touchpoint())

    updated = smslink.touchpoints.update("hello", TouchpointChanges(message="Hello there"))

    assert updated.dropped == ("Name",) and updated.touchpoint.mapping == {}
    assert smslink.touchpoints.show("hello").message == "Hello there"
    with pytest.raises(NotFound):
        smslink.touchpoints.update("hello", TouchpointChanges(connection="nope"))


def test_preview_shows_the_first_messages_and_totals_of_the_whole_file(
    smslink: Smslink, base_url: str, tmp_path: Path
) -> None:
    smslink.connections.add(connection(base_url))
    smslink.touchpoints.add(touchpoint())
    audience = tmp_path / "a.csv"
    audience.write_text(
        "name,phone\nAnn,+12125550101\n,+12125550102\nCé,+12125550103\nDan,12\n",
        encoding="utf-8",
    )

    preview = smslink.touchpoints.preview("hello", audience, limit=1)

    assert [(r.record, r.to, r.body) for r in preview.rows] == [(1, "+12125550101", "Hi Ann!")]
    assert (preview.totals.records, preview.totals.messages, preview.totals.problem_count) == (
        4,
        2,
        2,
    )
    assert preview.totals.by_encoding == {"GSM-7": 2}


# -- what the web wizard asks of the application -------------------------------------


def test_inspect_counts_as_a_send_bills_and_names_what_forces_ucs2() -> None:
    info = Touchpoints.inspect("Hi <Name>, it\u2019s 20\u20ac off \U0001f389 <Name>")

    assert info.placeholders == ("Name",) and info.ok
    assert (info.encoding, info.segments) == ("UCS-2", 1)
    assert info.characters == 32 and info.units == 33  # the emoji is a surrogate pair
    assert [(f.code, f.replacement) for f in info.forcing] == [
        ("U+2019", "'"),
        ("U+1F389", None),
    ]
    assert info.parts()[1] == ("\u2019", True)
    assert "".join(text for text, _ in info.parts()) == info.message


def test_inspect_lists_every_placeholder_even_beyond_the_limit() -> None:
    info = Touchpoints.inspect("<A> <B> <C> <D> <E> <F> <A> a < b <3 <First Name>")

    assert info.placeholders == ("A", "B", "C", "D", "E", "F", "First Name")
    assert not info.ok and info.problems[0].field == "message"
    assert "at most 5" in info.problems[0].message


def test_inspect_gsm7_extension_characters_cost_two_septets() -> None:
    fits = Touchpoints.inspect("a" * 158 + "{")
    spills = Touchpoints.inspect("a" * 159 + "{")

    assert (fits.units, fits.segments, fits.doubled) == (160, 1, ("{",))
    assert (spills.units, spills.segments, spills.capacity) == (161, 2, 306)


def test_inspect_refuses_only_texts_far_beyond_any_message() -> None:
    too_long = Touchpoints.inspect("x" * 1601)
    assert not too_long.ok and too_long.segments == 11

    with pytest.raises(InvalidInput) as refused:
        Touchpoints.inspect("x" * 20_001)
    assert refused.value.problems[0].field == "message"


def test_problems_name_every_field_in_the_wizards_order(smslink: Smslink, base_url: str) -> None:
    smslink.connections.add(connection(base_url))
    smslink.touchpoints.add(touchpoint())
    draft = Touchpoint("hello", "nope", "Hi <Name> <City>", "", {"Name": "name"})

    problems = smslink.touchpoints.problems(draft, new=True)

    assert [p.field for p in problems] == ["name", "connection", "phone_column", "mapping.City"]
    assert "already exists" in problems[0].message
    assert smslink.touchpoints.problems(touchpoint(), new=False) == []


def test_copy_keeps_message_connection_and_mapping(smslink: Smslink, base_url: str) -> None:
    smslink.connections.add(connection(base_url))
    smslink.touchpoints.add(touchpoint())

    copied = smslink.touchpoints.copy("hello", "hello again")

    assert smslink.touchpoints.show("hello again") == copied
    assert (copied.message, copied.connection, copied.mapping) == (
        "Hi <Name>!",
        "sim",
        {"Name": "name"},
    )
    with pytest.raises(AlreadyExists):
        smslink.touchpoints.copy("hello", "hello again")


def test_sample_columns_read_like_a_send_and_suggest_the_mapping() -> None:
    data = "sep=;\r\nTel\u00e9fono;Vorname;Ciudad\r\n+34600000000;J\u00f6rg;Le\u00f3n\r\n"

    sample = Touchpoints.sample_columns(
        data.encode("cp1252"),
        "C:\\exports\\kunden.csv",
        encoding="cp1252",
        placeholders=("Vorname", "City"),
    )

    assert sample.name == "kunden.csv"
    assert sample.columns == ("Tel\u00e9fono", "Vorname", "Ciudad")
    assert (sample.delimiter, sample.encoding, sample.records) == (";", "cp1252", 1)
    assert sample.suggested_phone == "Tel\u00e9fono"  # accents aside, a telephone
    assert sample.suggested == {"Vorname": "Vorname"}
    assert sample.examples["Ciudad"] == "Le\u00f3n"


def test_a_sample_is_read_from_a_temporary_file_that_is_gone_afterwards(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    Touchpoints.sample_columns(b'{"phone": "+1"}\n', "a.jsonl")
    with pytest.raises(InvalidInput):
        Touchpoints.sample_columns(b"\xff\xfe\x00", "b.csv", encoding="ascii")

    assert list(tmp_path.iterdir()) == []


def test_a_sample_cut_off_mid_record_is_fine_when_it_is_only_the_start() -> None:
    start = b'phone,note\n+1,"a note that goes on\n'

    partial = Touchpoints.sample_columns(start, "a.csv", partial=True)
    whole = Touchpoints.sample_columns(start, "a.csv")

    assert partial.columns == whole.columns == ("phone", "note")
    assert partial.warning is None
    assert whole.warning is not None and "unclosed quote" in whole.warning


def test_a_sample_without_columns_is_a_problem_of_the_file() -> None:
    for data, name, expected in (
        (b"", "a.csv", "no header row"),
        (b"[1, 2]\n", "a.jsonl", "has no columns"),
        (b"a,b\n", "a.xlsx", "unknown audience format"),
        (b"x" * (MAX_SAMPLE_BYTES + 1), "a.csv", "at most"),
    ):
        with pytest.raises(InvalidInput) as refused:
            Touchpoints.sample_columns(data, name)
        assert refused.value.problems[0].field == "file"
        assert expected in refused.value.problems[0].message
