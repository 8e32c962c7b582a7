"""Opt-outs through the front door: phones and senders read as people type them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from smslink.app import Smslink
from smslink.app.optouts import read_sender
from smslink.domain.errors import InvalidInput
from smslink.domain.models import OptOut


def test_remove_reads_phones_and_senders_as_typed(smslink: Smslink) -> None:
    now = datetime.now(UTC)
    smslink._store.catalogue.add_optout(OptOut("+15005550006", "+12125550101", now))
    smslink._store.catalogue.add_optout(OptOut("My Shop", "+12125550101", now))

    assert [o.sender for o in smslink.optouts.list("+1 (500) 555-0006")] == ["+15005550006"]
    removal = smslink.optouts.remove("(212) 555-0101", "+1 500 555 0006")

    assert (removal.phone, removal.sender, removal.removed) == ("+12125550101", "+15005550006", 1)
    assert smslink.optouts.remove("+12125550101").removed == 1  # every other sender
    assert smslink.optouts.list() == []


@pytest.mark.parametrize(("typed", "kept"), [("12345", "12345"), ("My Shop", "My Shop")])
def test_short_codes_and_sender_ids_are_kept_as_given(typed: str, kept: str) -> None:
    assert read_sender(f" {typed} ") == kept


def test_a_phone_that_is_not_one_is_a_problem_of_its_field(smslink: Smslink) -> None:
    with pytest.raises(InvalidInput) as refused:
        smslink.optouts.remove("not a phone")

    assert [p.field for p in refused.value.problems] == ["phone"]
