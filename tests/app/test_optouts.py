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


def _three(smslink: Smslink) -> None:
    day = datetime(2026, 11, 20, tzinfo=UTC)
    catalogue = smslink._store.catalogue
    catalogue.add_optout(OptOut("+15005550006", "+12125550101", day, 4))
    catalogue.add_optout(OptOut("My Shop", "+12125550101", day))
    catalogue.add_optout(OptOut("+15005550006", "+12125550102", day, 5))


def test_search_by_phone_and_sender_counts_beyond_its_limit(smslink: Smslink) -> None:
    _three(smslink)

    everything = smslink.optouts.search()
    by_phone = smslink.optouts.search("(212) 555-0101")
    by_both = smslink.optouts.search("212 555 0101", "+1 (500) 555-0006")
    first = smslink.optouts.search(limit=1)

    assert (everything.total, len(everything.optouts)) == (3, 3)
    assert {o.sender for o in by_phone.optouts} == {"+15005550006", "My Shop"}
    assert (by_both.phone, by_both.sender, by_both.total) == ("+12125550101", "+15005550006", 1)
    assert (first.total, len(first.optouts)) == (3, 1)
    assert smslink.optouts.senders() == ["+15005550006", "My Shop"]


def test_a_search_names_every_field_it_cannot_read(smslink: Smslink) -> None:
    with pytest.raises(InvalidInput) as refused:
        smslink.optouts.search("call me", "+1 (500)")

    assert [p.field for p in refused.value.problems] == ["phone", "sender"]


def test_a_removal_is_kept_with_who_when_and_why(smslink: Smslink) -> None:
    _three(smslink)

    removal = smslink.optouts.remove(
        "(212) 555-0101", "+15005550006", reason=" replied START ", by="max"
    )
    everywhere = smslink.optouts.remove("+12125550102", reason="asked", by="ada")

    assert (removal.removed, everywhere.removed) == (1, 1)
    latest, earlier = smslink.optouts.removals()
    assert (latest.phone, latest.removed_by, latest.reason, latest.run_id) == (
        "+12125550102",
        "ada",
        "asked",
        5,
    )
    assert (earlier.sender, earlier.reason, earlier.opted_out_at) == (
        "+15005550006",
        "replied START",
        datetime(2026, 11, 20, tzinfo=UTC),
    )
    assert earlier.removed_at <= latest.removed_at
    assert [r.phone for r in smslink.optouts.removals("212-555-0101")] == ["+12125550101"]
    assert smslink.optouts.removals(sender="My Shop") == []
    assert smslink.optouts.search().total == 1  # My Shop's stays


def test_the_command_lines_removal_without_a_reason_is_kept_too(smslink: Smslink) -> None:
    _three(smslink)

    smslink.optouts.remove("+12125550101")  # every sender, as `optouts remove` does

    kept = smslink.optouts.removals()
    assert sorted(r.sender for r in kept) == ["+15005550006", "My Shop"]
    assert all(r.removed_by is None and r.reason is None for r in kept)


@pytest.mark.parametrize("reason", ["", "   ", "x" * 501, "line\x1b[2J", "bidi\u202e"])
def test_a_reason_that_cannot_be_kept_is_refused_and_nothing_is_removed(
    smslink: Smslink, reason: str
) -> None:
    _three(smslink)

    with pytest.raises(InvalidInput) as refused:
        smslink.optouts.remove("+12125550101", "My Shop", reason=reason, by="max")

    assert [p.field for p in refused.value.problems] == ["reason"]
    assert smslink.optouts.search().total == 3 and smslink.optouts.removals() == []
