"""The connection pages over real HTTP: every setting, errors beside their field, a token
that never comes back, and the Test button against the simulator."""

from __future__ import annotations

import re

from tests.web.conftest import TOKEN
from tests.web.site import ADMIN, Site

SID = "AC" + "b0" * 16


def _settings(simulator: str, **overrides: str) -> dict[str, str]:
    values = {
        "name": "sim",
        "base_url": simulator,
        "account_sid": SID,
        "auth_token": TOKEN,
        "from_number": "+15005550006",
        "poll_interval_ms": "200",
        "poll_attempts": "5",
        "concurrency": "10",
        "region": "US",
    }
    values.update(overrides)
    return values


def test_a_connection_is_added_tested_and_its_token_never_comes_back(
    site: Site, simulator: str
) -> None:
    s = site.signed_in(ADMIN)

    added = site.post(s, "/connections/new", _settings(simulator), "/connections/new")
    assert added.status_code == 303
    page = s.get(site.url + added.headers["location"]).text
    assert TOKEN not in page and "The connection was added" in page

    tested = site.post(s, "/connections/sim/test", {}, "/connections/sim")
    assert "Success:" in tested.text and "is active" in tested.text
    listed = s.get(site.url + "/connections").text
    assert "passed" in listed and SID in listed and TOKEN not in listed


def test_a_wrong_token_shows_twilios_code_and_message(site: Site, simulator: str) -> None:
    s = site.signed_in(ADMIN)
    site.post(s, "/connections/new", _settings(simulator, auth_token="wrong"), "/connections/new")

    tested = site.post(s, "/connections/sim/test", {}, "/connections/sim")

    assert "Twilio refused: 20003: Authenticate" in tested.text
    assert "failed" in s.get(site.url + "/connections").text


def test_errors_are_shown_beside_their_fields_and_the_token_is_not_echoed(
    site: Site, simulator: str
) -> None:
    s = site.signed_in(ADMIN)
    bad = _settings(
        "http://example.com/2010-04-01", account_sid="AC1", concurrency="lots", auth_token="s3cr3t"
    )

    answer = site.post(s, "/connections/new", bad, "/connections/new")

    assert answer.status_code == 422
    for field in ("account_sid", "base_url", "concurrency"):
        assert re.search(rf'id="e-{field}"', answer.text), field
    assert "s3cr3t" not in answer.text  # the typed token is not sent back either
    assert "No connection yet" in s.get(site.url + "/connections").text


def test_an_edit_keeps_the_token_unless_a_new_one_is_typed(site: Site, simulator: str) -> None:
    s = site.signed_in(ADMIN)
    site.post(s, "/connections/new", _settings(simulator), "/connections/new")
    form = _settings(simulator, auth_token="", concurrency="7")
    form.pop("name")

    saved = site.post(s, "/connections/sim", form, "/connections/sim")

    assert saved.status_code == 303
    page = s.get(site.url + "/connections/sim").text
    assert 'value="7"' in page
    assert "Success:" in site.post(s, "/connections/sim/test", {}, "/connections/sim").text


def test_problems_are_shown_in_the_users_language(site: Site, simulator: str) -> None:
    s = site.signed_in(ADMIN)
    s.headers["Accept-Language"] = "de-DE,de;q=0.9"
    bad = _settings("http://example.com/2010-04-01", account_sid="AC1", concurrency="0")

    answer = site.post(s, "/connections/new", bad, "/connections/new")

    assert answer.status_code == 422
    assert "Basis URL" in answer.text and "Von-Nummer" in answer.text  # the guide's labels
    assert "&#39;AC1&#39; ist keine Account SID" in answer.text
    assert "verwendet unverschlüsseltes http" in answer.text
    assert "0 Anfragen gleichzeitig: 1 bis 1.000 angeben" in answer.text  # German numbers


def test_a_test_sms_shows_its_final_status(site: Site, simulator: str) -> None:
    s = site.signed_in(ADMIN)
    site.post(s, "/connections/new", _settings(simulator), "/connections/new")

    def send(to: str) -> str:
        return site.post(s, "/connections/sim/test-sms", {"to": to}, "/connections/sim").text

    delivered, refused, bad = send("(212) 555-0199"), send("+15005550001"), send("12")

    assert "The test SMS to +12125550199 was delivered." in delivered
    assert "ended error: 21211" in refused  # Twilio's magic invalid number
    assert 'id="e-to"' in bad and "not a valid phone number" in bad
