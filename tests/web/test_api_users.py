"""The users and tokens API over real HTTP: administrators manage users, everyone their own
tokens; passwords and tokens write-only, a token in one answer only, a revoked or disabled
user's token refused, the last administrator kept."""

from __future__ import annotations

import requests

from tests.web.site import ADMIN, MARKETER, Site
from tests.web.test_api_connections import bearer
from tests.web.test_users import user_named


def test_an_administrator_lists_adds_and_changes_users(site: Site) -> None:
    auth = bearer(site)
    url = site.url + "/api/users"

    added = requests.post(
        url,
        json={"name": "mia", "role": "marketer", "password": "a long passphrase"},
        headers=auth,
        timeout=10,
    )

    assert added.status_code == 201, added.text
    mia = added.json()
    assert (mia["name"], mia["role"], mia["disabled"]) == ("mia", "marketer", False)
    assert "password" not in mia and "a long passphrase" not in added.text
    listed = requests.get(url, headers=auth, timeout=10).json()
    assert sorted(u["name"] for u in listed) == ["ada", "max", "mia"]
    assert site.signed_in(("mia", "a long passphrase"))

    promoted = requests.patch(
        f"{url}/{mia['id']}", json={"role": "admin"}, headers=auth, timeout=10
    )
    assert promoted.status_code == 200 and promoted.json()["role"] == "admin"
    disabled = requests.patch(
        f"{url}/{mia['id']}", json={"disabled": True}, headers=auth, timeout=10
    )
    assert disabled.json()["disabled"] is True
    reset = requests.patch(
        f"{url}/{mia['id']}",
        json={"disabled": False, "password": "another passphrase"},
        headers=auth,
        timeout=10,
    )
    assert reset.status_code == 200 and "another passphrase" not in reset.text
    assert site.signed_in(("mia", "another passphrase"))


def test_user_problems_come_back_by_field(site: Site) -> None:
    auth = bearer(site)
    url = site.url + "/api/users"
    max_ = user_named(site, MARKETER[0])

    short = requests.post(
        url, json={"name": "mia", "role": "marketer", "password": "short"}, headers=auth, timeout=10
    )
    taken = requests.post(
        url,
        json={"name": "max", "role": "marketer", "password": "x" * 12},
        headers=auth,
        timeout=10,
    )
    no_role = requests.post(
        url, json={"name": "mia", "role": "root", "password": "x" * 12}, headers=auth, timeout=10
    )
    extra = requests.patch(f"{url}/{max_.id}", json={"name": "maxi"}, headers=auth, timeout=10)
    missing = requests.patch(f"{url}/999", json={"disabled": True}, headers=auth, timeout=10)

    assert short.status_code == 422
    assert [p["field"] for p in short.json()["error"]["problems"]] == ["password"]
    assert taken.status_code == 409
    assert [p["field"] for p in taken.json()["error"]["problems"]] == ["name"]
    assert no_role.status_code == 422
    assert [p["field"] for p in no_role.json()["error"]["problems"]] == ["role"]
    assert extra.status_code == 422 and extra.json()["error"]["problems"][0]["field"] == "name"
    assert missing.status_code == 404


def test_the_last_administrator_is_kept(site: Site) -> None:
    auth = bearer(site)
    ada = user_named(site, ADMIN[0])
    url = f"{site.url}/api/users/{ada.id}"

    demoted = requests.patch(url, json={"role": "marketer"}, headers=auth, timeout=10)
    disabled = requests.patch(url, json={"disabled": True}, headers=auth, timeout=10)

    assert demoted.status_code == disabled.status_code == 422
    assert demoted.json()["error"]["problems"][0]["field"] == "role"
    assert disabled.json()["error"]["problems"][0]["field"] == "disabled"
    assert "administrator" in disabled.json()["error"]["message"]
    assert requests.get(site.url + "/api/users", headers=auth, timeout=10).status_code == 200


def test_users_are_for_administrators_only(site: Site) -> None:
    auth = bearer(site, MARKETER)
    ada = user_named(site, ADMIN[0])

    answers = [
        requests.get(site.url + "/api/users", headers=auth, timeout=10),
        requests.post(
            site.url + "/api/users",
            json={"name": "eve", "role": "admin", "password": "x" * 12},
            headers=auth,
            timeout=10,
        ),
        requests.patch(
            f"{site.url}/api/users/{ada.id}", json={"disabled": True}, headers=auth, timeout=10
        ),
    ]

    assert [a.status_code for a in answers] == [403, 403, 403]
    assert not user_named(site, ADMIN[0]).disabled


def test_a_token_is_in_its_creation_answer_only_and_stops_when_revoked(site: Site) -> None:
    auth = bearer(site, MARKETER)
    url = site.url + "/api/tokens"

    created = requests.post(url, json={"name": "export"}, headers=auth, timeout=10)

    assert created.status_code == 201
    new = created.json()
    token = new["token"]
    assert token.startswith(new["prefix"]) and new["active"] is True
    mine = {"Authorization": f"Bearer {token}"}
    listed = requests.get(url, headers=mine, timeout=10)
    assert listed.status_code == 200 and token not in listed.text
    assert [t["name"] for t in listed.json()] == ["tests", "export"]
    assert all("token" not in t for t in listed.json())

    revoked = requests.delete(f"{url}/{new['id']}", headers=auth, timeout=10)

    assert revoked.status_code == 200 and revoked.json()["active"] is False
    assert requests.get(url, headers=mine, timeout=10).status_code == 401
    again = requests.delete(f"{url}/{new['id']}", headers=auth, timeout=10)
    assert again.status_code == 200  # revoking twice changes nothing


def test_tokens_are_their_owners_and_administrators_see_and_revoke_anyones(site: Site) -> None:
    marketer, admin = bearer(site, MARKETER), bearer(site, ADMIN)
    url = site.url + "/api/tokens"
    ada, max_ = user_named(site, ADMIN[0]), user_named(site, MARKETER[0])
    admins_token = requests.get(url, headers=admin, timeout=10).json()[0]
    markets_token = requests.get(url, headers=marketer, timeout=10).json()[0]

    peek = requests.get(url, params={"user_id": ada.id}, headers=marketer, timeout=10)
    steal = requests.delete(f"{url}/{admins_token['id']}", headers=marketer, timeout=10)
    theirs = requests.get(url, params={"user_id": max_.id}, headers=admin, timeout=10)
    nobody = requests.get(url, params={"user_id": 999}, headers=admin, timeout=10)

    assert peek.status_code == 403
    assert steal.status_code == 404
    assert requests.get(url, headers=admin, timeout=10).status_code == 200  # still works
    assert [t["id"] for t in theirs.json()] == [markets_token["id"]]
    assert nobody.status_code == 404

    revoked = requests.delete(f"{url}/{markets_token['id']}", headers=admin, timeout=10)
    assert revoked.status_code == 200
    assert requests.get(url, headers=marketer, timeout=10).status_code == 401


def test_a_disabled_users_tokens_are_refused(site: Site) -> None:
    marketer, admin = bearer(site, MARKETER), bearer(site, ADMIN)
    max_ = user_named(site, MARKETER[0])

    requests.patch(
        f"{site.url}/api/users/{max_.id}", json={"disabled": True}, headers=admin, timeout=10
    )

    answer = requests.get(site.url + "/api/tokens", headers=marketer, timeout=10)
    assert answer.status_code == 401 and answer.json()["error"]["kind"] == "not_signed_in"
