"""The touchpoint pages over real HTTP: the wizard (Message, Next, Field mapping, Save)
with its counts and problems beside their fields, the list, edit, copy and delete, for a
marketer; the sample audience read without JavaScript and never kept; CSRF."""

from __future__ import annotations

import html
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from smslink.app.touchpoints import MAX_SAMPLE_BYTES
from tests.web.conftest import TOKEN
from tests.web.site import ADMIN, MARKETER, Site

SID = "AC" + "d4" * 16
MESSAGE = "Hi <FirstName>, your order ships to <City> today."


def add_connection(site: Site, simulator: str, name: str = "sim") -> None:
    """A connection, added by the administrator on its page."""
    s = site.signed_in(ADMIN)
    settings = {
        "name": name,
        "base_url": simulator,
        "account_sid": SID,
        "auth_token": TOKEN,
        "from_number": "+15005550006",
    }
    added = site.post(s, "/connections/new", settings, "/connections/new")
    assert added.status_code == 303, added.text


def wizard(
    site: Site, s: requests.Session, path: str = "/touchpoints/new", **fields: str
) -> requests.Response:
    """A step of the wizard at `path`, posted as its page would post it."""
    return site.post(s, path, fields, path)


def field_error(page: str, field_id: str) -> str:
    """The text of the error shown beside field `field_id` (e.g. "e-name"), or ""."""
    found = re.search(rf'id="{re.escape(field_id)}"[^>]*>([^<]*)<', page)
    return html.unescape(found.group(1)) if found else ""


def save_welcome(site: Site, s: requests.Session, name: str = "welcome") -> requests.Response:
    return wizard(
        site,
        s,
        step="save",
        name=name,
        connection="sim",
        message=MESSAGE,
        phone_column="Mobile",
        **{"mapping.FirstName": "first_name", "mapping.City": "city"},
    )


