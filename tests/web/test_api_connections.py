"""The connections API over real HTTP: administrators only, every setting in and out, the
token write-only, problems by field in the one error shape, and the Test against the
simulator."""

from __future__ import annotations

import requests

from smslink.domain.models import Touchpoint
from tests.web.conftest import TOKEN
from tests.web.site import ADMIN, MARKETER, Site
from tests.web.test_users import app_of

SID = "AC" + "d4" * 16


def bearer(site: Site, who: tuple[str, str] = ADMIN) -> dict[str, str]:
    """Authorization headers with a new API token of `who`."""
    with app_of(site) as app:
        [user] = [u for u in app.users.list() if u.name == who[0]]
        _, token = app.users.create_token(user.id, "tests")
    return {"Authorization": f"Bearer {token}"}


def _settings(base_url: str, **overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "name": "sim",
        "account_sid": SID,
        "auth_token": TOKEN,
        "from_number": "+15005550006",
        "base_url": base_url,
        "poll_interval_ms": 200,
        "poll_attempts": 5,
        "concurrency": 10,
        "region": "US",
    }
    body.update(overrides)
    return body


def test_a_connection_is_added_listed_tested_and_its_token_never_comes_back(
    site: Site, simulator: str
) -> None:
    auth = bearer(site)

    added = requests.post(
        site.url + "/api/connections", json=_settings(simulator), headers=auth, timeout=10
    )

    assert added.status_code == 201, added.text
    body = added.json()
    assert body["secret_set"] is True and "auth_token" not in body
    assert (body["name"], body["account_sid"], body["poll_attempts"]) == ("sim", SID, 5)
    assert body["max_segments_per_second"] is None and body["last_test"] is None
    listed = requests.get(site.url + "/api/connections", headers=auth, timeout=10)
    assert [c["name"] for c in listed.json()] == ["sim"] and TOKEN not in listed.text

    tested = requests.post(site.url + "/api/connections/sim/test", headers=auth, timeout=20)

    assert tested.status_code == 200
    result = tested.json()
    assert (result["ok"], result["outcome"], result["account_sid"]) == (True, "ok", SID)
    shown = requests.get(site.url + "/api/connections/sim", headers=auth, timeout=10).json()
    assert shown["last_test"]["ok"] is True and TOKEN not in str(shown)


def test_a_wrong_token_is_twilios_20003(site: Site, simulator: str) -> None:
    auth = bearer(site)
    requests.post(
        site.url + "/api/connections",
        json=_settings(simulator, auth_token="wrong"),
        headers=auth,
        timeout=10,
    )

    result = requests.post(site.url + "/api/connections/sim/test", headers=auth, timeout=20).json()

    assert (result["ok"], result["outcome"], result["code"]) == (False, "refused", 20003)


def test_every_problem_is_named_by_its_field(site: Site) -> None:
    auth = bearer(site)
    bad = _settings("http://example.com/2010-04-01", account_sid="AC1", concurrency=0)

    refused = requests.post(site.url + "/api/connections", json=bad, headers=auth, timeout=10)
    missing = requests.post(
        site.url + "/api/connections", json={"name": "x"}, headers=auth, timeout=10
    )
    typed = requests.post(
        site.url + "/api/connections",
        json=_settings("http://127.0.0.1:9", poll_attempts="many"),
        headers=auth,
        timeout=10,
    )
    not_json = requests.post(
        site.url + "/api/connections",
        data="{",
        headers={**auth, "Content-Type": "application/json"},
        timeout=10,
    )

    assert refused.status_code == 422
    error = refused.json()["error"]
    assert error["kind"] == "invalid_input"
    assert {p["field"] for p in error["problems"]} == {"account_sid", "base_url", "concurrency"}
    assert TOKEN not in refused.text
    assert missing.status_code == 422
    assert {p["field"] for p in missing.json()["error"]["problems"]} == {
        "account_sid",
        "auth_token",
    }
    assert [p["field"] for p in typed.json()["error"]["problems"]] == ["poll_attempts"]
    assert not_json.status_code == 422 and not_json.json()["error"]["kind"] == "invalid_input"
    assert requests.get(site.url + "/api/connections", headers=auth, timeout=10).json() == []


