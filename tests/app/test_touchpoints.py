"""Touchpoints through the front door: rules by field, updates that keep what still
applies, and a preview that is what a send would do."""

from __future__ import annotations

from pathlib import Path

import pytest

from smslink.app import NotFound, Smslink
from smslink.app.touchpoints import TouchpointChanges
from smslink.domain.errors import Action, InvalidInput
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
