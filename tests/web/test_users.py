"""The users pages and My API tokens over real HTTP: who may see them, adding users,
roles, disabling, new passwords (and the sessions they end), the last administrator kept,
and tokens that are shown once, kept as hashes and refused once revoked."""

from __future__ import annotations

import base64
import hashlib
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from zoneinfo import ZoneInfo

import requests

from smslink.app import Config, Smslink, open_app
from smslink.domain.models import Role, User
from tests.web.site import ADMIN, MARKETER, Site

_SHOWN_TOKEN = re.compile(r"<code class=\"secret\" data-token>(smslink_[A-Za-z0-9_\-]+)</code>")


@contextmanager
def app_of(site: Site) -> Iterator[Smslink]:
    """The application over the running site's store, as a second process would open it."""
    with open_app(Config(database_url=f"sqlite:///{site.home / 'smslink.db'}")) as app:
        yield app


def user_named(site: Site, name: str) -> User:
    with app_of(site) as app:
        [user] = [u for u in app.users.list() if u.name == name]
        return user


def api(site: Site, token: str, path: str = "/api/tokens") -> requests.Response:
    return requests.get(site.url + path, headers={"Authorization": f"Bearer {token}"}, timeout=10)


def create_token(site: Site, s: requests.Session, name: str = "nightly") -> str:
    """Create a token on My API tokens; the token as the page shows it (once)."""
    created = site.post(s, "/tokens", {"name": name}, "/tokens")
    assert created.status_code == 303 and created.headers["location"] == "/tokens?created=1"
    page = s.get(site.url + created.headers["location"]).text
    found = _SHOWN_TOKEN.search(page)
    assert found, "the new token is not on the page"
    return found.group(1)