def test_put_replaces_the_settings_and_keeps_the_token_unless_given(
    site: Site, simulator: str
) -> None:
    auth = bearer(site)
    requests.post(
        site.url + "/api/connections",
        json=_settings(simulator, max_segments_per_second=3),
        headers=auth,
        timeout=10,
    )
    replacement = _settings(simulator, concurrency=7)
    del replacement["name"], replacement["auth_token"]

    replaced = requests.put(
        site.url + "/api/connections/sim", json=replacement, headers=auth, timeout=10
    )

    assert replaced.status_code == 200, replaced.text
    body = replaced.json()
    assert body["concurrency"] == 7 and body["max_segments_per_second"] is None  # omitted
    tested = requests.post(site.url + "/api/connections/sim/test", headers=auth, timeout=20)
    assert tested.json()["ok"] is True  # the token was kept

    with_token = {**replacement, "auth_token": "not it"}
    requests.put(site.url + "/api/connections/sim", json=with_token, headers=auth, timeout=10)
    tested = requests.post(site.url + "/api/connections/sim/test", headers=auth, timeout=20)
    assert tested.json()["code"] == 20003


def test_missing_taken_and_used_connections(site: Site, simulator: str) -> None:
    auth = bearer(site)
    url = site.url + "/api/connections"
    requests.post(url, json=_settings(simulator), headers=auth, timeout=10)
    with app_of(site) as app:
        app.touchpoints.add(Touchpoint("hello", "sim", "Hi <Name>", "phone", {"Name": "name"}))

    taken = requests.post(url, json=_settings(simulator), headers=auth, timeout=10)
    used = requests.delete(url + "/sim", headers=auth, timeout=10)
    missing = [
        requests.get(url + "/nope", headers=auth, timeout=10),
        requests.put(url + "/nope", json={"account_sid": SID}, headers=auth, timeout=10),
        requests.delete(url + "/nope", headers=auth, timeout=10),
        requests.post(url + "/nope/test", headers=auth, timeout=10),
    ]

    assert (taken.status_code, taken.json()["error"]["kind"]) == (409, "conflict")
    assert (used.status_code, used.json()["error"]["kind"]) == (409, "conflict")
    assert [m.status_code for m in missing] == [404] * 4
    assert all(m.json()["error"]["kind"] == "not_found" for m in missing)

    with app_of(site) as app:
        app.touchpoints.remove("hello")
    removed = requests.delete(url + "/sim", headers=auth, timeout=10)
    assert removed.status_code == 204 and removed.content == b""
    assert requests.get(url, headers=auth, timeout=10).json() == []


def test_a_name_with_a_slash_is_reachable(site: Site, simulator: str) -> None:
    auth = bearer(site)
    url = site.url + "/api/connections"
    requests.post(url, json=_settings(simulator, name="eu/prod"), headers=auth, timeout=10)

    shown = requests.get(url + "/eu%2Fprod", headers=auth, timeout=10)
    tested = requests.post(url + "/eu/prod/test", headers=auth, timeout=20)

    assert shown.status_code == 200 and shown.json()["name"] == "eu/prod"
    assert tested.json()["ok"] is True


def test_only_administrators_may_use_it(site: Site, simulator: str) -> None:
    url = site.url + "/api/connections"
    marketer = bearer(site, MARKETER)

    refused = [
        requests.get(url, headers=marketer, timeout=10),
        requests.post(url, json=_settings(simulator), headers=marketer, timeout=10),
        requests.delete(url + "/sim", headers=marketer, timeout=10),
    ]
    anonymous = requests.get(url, timeout=10)
    wrong = requests.get(url, headers={"Authorization": "Bearer smslink_nope"}, timeout=10)

    assert [r.status_code for r in refused] == [403] * 3
    assert refused[0].json()["error"]["kind"] == "forbidden"
    assert anonymous.status_code == wrong.status_code == 401
    assert anonymous.json()["error"]["kind"] == "not_signed_in"


def test_a_page_session_may_call_it_with_its_csrf_header(site: Site, simulator: str) -> None:
    s = site.signed_in(ADMIN)
    url = site.url + "/api/connections"

    without = s.post(url, json=_settings(simulator), timeout=10)
    csrf = site.csrf(s, "/connections/new")
    with_header = s.post(url, json=_settings(simulator), headers={"X-CSRF-Token": csrf}, timeout=10)

    assert without.status_code == 403 and without.json()["error"]["kind"] == "csrf"
    assert with_header.status_code == 201
    assert s.get(url, timeout=10).status_code == 200  # reading needs no header