@pytest.fixture
def temp_dir(tmp_path: Path) -> Iterator[Path]:
    """Where the service (in this process) makes its temporary files during the test."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    before = tempfile.tempdir
    tempfile.tempdir = str(folder)
    try:
        yield folder
    finally:
        tempfile.tempdir = before


def test_a_marketer_runs_the_wizard_and_sees_the_touchpoint(site: Site, simulator: str) -> None:
    add_connection(site, simulator)
    s = site.signed_in(MARKETER)
    assert "No touchpoint yet" in s.get(site.url + "/touchpoints").text
    first = s.get(site.url + "/touchpoints/new").text
    assert '<option value="sim" selected>sim · +15005550006</option>' in first

    page2 = wizard(site, s, step="next", name="welcome", connection="sim", message=MESSAGE)

    assert page2.status_code == 200 and "Field mapping" in page2.text
    assert 'name="mapping.FirstName"' in page2.text and 'name="mapping.City"' in page2.text
    assert f'name="message" value="{html.escape(MESSAGE)}"' in page2.text  # carried
    saved = save_welcome(site, s)
    assert saved.status_code == 303
    assert saved.headers["location"] == "/touchpoints/welcome?added=1"
    shown = s.get(site.url + saved.headers["location"]).text
    assert "The touchpoint is saved" in shown
    assert 'href="/runs/new?touchpoint=welcome"' in shown
    assert re.search(r"&lt;City&gt;</span></td><td class=\"mono\">city</td>", shown)
    listed = s.get(site.url + "/touchpoints").text
    for expected in ("welcome", "sim", "Mobile", "Hi &lt;FirstName&gt;, your order ships"):
        assert expected in listed


def test_next_counts_the_message_and_shows_its_problems_beside_the_fields(
    site: Site, simulator: str
) -> None:
    add_connection(site, simulator)
    s = site.signed_in(MARKETER)
    six = "Hi <A> <B> <C> <D> <E> <F>, it\u2019s 😀"

    page = wizard(site, s, step="next", name=" spaced ", connection="gone", message=six)

    assert page.status_code == 422
    assert "at most 5 are allowed" in field_error(page.text, "e-message")
    assert "spaces at its start or end" in field_error(page.text, "e-name")
    assert "no connection named 'gone'" in field_error(page.text, "e-connection")
    assert '<li class="chip over">&lt;F&gt;</li>' in page.text  # the sixth is too many
    assert "<mark>\u2019</mark>" in page.text and "<mark>😀</mark>" in page.text
    assert 'data-slot="encoding">UCS-2<' in page.text
    assert "U+1F600" in page.text and "grinning face" in page.text
    assert html.escape(six) in page.text  # what was typed stays in the textarea


def test_the_counts_are_the_engines_without_javascript(site: Site, simulator: str) -> None:
    add_connection(site, simulator)
    s = site.signed_in(MARKETER)
    long_gsm = "x" * 150 + " <Name>"  # 157 characters: one GSM-7 segment

    gsm = wizard(site, s, step="back", name="n", connection="sim", message=long_gsm).text
    ucs2 = wizard(site, s, step="back", name="n", connection="sim", message=long_gsm + "🎉").text

    assert 'data-slot="segments" class="">1<' in gsm and "GSM-7" in gsm
    assert 'data-slot="segments" class="many">3<' in ucs2  # 159 UTF-16 units: 3 x 67
    assert 'data-slot="units">159<' in ucs2


def test_save_shows_the_mapping_problems_beside_their_fields(site: Site, simulator: str) -> None:
    add_connection(site, simulator)
    s = site.signed_in(MARKETER)

    page = wizard(
        site,
        s,
        step="save",
        name="welcome",
        connection="sim",
        message=MESSAGE,
        phone_column=" ",
        **{"mapping.FirstName": "first_name", "mapping.City": ""},
    )

    assert page.status_code == 422
    assert "phone number column is not set" in field_error(page.text, "e-phone_column")
    assert "<City> is mapped to an empty column name" in field_error(page.text, "e-map-2")
    assert field_error(page.text, "e-map-1") == ""
    assert 'value="first_name"' in page.text  # what was typed stays
    assert "No touchpoint yet" in s.get(site.url + "/touchpoints").text


def test_a_name_taken_meanwhile_is_shown_beside_the_name(site: Site, simulator: str) -> None:
    add_connection(site, simulator)
    s = site.signed_in(MARKETER)
    assert save_welcome(site, s).status_code == 303

    again = save_welcome(site, s)

    assert again.status_code == 422
    assert "already exists" in field_error(again.text, "e-name")


def test_back_keeps_the_mapping_and_next_shows_it_again(site: Site, simulator: str) -> None:
    add_connection(site, simulator)
    s = site.signed_in(MARKETER)
    typed = {"mapping.FirstName": "first_name", "mapping.City": "town"}

    back = wizard(
        site,
        s,
        step="back",
        name="w",
        connection="sim",
        message=MESSAGE,
        phone_column="Mobile",
        **typed,
    )
    assert 'name="mapping.City" value="town"' in back.text
    assert 'name="phone_column" value="Mobile"' in back.text
    fewer = MESSAGE.replace("<City>", "Berlin")

    page2 = wizard(
        site,
        s,
        step="next",
        name="w",
        connection="sim",
        message=fewer,
        phone_column="Mobile",
        **typed,
    )

    assert 'id="f-map-1" name="mapping.FirstName" value="first_name"' in page2.text
    assert "mapping.City" not in page2.text.split('data-wizard="mapping"', 1)[1]


def test_edit_changes_the_message_and_the_mapping(site: Site, simulator: str) -> None:
    add_connection(site, simulator)
    s = site.signed_in(MARKETER)
    save_welcome(site, s)
    edit = s.get(site.url + "/touchpoints/welcome/edit").text
    assert html.escape(MESSAGE) in edit and 'name="mapping.City" value="city"' in edit
    assert 'id="f-name"' not in edit  # the name is not editable

    saved = wizard(
        site,
        s,
        "/touchpoints/welcome/edit",
        step="save",
        connection="sim",
        message="Hello <Name>!",
        phone_column="Phone",
        **{"mapping.Name": "first_name", "mapping.City": "city"},  # City: no longer used
    )

    assert saved.status_code == 303
    assert saved.headers["location"] == "/touchpoints/welcome?saved=1"
    shown = s.get(site.url + "/touchpoints/welcome").text
    assert "Hello &lt;Name&gt;!" in shown and "&lt;City&gt;" not in shown
    assert '<td class="mono">Phone</td>' in shown


def test_copy_makes_a_touchpoint_with_the_same_message_and_mapping(
    site: Site, simulator: str
) -> None:
    add_connection(site, simulator)
    s = site.signed_in(MARKETER)
    save_welcome(site, s)
    form = s.get(site.url + "/touchpoints/welcome/copy").text
    assert 'value="welcome copy"' in form

    taken = site.post(s, "/touchpoints/welcome/copy", {"name": "welcome"}, "/touchpoints")
    copied = site.post(s, "/touchpoints/welcome/copy", {"name": "welcome 2"}, "/touchpoints")

    assert taken.status_code == 422 and "already exists" in field_error(taken.text, "e-name")
    assert copied.status_code == 303
    assert copied.headers["location"] == "/touchpoints/welcome%202?copied=1"
    shown = s.get(site.url + copied.headers["location"]).text
    assert html.escape(MESSAGE) in shown and '<td class="mono">first_name</td>' in shown


def test_delete_asks_first_and_removes_it(site: Site, simulator: str) -> None:
    add_connection(site, simulator)
    s = site.signed_in(MARKETER)
    save_welcome(site, s)
    listed = s.get(site.url + "/touchpoints").text
    assert 'action="/touchpoints/welcome/delete"' in listed and "data-confirm=" in listed

    refused = s.post(site.url + "/touchpoints/welcome/delete", allow_redirects=False)
    assert refused.status_code == 403  # no CSRF token
    deleted = site.post(s, "/touchpoints/welcome/delete", {}, "/touchpoints")

    assert deleted.status_code == 303 and deleted.headers["location"] == "/touchpoints?removed=1"
    assert "The touchpoint was deleted" in s.get(site.url + deleted.headers["location"]).text
    assert s.get(site.url + "/touchpoints/welcome").status_code == 404


def test_a_sample_read_without_javascript_fills_the_choices_and_is_not_kept(
    site: Site, simulator: str, temp_dir: Path
) -> None:
    add_connection(site, simulator)
    s = site.signed_in(MARKETER)
    sample = "sep=;\nMobile;First Name;Town\n+12125550101;Ada;Berlin\n".encode("cp1252")
    fields = {
        "csrf": site.csrf(s, "/touchpoints/new"),
        "step": "columns",
        "name": "w",
        "connection": "sim",
        "message": MESSAGE,
        "encoding": "cp1252",
    }

    page = s.post(
        site.url + "/touchpoints/new",
        data=fields,
        files={"sample": ("audience.csv", sample, "text/csv")},
    )

    assert page.status_code == 200
    assert "3 columns read from audience.csv" in page.text
    assert '<option value="Town" label="e.g. Berlin"></option>' in page.text
    assert 'id="f-phone" name="phone_column" value="Mobile"' in page.text  # suggested
    assert 'name="mapping.FirstName" value="First Name"' in page.text
    assert 'name="mapping.City" value=""' in page.text  # nothing named like it
    assert list(temp_dir.iterdir()) == []  # read and gone


def test_a_sample_that_cannot_be_read_says_why_beside_the_file(site: Site, simulator: str) -> None:
    add_connection(site, simulator)
    s = site.signed_in(MARKETER)
    fields = {"csrf": site.csrf(s, "/touchpoints/new"), "step": "columns", "message": MESSAGE}

    wrong = s.post(
        site.url + "/touchpoints/new", data=fields, files={"sample": ("a.xlsx", b"PK\x03\x04")}
    )
    none = s.post(site.url + "/touchpoints/new", data=fields)
    huge = s.post(
        site.url + "/touchpoints/new",
        data=fields,
        files={"sample": ("a.csv", b"a\n" * (MAX_SAMPLE_BYTES // 2 + 40_000))},
    )

    assert wrong.status_code == 422
    assert "unknown audience format '.xlsx'" in field_error(wrong.text, "e-file")
    assert "Choose a sample audience file first" in field_error(none.text, "e-file")
    assert huge.status_code == 413 and "The sample is too large" in huge.text


def test_a_name_with_a_slash_and_markup_works_and_is_shown_as_text(
    site: Site, simulator: str
) -> None:
    add_connection(site, simulator)
    s = site.signed_in(MARKETER)
    name = "spring/<b>sale</b>"

    saved = save_welcome(site, s, name=name)

    assert saved.status_code == 303
    shown = s.get(site.url + saved.headers["location"])
    assert shown.status_code == 200
    assert "spring/&lt;b&gt;sale&lt;/b&gt;" in shown.text and "<b>sale</b>" not in shown.text
    assert s.get(site.url + "/touchpoints/spring/%3Cb%3Esale%3C/b%3E/edit").status_code == 200


def test_without_a_connection_the_page_explains_and_administrators_get_a_link(site: Site) -> None:
    marketer = site.signed_in(MARKETER)
    admin = site.signed_in(ADMIN)

    for_marketer = marketer.get(site.url + "/touchpoints/new").text
    for_admin = admin.get(site.url + "/touchpoints/new").text

    assert "There is no connection yet" in for_marketer
    assert "Ask an administrator" in for_marketer and "/connections/new" not in for_marketer
    assert 'href="/connections/new"' in for_admin
    assert "/connections/new" in admin.get(site.url + "/touchpoints").text  # the empty list


def test_the_pages_need_a_signed_in_user_and_a_csrf_token(site: Site, simulator: str) -> None:
    anonymous = site.session()
    gone = anonymous.get(site.url + "/touchpoints/new", allow_redirects=False)
    assert gone.status_code == 303 and gone.headers["location"].startswith("/signin")
    add_connection(site, simulator)
    s = site.signed_in(MARKETER)

    forged = s.post(
        site.url + "/touchpoints/new",
        data={"step": "save", "name": "x", "connection": "sim", "message": "Hi", "csrf": "no"},
        allow_redirects=False,
    )

    assert forged.status_code == 403 and "The form has expired" in forged.text
    assert "No touchpoint yet" in s.get(site.url + "/touchpoints").text
