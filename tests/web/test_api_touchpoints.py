"""The touchpoint API over real HTTP: bearer tokens and page sessions (with their CSRF
header), create/read/change/copy/delete with problems by field in the one error shape,
the message counted as a send bills it, and a sample audience's columns."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import requests

from smslink.app import Config, open_app
from smslink.app.touchpoints import MAX_SAMPLE_BYTES
from smslink.domain.models import Role
from tests.web.site import ADMIN, MARKETER, Site
from tests.web.test_touchpoints import MESSAGE, add_connection

WELCOME = {
    "name": "welcome",
    "connection": "sim",
    "message": MESSAGE,
    "phone_column": "Mobile",
    "mapping": {"FirstName": "first_name", "City": "city"},
}


def bearer(site: Site, role: Role = Role.MARKETER) -> requests.Session:
    """A script's session: no cookie, a token of the marketer (or the administrator)."""
    with open_app(Config(database_url=f"sqlite:///{site.home / 'smslink.db'}")) as smslink:
        [user] = [u for u in smslink.users.list() if u.role is role]
        _, token = smslink.users.create_token(user.id, "ci")
    s = site.session()
    s.headers["Authorization"] = f"Bearer {token}"
    return s


@pytest.fixture
def api(site: Site, simulator: str) -> requests.Session:
    add_connection(site, simulator)
    return bearer(site)


def fields_of(answer: requests.Response) -> dict[str, str]:
    """The one error shape's problems, by field."""
    error = answer.json()["error"]
    return {p["field"]: p["message"] for p in error["problems"]}


def test_a_token_creates_reads_changes_and_deletes_a_touchpoint(
    site: Site, api: requests.Session
) -> None:
    created = api.post(site.url + "/api/touchpoints", json=WELCOME)

    assert created.status_code == 201
    body = created.json()
    assert body["placeholders"] == ["FirstName", "City"]
    assert (body["encoding"], body["segments"]) == ("GSM-7", 1)
    assert api.get(site.url + "/api/touchpoints/welcome").json()["mapping"] == WELCOME["mapping"]
    assert [t["name"] for t in api.get(site.url + "/api/touchpoints").json()] == ["welcome"]

    changed = api.put(site.url + "/api/touchpoints/welcome", json={"message": "Hi <FirstName>!"})

    assert changed.status_code == 200
    assert changed.json()["dropped"] == ["City"]
    assert changed.json()["mapping"] == {"FirstName": "first_name"}
    assert api.delete(site.url + "/api/touchpoints/welcome").status_code == 204
    assert api.get(site.url + "/api/touchpoints/welcome").status_code == 404
    assert api.get(site.url + "/api/touchpoints").json() == []


def test_every_problem_comes_back_at_once_by_field(site: Site, api: requests.Session) -> None:
    bad = {**WELCOME, "name": "", "connection": "nope", "phone_column": "", "mapping": {}}

    answer = api.post(site.url + "/api/touchpoints", json=bad)

    assert answer.status_code == 422
    assert answer.json()["error"]["kind"] == "invalid_input"
    problems = fields_of(answer)
    assert set(problems) == {
        "name",
        "connection",
        "phone_column",
        "mapping.FirstName",
        "mapping.City",
    }
    assert problems["connection"] == "no connection named 'nope'"
    remedy = answer.json()["error"]["problems"][3]["remedy"]
    assert remedy == {"action": "map_field", "args": {"placeholder": "FirstName"}}


def test_problems_come_in_the_callers_language_with_the_same_fields(
    site: Site, api: requests.Session
) -> None:
    too_many = {"message": " ".join(f"<P{i}>" for i in range(6))}

    english = api.post(site.url + "/api/touchpoints/inspect", json=too_many).json()
    german = api.post(
        site.url + "/api/touchpoints/inspect",
        json=too_many,
        headers={"Accept-Language": "de-DE,de;q=0.9"},
    ).json()
    refused = api.post(
        site.url + "/api/touchpoints",
        json={**WELCOME, "connection": "nope"},
        headers={"Accept-Language": "de"},
    ).json()["error"]

    assert [p["field"] for p in english["problems"]] == [p["field"] for p in german["problems"]]
    assert "at most 5" in english["problems"][0]["message"]
    assert "höchstens 5" in german["problems"][0]["message"]
    assert refused["kind"] == "invalid_input"  # the kind and field stay the caller's keys
    assert "nope" in refused["message"] and "no connection" not in refused["message"]


