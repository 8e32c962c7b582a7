"""A touchpoint's rules, by field: name, message, phone column and each placeholder."""

from __future__ import annotations

import pytest

from smslink.domain.errors import Action, InvalidInput
from smslink.domain.models import Touchpoint
from smslink.domain.touchpoint_rules import checked_touchpoint, touchpoint_problems


def test_a_complete_touchpoint_passes() -> None:
    touchpoint = Touchpoint("welcome", "prod", "Hi <FirstName>", "Phone", {"FirstName": "fn"})

    assert checked_touchpoint(touchpoint) is touchpoint


def test_problems_name_their_fields_and_the_remedy_for_an_unmapped_placeholder() -> None:
    touchpoint = Touchpoint("", "prod", "Hi <FirstName> in <City>", " ", {"Town": "t"})

    problems = touchpoint_problems(touchpoint)

    assert [p.field for p in problems] == [
        "name",
        "phone_column",
        "mapping.FirstName",
        "mapping.City",
        "mapping.Town",
    ]
    assert problems[2].remedy is not None and problems[2].remedy.action is Action.MAP_FIELD
    assert problems[2].remedy["placeholder"] == "FirstName"


def test_more_than_five_placeholders_is_a_problem_of_the_message() -> None:
    message = " ".join(f"<P{i}>" for i in range(6))

    with pytest.raises(InvalidInput) as refused:
        checked_touchpoint(Touchpoint("t", "c", message, "Phone", {}))

    assert [p.field for p in refused.value.problems] == ["message"]
    assert "at most 5" in str(refused.value)
