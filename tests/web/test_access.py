"""Who may do what on the pages, over real HTTP: the first administrator, sign-in and its
brake, sessions that end, roles, CSRF, and the headers every answer carries."""

from __future__ import annotations

from pathlib import Path

import requests

from smslink.app import Config, open_app
from smslink.domain.models import Role
from tests.web.site import ADMIN, MARKETER, Site, running_site


def test_the_first_start_asks_for_the_first_administrator(home: Path) -> None:
    with running_site(home, users=False) as site:
        s = site.session()
        assert s.get(site.url + "/", allow_redirects=True).url.endswith("/setup")
        short = site.post(
            s, "/setup", {"name": "ada", "password": "short", "password_again": "short"}, "/setup"
        )
        assert short.status_code == 422 and "at least 10" in short.text

        made = site.post(
            s, "/setup", {"name": "ada", "password": ADMIN[1], "password_again": ADMIN[1]}, "/setup"
        )

        assert made.status_code == 303 and made.headers["location"] == "/connections"
        assert s.get(site.url + "/connections").status_code == 200  # signed in as admin
        other = site.session()  # the setup page is gone once someone exists
        assert (
            other.get(site.url + "/setup", allow_redirects=False).headers["location"] == "/signin"
        )


def test_signing_in_and_out(site: Site) -> None:
    s = site.signed_in(MARKETER)
    assert "max" in s.get(site.url + "/runs").text

    site.post(s, "/signout", {}, "/runs")

    gone = s.get(site.url + "/runs", allow_redirects=False)
    assert gone.status_code == 303 and gone.headers["location"].startswith("/signin")


def test_a_wrong_password_is_refused_without_saying_which_part_was_wrong(site: Site) -> None:
    s = site.session()
    for name in ("ada", "nobody"):
        answer = site.post(s, "/signin", {"name": name, "password": "wrong wrong wrong"}, "/signin")
        assert answer.status_code == 401
        assert "The name or the password is wrong." in answer.text


def test_a_marketer_is_refused_the_administrators_pages(site: Site) -> None:
    s = site.signed_in(MARKETER)

    for path in ("/connections", "/connections/new"):
        answer = s.get(site.url + path)
        assert answer.status_code == 403 and "for administrators" in answer.text
    assert "/connections" not in s.get(site.url + "/runs").text.split("<main", 1)[0]


def test_a_form_without_its_csrf_token_is_refused(site: Site) -> None:
    s = site.signed_in(ADMIN)

    answer = s.post(site.url + "/connections/new", data={"name": "x"}, allow_redirects=False)
    forged = s.post(
        site.url + "/connections/new", data={"name": "x", "csrf": "guess"}, allow_redirects=False
    )

    assert answer.status_code == forged.status_code == 403
    assert "The form has expired" in answer.text


def test_a_reset_password_ends_the_sessions_issued_before(site: Site, home: Path) -> None:
    s = site.signed_in(MARKETER)
    assert s.get(site.url + "/runs").status_code == 200

    with open_app(Config(database_url=f"sqlite:///{home / 'smslink.db'}")) as smslink:
        [marketer] = [u for u in smslink.users.list() if u.role is Role.MARKETER]
        smslink.users.update(marketer.id, password="a brand new secret")

    assert s.get(site.url + "/runs", allow_redirects=False).status_code == 303


def test_every_answer_carries_the_security_headers(site: Site) -> None:
    answer = requests.get(site.url + "/signin", timeout=10)

    csp = answer.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["x-frame-options"] == "DENY"
    cookie = answer.headers.get("set-cookie", "")
    assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()