def test_the_users_pages_are_for_administrators_only(site: Site) -> None:
    marketer = site.signed_in(MARKETER)
    admin = site.signed_in(ADMIN)
    ada = user_named(site, ADMIN[0])

    for path in ("/users", f"/users/{ada.id}"):
        refused = marketer.get(site.url + path)
        assert refused.status_code == 403 and "for administrators" in refused.text
    forged = site.post(marketer, f"/users/{ada.id}/role", {"role": "marketer"}, "/tokens")
    assert forged.status_code == 403
    assert user_named(site, ADMIN[0]).role is Role.ADMIN
    assert 'href="/users"' not in marketer.get(site.url + "/tokens").text

    listed = admin.get(site.url + "/users")
    assert listed.status_code == 200
    assert "ada" in listed.text and "max" in listed.text and "Marketer" in listed.text
    anonymous = site.session().get(site.url + "/users", allow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/signin?next=/users"


def test_an_administrator_adds_a_user_who_can_sign_in_at_once(site: Site) -> None:
    admin = site.signed_in(ADMIN)
    form = {"name": "mia", "role": "marketer", "password": "a long passphrase"}

    added = site.post(admin, "/users", {**form, "password_again": form["password"]}, "/users")

    assert added.status_code == 303
    mia = user_named(site, "mia")
    assert added.headers["location"] == f"/users/{mia.id}?added=1"
    assert "The user was added" in admin.get(site.url + added.headers["location"]).text
    assert mia.role is Role.MARKETER and not mia.disabled
    assert site.signed_in(("mia", "a long passphrase")).get(site.url + "/tokens").status_code == 200


def test_adding_a_user_shows_each_problem_beside_its_field(site: Site) -> None:
    admin = site.signed_in(ADMIN)

    short = site.post(
        admin,
        "/users",
        {"name": "mia", "role": "marketer", "password": "short", "password_again": "short"},
        "/users",
    )
    differ = site.post(
        admin,
        "/users",
        {"name": "mia", "role": "marketer", "password": "a long one!", "password_again": "x"},
        "/users",
    )
    taken = site.post(
        admin,
        "/users",
        {
            "name": "max",
            "role": "admin",
            "password": "a long one!",
            "password_again": "a long one!",
        },
        "/users",
    )
    no_role = site.post(
        admin,
        "/users",
        {"name": "mia", "role": "root", "password": "a long one!", "password_again": "a long one!"},
        "/users",
    )

    assert short.status_code == 422 and 'id="e-password"' in short.text
    assert "at least 10" in short.text and 'value="mia"' in short.text  # the name is kept
    assert differ.status_code == 422 and 'id="e-password_again"' in differ.text
    assert (
        taken.status_code == 422 and 'id="e-name"' in taken.text and "already exists" in taken.text
    )
    assert no_role.status_code == 422 and 'id="e-role"' in no_role.text
    with app_of(site) as app:
        assert sorted(u.name for u in app.users.list()) == ["ada", "max"]


def test_a_form_without_its_csrf_token_changes_nothing(site: Site) -> None:
    admin = site.signed_in(ADMIN)
    max_ = user_named(site, MARKETER[0])

    for path, data in (
        ("/users", {"name": "eve", "role": "admin", "password": "x" * 12}),
        (f"/users/{max_.id}/disable", {}),
        (f"/users/{max_.id}/role", {"role": "admin"}),
        ("/tokens", {"name": "sneaky"}),
    ):
        refused = admin.post(site.url + path, data=data, allow_redirects=False)
        assert refused.status_code == 403 and "The form has expired" in refused.text, path

    assert user_named(site, MARKETER[0]) == max_
    with app_of(site) as app:
        assert len(app.users.list()) == 2 and app.users.tokens() == []


def test_a_role_change_applies_on_the_next_request(site: Site) -> None:
    admin = site.signed_in(ADMIN)
    marketer = site.signed_in(MARKETER)
    max_ = user_named(site, MARKETER[0])
    assert marketer.get(site.url + "/connections").status_code == 403

    promoted = site.post(admin, f"/users/{max_.id}/role", {"role": "admin"}, f"/users/{max_.id}")

    assert promoted.headers["location"] == f"/users/{max_.id}?saved=role"
    assert marketer.get(site.url + "/connections").status_code == 200  # same session
    site.post(admin, f"/users/{max_.id}/role", {"role": "marketer"}, f"/users/{max_.id}")
    assert marketer.get(site.url + "/connections").status_code == 403


def test_the_last_enabled_administrator_cannot_be_demoted_or_disabled(site: Site) -> None:
    admin = site.signed_in(ADMIN)
    ada, max_ = user_named(site, ADMIN[0]), user_named(site, MARKETER[0])
    page = f"/users/{ada.id}"

    demoted = site.post(admin, f"{page}/role", {"role": "marketer"}, page)
    disabled = site.post(admin, f"{page}/disable", {}, page)

    for refused, field in ((demoted, "role"), (disabled, "disabled")):
        assert refused.status_code == 409
        assert f'id="e-{field}"' in refused.text
        assert "last enabled administrator" in refused.text
    assert user_named(site, ADMIN[0]) == ada
    assert admin.get(site.url + "/users").status_code == 200  # still signed in, still admin

    # With a second administrator, the first may step down.
    site.post(admin, f"/users/{max_.id}/role", {"role": "admin"}, f"/users/{max_.id}")
    assert site.post(admin, f"{page}/role", {"role": "marketer"}, page).status_code == 303
    assert user_named(site, ADMIN[0]).role is Role.MARKETER
    assert admin.get(site.url + "/users").status_code == 403


def test_disabling_a_user_ends_their_session_and_stops_their_tokens(site: Site) -> None:
    admin = site.signed_in(ADMIN)
    marketer = site.signed_in(MARKETER)
    token = create_token(site, marketer)
    assert api(site, token).status_code == 200
    max_ = user_named(site, MARKETER[0])

    done = site.post(admin, f"/users/{max_.id}/disable", {}, f"/users/{max_.id}")

    assert done.headers["location"] == f"/users/{max_.id}?saved=disabled"
    assert "their sessions have ended" in admin.get(site.url + done.headers["location"]).text
    gone = marketer.get(site.url + "/tokens", allow_redirects=False)
    assert gone.status_code == 303 and gone.headers["location"].startswith("/signin")
    assert api(site, token).status_code == 401
    again = site.post(
        site.session(), "/signin", {"name": MARKETER[0], "password": MARKETER[1]}, "/signin"
    )
    assert again.status_code == 401
    assert "disabled" in admin.get(site.url + "/users").text

    site.post(admin, f"/users/{max_.id}/enable", {}, f"/users/{max_.id}")

    assert api(site, token).status_code == 200
    assert site.signed_in(MARKETER).get(site.url + "/tokens").status_code == 200


def test_a_new_password_ends_their_sessions_but_keeps_the_administrators_own(site: Site) -> None:
    admin = site.signed_in(ADMIN)
    marketer = site.signed_in(MARKETER)
    max_, ada = user_named(site, MARKETER[0]), user_named(site, ADMIN[0])
    new = {"password": "a new passphrase", "password_again": "a new passphrase"}

    differ = site.post(
        admin, f"/users/{max_.id}/password", {**new, "password_again": "nope"}, "/users"
    )
    short = site.post(
        admin, f"/users/{max_.id}/password", {"password": "x", "password_again": "x"}, "/users"
    )
    assert differ.status_code == 422 and 'id="e-password_again"' in differ.text
    assert short.status_code == 422 and 'id="e-password"' in short.text
    assert marketer.get(site.url + "/tokens", allow_redirects=False).status_code == 200

    reset = site.post(admin, f"/users/{max_.id}/password", new, "/users")

    assert reset.headers["location"] == f"/users/{max_.id}?saved=password"
    assert marketer.get(site.url + "/tokens", allow_redirects=False).status_code == 303
    assert site.signed_in(("max", new["password"])).get(site.url + "/tokens").status_code == 200

    own = site.post(admin, f"/users/{ada.id}/password", new, "/users")
    assert own.status_code == 303
    assert admin.get(site.url + "/users", allow_redirects=False).status_code == 200  # kept
    assert site.signed_in(("ada", new["password"])).get(site.url + "/users").status_code == 200


def test_a_token_is_shown_once_and_kept_only_as_a_hash(site: Site) -> None:
    marketer = site.signed_in(MARKETER)

    token = create_token(site, marketer, "nightly export")

    # The token never travelled in a cookie.
    for cookie in marketer.cookies:
        payload = (cookie.value or "").split(".")[0]
        decoded = base64.b64decode(payload + "=" * (-len(payload) % 4), altchars=b"-_")
        assert token.encode() not in decoded
    again = marketer.get(site.url + "/tokens").text
    assert token not in again and token[:12] in again  # the prefix tells it apart
    assert "nightly export" in again and "never" in again  # not used yet
    reloaded = marketer.get(site.url + "/tokens?created=1").text
    assert token not in reloaded and "shown once already" in reloaded
    with sqlite3.connect(site.home / "smslink.db") as db:
        rows = db.execute("SELECT * FROM api_tokens").fetchall()
        [(stored_hash,)] = db.execute("SELECT token_hash FROM api_tokens").fetchall()
    assert stored_hash == hashlib.sha256(token.encode()).hexdigest()
    assert not any(token in str(value) for row in rows for value in row)
    assert api(site, token).json()[0]["name"] == "nightly export"
    assert "never" not in marketer.get(site.url + "/tokens").text.split("Active tokens")[1]


def test_a_token_name_is_required(site: Site) -> None:
    s = site.signed_in(MARKETER)

    refused = site.post(s, "/tokens", {"name": "  "}, "/tokens")

    assert refused.status_code == 422 and 'id="e-name"' in refused.text
    assert "No active API token" in refused.text


def test_a_revoked_token_is_refused_and_only_its_owner_or_an_administrator_revokes_it(
    site: Site,
) -> None:
    admin = site.signed_in(ADMIN)
    marketer = site.signed_in(MARKETER)
    first, second = create_token(site, marketer, "first"), create_token(site, marketer, "second")
    admins = create_token(site, admin, "mine")
    max_ = user_named(site, MARKETER[0])
    with app_of(site) as app:
        ids = {t.name: t.id for t in app.users.tokens()}

    # A marketer cannot revoke someone else's token (it is not even found).
    theirs = site.post(marketer, f"/tokens/{ids['mine']}/revoke", {}, "/tokens")
    assert theirs.status_code == 404 and api(site, admins).status_code == 200

    own = site.post(marketer, f"/tokens/{ids['first']}/revoke", {}, "/tokens")
    assert own.headers["location"] == "/tokens?revoked=1"
    assert api(site, first).status_code == 401 and api(site, second).status_code == 200
    page = marketer.get(site.url + "/tokens").text
    assert "1 revoked token" in page

    # An administrator revokes it from the user's page.
    shown = admin.get(site.url + f"/users/{max_.id}").text
    assert "second" in shown and second not in shown
    by_admin = site.post(admin, f"/users/{max_.id}/tokens/{ids['second']}/revoke", {}, "/users")
    assert by_admin.headers["location"] == f"/users/{max_.id}?saved=revoked"
    assert api(site, second).status_code == 401
    assert api(site, admins).status_code == 200


def test_my_api_tokens_is_there_for_every_role(site: Site) -> None:
    for who in (ADMIN, MARKETER):
        page = site.signed_in(who).get(site.url + "/tokens")
        assert page.status_code == 200 and "My API tokens" in page.text
        assert "Create token" in page.text


def test_each_user_sees_dates_in_their_own_time_zone(site: Site) -> None:
    s = site.signed_in(MARKETER)
    create_token(s=s, site=site)
    utc_page = s.get(site.url + "/tokens").text
    created = user_named(site, MARKETER[0])
    with app_of(site) as app:
        [token] = app.users.tokens(created.id)
    utc_shown = token.created_at.astimezone(ZoneInfo("UTC")).strftime("%-I:%M")
    tokyo_shown = token.created_at.astimezone(ZoneInfo("Asia/Tokyo")).strftime("%-I:%M")

    saved = site.post(s, "/time-zone", {"time_zone": "Asia/Tokyo"}, "/tokens")
    tokyo_page = s.get(site.url + "/tokens").text
    refused = site.post(s, "/time-zone", {"time_zone": "Mars/Olympus_Mons"}, "/tokens")
    hostile = site.post(s, "/time-zone", {"time_zone": "../../etc/passwd"}, "/tokens")
    still = s.get(site.url + "/tokens").text
    other = site.signed_in(ADMIN).get(site.url + "/tokens").text

    assert utc_shown in utc_page
    assert saved.status_code == 303 and 'name="time_zone" value="Asia/Tokyo"' in tokyo_page
    assert tokyo_shown in tokyo_page
    assert refused.status_code == 422 and 'id="e-time-zone"' in refused.text
    assert "Mars/Olympus_Mons" in refused.text  # kept in the field to correct
    assert hostile.status_code == 422
    assert 'name="time_zone" value="Asia/Tokyo"' in still  # a refused zone changes nothing
    assert 'name="time_zone" value="Asia/Tokyo"' not in other  # each user has their own
    assert user_named(site, MARKETER[0]).time_zone == "Asia/Tokyo"
    cleared = site.post(s, "/time-zone", {"time_zone": ""}, "/tokens")
    assert cleared.status_code == 303 and user_named(site, MARKETER[0]).time_zone is None
