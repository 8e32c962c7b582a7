"""The opt-outs pages over real HTTP: search by phone in any format and by sender, remove
one with a reason, and the removal kept with who, when and why."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

from smslink.domain.models import OptOut
from tests.web.site import ADMIN, MARKETER, Site
from tests.web.test_users import app_of

SENDER = "+15005550006"
SHOP = "My Shop"
PHONE = "+12125550101"
OTHER = "+12125550199"
SINCE = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)


def seed_optouts(site: Site) -> None:
    with app_of(site) as app:
        catalogue = app._store.catalogue
        catalogue.add_optout(
            OptOut(SENDER, PHONE, SINCE, 7, message="Attempt to send to unsubscribed recipient")
        )
        catalogue.add_optout(OptOut(SHOP, PHONE, SINCE))
        catalogue.add_optout(OptOut(SENDER, OTHER, SINCE, 8))


def _rows(html: str) -> int:
    """Rows of the opt-outs table (the first table on the page)."""
    table = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return table.count("<tr>")


def test_an_empty_store_explains_where_optouts_come_from(site: Site) -> None:
    page = site.signed_in(MARKETER).get(site.url + "/optouts")

    assert page.status_code == 200
    assert "No opt-out yet" in page.text and "21610" in page.text
    assert "No opt-out has been removed yet" in page.text


def test_search_by_phone_in_any_format_and_by_sender(site: Site) -> None:
    seed_optouts(site)
    s = site.signed_in(MARKETER)

    everything = s.get(site.url + "/optouts").text
    by_phone = s.get(site.url + "/optouts", params={"phone": "(212) 555-0101"}).text
    by_both = s.get(site.url + "/optouts", params={"phone": "212.555.0101", "sender": SHOP}).text
    by_sender = s.get(site.url + "/optouts", params={"sender": SENDER}).text
    nobody = s.get(site.url + "/optouts", params={"phone": "+1 212 555 0150"}).text

    assert _rows(everything) == 3 and "3 opt-outs" in everything
    assert _rows(by_phone) == 2 and OTHER not in by_phone.split("Recently removed")[0]
    assert _rows(by_both) == 1 and SHOP in by_both
    assert _rows(by_sender) == 2 and 'href="/runs/7"' in by_sender and 'href="/runs/8"' in by_sender
    assert "Attempt to send to unsubscribed recipient" in by_sender
    assert "No opt-out matches" in nobody


def test_a_phone_that_is_not_one_is_shown_beside_its_field(site: Site) -> None:
    seed_optouts(site)
    s = site.signed_in(MARKETER)

    page = s.get(site.url + "/optouts", params={"phone": "call me"})

    assert page.status_code == 422
    assert 'id="e-phone"' in page.text and "not a valid phone number" in page.text
    assert 'value="call me"' in page.text  # kept as typed


def test_an_optout_is_removed_with_a_reason_and_the_removal_is_kept(site: Site) -> None:
    seed_optouts(site)
    s = site.signed_in(MARKETER)
    form_page = s.get(site.url + "/optouts/remove", params={"phone": PHONE, "sender": SENDER})
    assert form_page.status_code == 200 and "Reason" in form_page.text and "Run 7" in form_page.text

    no_reason = site.post(
        s, "/optouts/remove", {"phone": PHONE, "sender": SENDER, "reason": "  "}, "/optouts"
    )
    assert no_reason.status_code == 422 and 'id="e-reason"' in no_reason.text
    with app_of(site) as app:
        assert app.optouts.search(PHONE, SENDER).total == 1  # nothing removed yet

    removed = site.post(
        s,
        "/optouts/remove",
        {"phone": PHONE, "sender": SENDER, "reason": "replied START on 3 May"},
        "/optouts",
    )

    assert removed.status_code == 303 and removed.headers["location"] == "/optouts?removed=1"
    page = s.get(site.url + removed.headers["location"]).text
    assert "The opt-out was removed" in page
    kept = page.split("Recently removed")[1]
    assert PHONE in kept and "replied START on 3 May" in kept and MARKETER[0] in kept
    with app_of(site) as app:
        assert app.optouts.search(PHONE, SENDER).total == 0
        assert app.optouts.search(PHONE, SHOP).total == 1  # the other sender's stays
    with sqlite3.connect(site.home / "smslink.db") as db:
        [row] = db.execute(
            "SELECT phone, sender, run_id, removed_by, reason FROM optout_removals"
        ).fetchall()
    assert row == (PHONE, SENDER, 7, "max", "replied START on 3 May")

    again = site.post(
        s, "/optouts/remove", {"phone": PHONE, "sender": SENDER, "reason": "again"}, "/optouts"
    )
    assert again.status_code == 404 and "No such opt-out" in again.text


def test_removing_needs_the_forms_csrf_token_and_a_signed_in_user(site: Site) -> None:
    seed_optouts(site)
    s = site.signed_in(ADMIN)
    data = {"phone": PHONE, "sender": SENDER, "reason": "START"}

    forged = s.post(site.url + "/optouts/remove", data=data, allow_redirects=False)
    anonymous = site.session().post(site.url + "/optouts/remove", data=data, allow_redirects=False)

    assert forged.status_code == 403
    assert anonymous.status_code == 303
    with app_of(site) as app:
        assert app.optouts.search(PHONE, SENDER).total == 1
    page = site.session().get(site.url + "/optouts", allow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/signin")


def test_administrators_see_the_optouts_too(site: Site) -> None:
    seed_optouts(site)

    page = site.signed_in(ADMIN).get(site.url + "/optouts")

    assert page.status_code == 200 and _rows(page.text) == 3
