"""The opt-outs API over real HTTP: search by phone in any format and by sender, remove with
a reason (kept with the caller's name), and the removals listed."""

from __future__ import annotations

import requests

from tests.web.site import ADMIN, MARKETER, Site
from tests.web.test_api_connections import bearer
from tests.web.test_optouts import OTHER, PHONE, SENDER, SHOP, seed_optouts


def test_search_reads_phones_and_senders_as_typed(site: Site) -> None:
    seed_optouts(site)
    auth = bearer(site, MARKETER)
    url = site.url + "/api/optouts"

    everything = requests.get(url, headers=auth, timeout=10).json()
    by_phone = requests.get(url, params={"phone": "(212) 555-0101"}, headers=auth, timeout=10)
    by_sender = requests.get(url, params={"sender": "+1 500 555 0006"}, headers=auth, timeout=10)
    limited = requests.get(url, params={"limit": 1}, headers=auth, timeout=10).json()
    bad = requests.get(url, params={"phone": "call me"}, headers=auth, timeout=10)

    assert everything["total"] == 3 and len(everything["optouts"]) == 3
    assert {o["sender"] for o in by_phone.json()["optouts"]} == {SENDER, SHOP}
    assert {o["phone"] for o in by_sender.json()["optouts"]} == {PHONE, OTHER}
    first = by_sender.json()["optouts"][0]
    assert first["run_id"] in (7, 8) and first["created_at"].startswith("2026-11-20T09:30")
    assert (limited["total"], len(limited["optouts"])) == (3, 1)
    assert bad.status_code == 422
    assert [p["field"] for p in bad.json()["error"]["problems"]] == ["phone"]


def test_removal_needs_a_reason_and_is_kept_with_the_callers_name(site: Site) -> None:
    seed_optouts(site)
    auth = bearer(site, MARKETER)
    url = site.url + "/api/optouts"

    no_reason = requests.delete(url, json={"phone": PHONE, "reason": " "}, headers=auth, timeout=10)
    missing = requests.delete(url, json={"phone": PHONE}, headers=auth, timeout=10)
    assert no_reason.status_code == missing.status_code == 422
    assert no_reason.json()["error"]["problems"][0]["field"] == "reason"
    assert missing.json()["error"]["problems"][0]["field"] == "reason"

    one = requests.delete(
        url,
        json={"phone": "212-555-0101", "sender": SHOP, "reason": "replied START"},
        headers=auth,
        timeout=10,
    )
    rest = requests.delete(
        url, json={"phone": PHONE, "reason": "asked by phone"}, headers=auth, timeout=10
    )
    none_left = requests.delete(
        url, json={"phone": PHONE, "reason": "again"}, headers=auth, timeout=10
    )

    assert one.json() == {"phone": PHONE, "sender": SHOP, "removed": 1}
    assert rest.json() == {"phone": PHONE, "sender": None, "removed": 1}
    assert none_left.status_code == 404 and none_left.json()["error"]["kind"] == "not_found"
    assert requests.get(url, params={"phone": PHONE}, headers=auth, timeout=10).json() == {
        "total": 0,
        "optouts": [],
    }
    removals = requests.get(url + "/removals", headers=auth, timeout=10).json()
    assert [(r["sender"], r["reason"], r["removed_by"]) for r in removals] == [
        (SENDER, "asked by phone", "max"),
        (SHOP, "replied START", "max"),
    ]
    assert removals[0]["run_id"] == 7
    only_shop = requests.get(url + "/removals", params={"sender": SHOP}, headers=auth, timeout=10)
    assert [r["sender"] for r in only_shop.json()] == [SHOP]


def test_signed_in_callers_only(site: Site) -> None:
    seed_optouts(site)
    url = site.url + "/api/optouts"

    anonymous = requests.get(url, timeout=10)
    removal = requests.delete(url, json={"phone": PHONE, "reason": "x"}, timeout=10)
    admin = requests.get(url, headers=bearer(site, ADMIN), timeout=10)

    assert anonymous.status_code == removal.status_code == 401
    assert admin.status_code == 200 and admin.json()["total"] == 3