def test_a_taken_name_and_an_unknown_connection_are_problems_of_their_fields(
    site: Site, api: requests.Session
) -> None:
    api.post(site.url + "/api/touchpoints", json=WELCOME)

    again = api.post(site.url + "/api/touchpoints", json=WELCOME)
    moved = api.put(site.url + "/api/touchpoints/welcome", json={"connection": "elsewhere"})
    missing = api.put(site.url + "/api/touchpoints/nobody", json={"message": "Hi"})

    assert again.status_code == 422 and "already exists" in fields_of(again)["name"]
    assert moved.status_code == 422 and "elsewhere" in fields_of(moved)["connection"]
    assert missing.status_code == 404 and missing.json()["error"]["kind"] == "not_found"


def test_copy_takes_the_message_and_mapping_under_a_new_name(
    site: Site, api: requests.Session
) -> None:
    api.post(site.url + "/api/touchpoints", json=WELCOME)

    copied = api.post(site.url + "/api/touchpoints/welcome/copy", json={"name": "welcome 2"})
    taken = api.post(site.url + "/api/touchpoints/welcome/copy", json={"name": "welcome"})

    assert copied.status_code == 201
    assert {k: copied.json()[k] for k in WELCOME} == {**WELCOME, "name": "welcome 2"}
    assert taken.status_code == 422 and "already exists" in fields_of(taken)["name"]


def test_inspect_counts_the_way_a_send_bills(site: Site, api: requests.Session) -> None:
    def inspect(message: str) -> dict[str, object]:
        answer = api.post(site.url + "/api/touchpoints/inspect", json={"message": message})
        assert answer.status_code == 200, answer.text
        result: dict[str, object] = answer.json()
        return result

    plain = inspect("a" * 160)
    over = inspect("a" * 161)
    euro = inspect("a" * 159 + "€")  # an extension character is two septets
    emoji = inspect("Hi <FirstName> 🎉")
    six = inspect("<A><B><C><D><E><F>")

    assert (plain["encoding"], plain["segments"], plain["capacity"]) == ("GSM-7", 1, 160)
    assert (over["segments"], over["capacity"]) == (2, 306)
    assert (euro["units"], euro["segments"], euro["doubled"]) == (161, 2, ["€"])
    assert (emoji["encoding"], emoji["units"], emoji["characters"]) == ("UCS-2", 17, 16)
    assert emoji["placeholders"] == ["FirstName"] and emoji["ok"] is True
    assert emoji["forcing"] == [
        {"char": "🎉", "code": "U+1F389", "name": "PARTY POPPER", "count": 1, "replacement": None}
    ]
    assert emoji["parts"] == [
        {"text": "Hi <FirstName> ", "ucs2": False},
        {"text": "🎉", "ucs2": True},
    ]
    assert six["ok"] is False and six["placeholders"] == ["A", "B", "C", "D", "E", "F"]
    assert six["problems"][0]["field"] == "message"  # type: ignore[index]
    far_too_long = api.post(site.url + "/api/touchpoints/inspect", json={"message": "x" * 30_000})
    assert far_too_long.status_code == 422 and "message" in fields_of(far_too_long)


def test_a_curly_quote_is_named_with_what_to_type_instead(
    site: Site, api: requests.Session
) -> None:
    answer = api.post(
        site.url + "/api/touchpoints/inspect",
        json={"message": "It\u2019s \u201con\u201d \u2013 now"},
    )

    forcing = {f["char"]: f["replacement"] for f in answer.json()["forcing"]}

    assert forcing == {"\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-"}
    assert answer.json()["encoding"] == "UCS-2"


def test_columns_of_a_sample_in_any_delimiter_and_encoding(
    site: Site, api: requests.Session, tmp_path: Path
) -> None:
    folder = tmp_path / "tmp"
    folder.mkdir()
    before, tempfile.tempdir = tempfile.tempdir, str(folder)
    try:
        csv = api.post(
            site.url + "/api/audiences/columns",
            files={
                "file": (
                    "Kunden.csv",
                    "Handy;Vorname;Straße\n+4915112345678;Jörg;Hauptstr.\n".encode("cp1252"),
                )
            },
            data={"encoding": "cp1252", "placeholder": ["Vorname", "City"]},
        )
        jsonl = api.post(
            site.url + "/api/audiences/columns",
            files={
                "file": ("a.jsonl", b'{"phone": "+1212"}\n{"phone": "+1", "first_name": "Ada"}\n')
            },
            data={"placeholder": ["FirstName"]},
        )
    finally:
        tempfile.tempdir = before

    assert csv.status_code == 200, csv.text
    assert csv.json()["columns"] == ["Handy", "Vorname", "Straße"]
    assert (csv.json()["delimiter"], csv.json()["encoding"]) == (";", "cp1252")
    assert csv.json()["suggested_phone"] == "Handy"
    assert csv.json()["suggested"] == {"Vorname": "Vorname"}
    assert csv.json()["examples"]["Vorname"] == "Jörg"
    assert jsonl.json()["columns"] == ["phone", "first_name"]
    assert jsonl.json()["suggested"] == {"FirstName": "first_name"}
    assert list(folder.iterdir()) == []  # nothing of either file is kept


def test_a_sample_that_cannot_be_read_is_a_problem_of_the_file(
    site: Site, api: requests.Session
) -> None:
    url = site.url + "/api/audiences/columns"

    not_utf8 = api.post(url, files={"file": ("a.csv", "Prénom,Tél\n".encode("cp1252"))})
    sheet = api.post(url, files={"file": ("a.xlsx", b"PK")})
    no_file = api.post(url, data={"encoding": "utf-8"})
    too_big = api.post(url, files={"file": ("a.csv", b"a\n" * (MAX_SAMPLE_BYTES // 2 + 1))})
    cut = api.post(
        url,
        files={"file": ("a.csv", b'Phone,Note\n+1,"open quote\n')},
        data={"partial": "true"},
    )

    assert not_utf8.status_code == 422 and "not UTF-8" in fields_of(not_utf8)["file"]
    assert not_utf8.json()["error"]["remedy"] == {
        "action": "set_encoding",
        "args": {"encoding": "cp1252"},
    }
    assert "unknown audience format" in fields_of(sheet)["file"]
    assert no_file.status_code == 422 and "file" in fields_of(no_file)
    assert too_big.status_code == 422 and "larger than" in fields_of(too_big)["file"]
    assert cut.status_code == 200 and cut.json()["warning"] is None  # the start of a file


def test_a_page_session_needs_its_csrf_header_to_change_anything(
    site: Site, simulator: str
) -> None:
    add_connection(site, simulator)
    s = site.signed_in(MARKETER)
    token = site.csrf(s, "/touchpoints/new")

    without = s.post(site.url + "/api/touchpoints/inspect", json={"message": "Hi"})
    forged = s.post(site.url + "/api/touchpoints", json=WELCOME, headers={"X-CSRF-Token": "x"})
    made = s.post(site.url + "/api/touchpoints", json=WELCOME, headers={"X-CSRF-Token": token})

    assert without.status_code == 403 and without.json()["error"]["kind"] == "csrf"
    assert forged.status_code == 403
    assert made.status_code == 201
    assert s.get(site.url + "/api/touchpoints/welcome").status_code == 200  # reading needs none


def test_without_a_token_or_with_a_wrong_one_nothing_is_answered(site: Site) -> None:
    for headers in ({}, {"Authorization": "Bearer smslink_wrong"}):
        answer = requests.get(site.url + "/api/touchpoints", headers=headers, timeout=10)
        assert answer.status_code == 401
        assert answer.json()["error"]["kind"] == "not_signed_in"


def test_an_administrators_token_may_do_what_a_marketer_does(site: Site, simulator: str) -> None:
    add_connection(site, simulator)
    admin = bearer(site, Role.ADMIN)

    assert admin.post(site.url + "/api/touchpoints", json=WELCOME).status_code == 201
    assert site.signed_in(ADMIN).get(site.url + "/api/touchpoints").json()[0]["name"] == "welcome"


def test_the_openapi_document_describes_the_touchpoint_api(site: Site) -> None:
    spec = requests.get(site.url + "/openapi.json", timeout=10).json()
    paths = spec["paths"]

    assert {"get", "post"} <= set(paths["/api/touchpoints"])
    assert {"get", "put", "delete"} <= set(paths["/api/touchpoints/{name}"])
    inspect = paths["/api/touchpoints/inspect"]["post"]
    assert inspect["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "InspectIn"
    )
    columns = paths["/api/audiences/columns"]["post"]
    assert (
        "file" in columns["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]
    )
    assert "MessageInfoOut" in spec["components"]["schemas"]
