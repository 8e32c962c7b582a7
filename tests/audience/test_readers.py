"""Streaming audience readers: CSV as Excel writes it, JSON Lines, and their errors."""

from __future__ import annotations

import json
import re
import tracemalloc
from pathlib import Path

import pytest

import smslink
from smslink.audience.readers import AudienceError, AudienceRecord, open_audience
from smslink.domain.errors import Action, Remedy
from smslink.domain.phone import PhoneError, normalize_phone
from smslink.domain.segments import count_segments
from smslink.domain.template import MissingValue, parse_template
from tests.audience.files import read_all, write

DEMO = Path(smslink.__file__).parent / "data" / "demo_audience.csv"


def test_csv_records_with_numbers_lines_and_values(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "Phone,FirstName\n+14155550100,Ann\n\n+14155550101,Bob\n")
    with open_audience(path) as reader:
        assert reader.columns == ["Phone", "FirstName"]
        records = list(reader)
    assert records == [
        AudienceRecord(1, 2, {"Phone": "+14155550100", "FirstName": "Ann"}),
        AudienceRecord(2, 4, {"Phone": "+14155550101", "FirstName": "Bob"}),
    ]


def test_quoted_fields_with_delimiters_and_newlines_keep_line_numbers(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "a.csv",
        'Phone,Note\r\n1,"two\r\nlines"\r\n2,"a, b"\r\n3,"say ""hi"""\r\n',
    )
    records = read_all(path)
    assert [(r.number, r.line) for r in records] == [(1, 2), (2, 4), (3, 5)]
    assert [r.values["Note"] for r in records] == ["two\r\nlines", "a, b", 'say "hi"']


def test_utf8_bom_is_not_part_of_the_first_column(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", b"\xef\xbb\xbfPhone,Name\n1,Zo\xc3\xab\n")
    with open_audience(path) as reader:
        assert reader.columns == ["Phone", "Name"]
        assert next(iter(reader)).values == {"Phone": "1", "Name": "Zoë"}


def test_semicolon_export_from_european_excel(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "Phone;City;Amount\n+4930231251;Köln;1,50\n")
    assert read_all(path)[0].values == {"Phone": "+4930231251", "City": "Köln", "Amount": "1,50"}


def test_tab_separated_text(tmp_path: Path) -> None:
    path = write(tmp_path, "a.txt", "Phone\tName\n1\tAnn, Jr\n")
    assert read_all(path)[0].values == {"Phone": "1", "Name": "Ann, Jr"}


def test_a_quoted_header_name_with_a_comma_does_not_fool_the_sniffer(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", '"Name, full";Phone\nAnn;1\n')
    assert read_all(path)[0].values == {"Name, full": "Ann", "Phone": "1"}


def test_single_column_file(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "Phone\n+14155550100\n")
    assert read_all(path)[0].values == {"Phone": "+14155550100"}


def test_excel_utf16_unicode_text_is_detected_by_its_bom(tmp_path: Path) -> None:
    path = write(tmp_path, "a.txt", "Phone\tName\r\n1\tŁukasz\r\n".encode("utf-16"))
    assert read_all(path)[0].values == {"Phone": "1", "Name": "Łukasz"}


def test_cp1252_works_with_an_explicit_encoding(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "Phone;Name;Price\n1;Jürgen;5 €\n".encode("cp1252"))
    assert read_all(path, "cp1252")[0].values == {"Phone": "1", "Name": "Jürgen", "Price": "5 €"}
    assert read_all(path, "latin-1")[0].values["Name"] == "Jürgen"


def test_a_decode_error_names_the_byte_the_line_and_the_fix(tmp_path: Path) -> None:
    path = write(tmp_path, "audience.csv", "Phone,Name\n1,Ann\n2,Jörg\n".encode("cp1252"))
    with pytest.raises(AudienceError) as info:
        read_all(path)
    assert str(info.value) == (
        "audience.csv is not UTF-8 (byte 0xF6 at line 3); "
        "re-save it as UTF-8 or read it as cp1252 (older Excel)"
    )
    assert info.value.remedy == Remedy(Action.SET_ENCODING, {"encoding": "cp1252"})


def test_a_decode_error_deep_in_a_large_file_has_the_right_line(tmp_path: Path) -> None:
    rows = "".join(f"{i},Name {i}\n" for i in range(20_000))
    path = write(tmp_path, "big.csv", ("Phone,Name\n" + rows + "x,\xe4\n").encode("latin-1"))
    with open_audience(path) as reader:
        iterator = iter(reader)
        for _ in range(20_000):
            next(iterator)
        with pytest.raises(AudienceError, match=r"byte 0xE4 at line 20002\)"):
            next(iterator)


def test_a_decode_error_with_an_explicit_encoding(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", b"Phone\n\x81\n")
    with pytest.raises(AudienceError, match=r"a.csv is not valid cp1252 \(byte 0x81 at line 2\)"):
        read_all(path, "cp1252")


def test_unknown_encoding(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "Phone\n1\n")
    with pytest.raises(AudienceError, match="unknown encoding 'klingon'"):
        read_all(path, "klingon")


@pytest.mark.parametrize("content", ["", "\n", "  \n1,2\n"])
def test_empty_header_is_an_error(tmp_path: Path, content: str) -> None:
    with pytest.raises(AudienceError, match=r"a\.csv has no header row"):
        read_all(write(tmp_path, "a.csv", content))


def test_duplicate_header_names_are_named(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "Phone,Name,Phone,City,Name\n")
    with pytest.raises(AudienceError, match="names Name, Phone more than once"):
        read_all(path)


def test_an_unnamed_column_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(AudienceError, match="column 2 of the header has no name"):
        read_all(write(tmp_path, "a.csv", "Phone,,City\n"))


def test_trailing_delimiters_from_excel_are_ignored(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "Phone;Name;\n1;Ann;\n;;\n2;Bob;\n")
    with open_audience(path) as reader:
        assert reader.columns == ["Phone", "Name"]
        assert [r.values for r in reader] == [
            {"Phone": "1", "Name": "Ann"},
            {"Phone": "2", "Name": "Bob"},
        ]


def test_a_row_with_more_fields_than_the_header_is_a_problem_record(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "Phone,Name\n1,Ann\n\n2,Smith, Bob\n3,Cy\n")
    records = read_all(path)
    assert [r.problem for r in records][::2] == [None, None]
    assert re.search(r"record 2 \(line 4\) has 3 fields but the header", records[1].problem)
    assert records[2].values == {"Phone": "3", "Name": "Cy"}


def test_short_rows_get_empty_values(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "Phone,Name,City\n1\n2,Bob\n")
    assert [r.values for r in read_all(path)] == [
        {"Phone": "1", "Name": "", "City": ""},
        {"Phone": "2", "Name": "Bob", "City": ""},
    ]


def test_header_names_are_trimmed(tmp_path: Path) -> None:
    with open_audience(write(tmp_path, "a.csv", " Phone , Name\n1,Ann\n")) as reader:
        assert reader.columns == ["Phone", "Name"]


def test_skip_resumes_after_n_records(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "Phone\n1\n\n2\n3\n4\n")
    with open_audience(path) as reader:
        assert reader.skip(2) == 2
        assert [(r.number, r.line, r.values["Phone"]) for r in reader] == [(3, 5, "3"), (4, 6, "4")]
    with open_audience(path) as reader:
        assert reader.skip(10) == 4
        assert list(reader) == []


def test_unknown_extension_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AudienceError, match=r"a.xlsx: unknown audience format '.xlsx'"):
        read_all(write(tmp_path, "a.xlsx", "x"))
    with pytest.raises(AudienceError, match="no such file"):
        read_all(tmp_path / "missing.csv")


def test_the_file_is_streamed_not_loaded(tmp_path: Path) -> None:
    row = "1," + "x" * 20_000 + "\n"
    path = write(tmp_path, "a.csv", "Phone,Note\n" + row * 500)  # 10 MB
    tracemalloc.start()
    try:
        with open_audience(path) as reader:
            count = sum(1 for _ in reader)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 500
    assert peak < 1_000_000


def test_jsonl_values_become_strings_and_columns_grow(tmp_path: Path) -> None:
    lines = [
        {"Phone": "+14155550100", "Name": "Ann", "Age": 31},
        {},
        {"Phone": 4155550101, "VIP": True, "Note": None, "Tags": ["a", "ü"], "Score": 1.5},
    ]
    text = json.dumps(lines[0]) + "\n\n" + json.dumps(lines[2], ensure_ascii=False) + "\n"
    path = write(tmp_path, "a.jsonl", text)
    with open_audience(path) as reader:
        records = iter(reader)
        first = next(records)
        assert reader.columns == ["Phone", "Name", "Age"]
        second = next(records)
        assert reader.columns == ["Phone", "Name", "Age", "VIP", "Note", "Tags", "Score"]
    assert (first.number, first.line) == (1, 1)
    assert first.values == {"Phone": "+14155550100", "Name": "Ann", "Age": "31"}
    assert (second.number, second.line) == (2, 3)
    assert second.values == {
        "Phone": "4155550101",
        "VIP": "true",
        "Note": "",
        "Tags": '["a", "ü"]',
        "Score": "1.5",
    }


def test_jsonl_keeps_unicode_line_separators_inside_strings(tmp_path: Path) -> None:
    path = write(tmp_path, "a.ndjson", '{"Note": "a\u2028b"}\r\n{"Note": "c"}\n')
    assert [r.values["Note"] for r in read_all(path)] == ["a\u2028b", "c"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"Phone": 1,}', r"line 2 is not valid JSON \(.* at column 13\)"),
        ('["+14155550100"]', "line 2 is a JSON list, not an object"),
    ],
)
def test_a_bad_jsonl_line_is_a_problem_record(tmp_path: Path, line: str, message: str) -> None:
    path = write(tmp_path, "a.jsonl", '{"Phone": "1"}\n' + line + '\n{"Phone": "3"}\n')
    records = read_all(path)
    assert [r.number for r in records] == [1, 2, 3]
    assert records[1].values == {} and re.search(message, records[1].problem)
    assert records[0].problem is None and records[2].values == {"Phone": "3"}


def test_jsonl_skip_still_learns_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "a.jsonl", '{"A": 1}\n{"B": 2}\n{"C": 3}\n')
    with open_audience(path) as reader:
        assert reader.skip(2) == 2
        assert reader.columns == ["A", "B"]
        assert [(r.number, r.values) for r in reader] == [(3, {"C": "3"})]


def test_the_demo_audience_shows_every_outcome() -> None:
    template = parse_template("Hi <FirstName>, your order ships today.")
    records = read_all(DEMO)
    assert 35 <= len(records) <= 45
    phones: dict[str, int] = {"ok": 0, "bad": 0}
    encodings: set[str] = set()
    missing = 0
    for record in records:
        try:
            normalize_phone(record.values["Phone"], "US")
            phones["ok"] += 1
        except PhoneError:
            phones["bad"] += 1
        try:
            encodings.add(count_segments(template.render(record.values)).encoding)
        except MissingValue:
            missing += 1
    assert phones["bad"] == 2
    assert missing == 1
    assert encodings == {"GSM-7", "UCS-2"}
    assert {"+15005550001", "+15005550002", "+15005550004"} <= {r.values["Phone"] for r in records}


def test_a_bad_jsonl_line_keeps_its_raw_content_in_the_problem(tmp_path: Path) -> None:
    long = '{"Phone": "+14155550100", "Note": "' + "x" * 500 + '"'  # no closing brace
    path = write(tmp_path, "a.jsonl", 'Phone=+1415\t5550101\n{"a": 1}\n' + long + "\n[1]\n")
    records = read_all(path)
    assert [r.values for r in records] == [{}, {"a": "1"}, {}, {}]
    assert records[0].problem.endswith("(the line reads: Phone=+1415\\t5550101)")
    problem = records[2].problem
    assert '(the line reads: {"Phone": "+14155550100", "Note": "xxx' in problem
    assert problem.endswith("x…)") and len(problem) < 400
    assert records[3].problem.endswith("(the line reads: [1])")


def test_a_jsonl_line_with_a_lone_carriage_return_is_old_mac_line_breaks(tmp_path: Path) -> None:
    path = write(tmp_path, "a.jsonl", '{"Phone": "1"}\r{"Phone": "2"}\r')
    with pytest.raises(AudienceError, match=r"a\.jsonl: line 1 .*carriage return.*Mac"):
        read_all(path)


def test_the_extra_values_of_a_long_row_are_named(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", 'Phone,Name\n1,Smith, Bob\n2,Ann,"x\ty",,\n3,a,' + "z" * 300)
    records = read_all(path)
    assert records[0].problem.endswith('(extra values: " Bob")')
    assert records[1].problem.endswith('(extra values: "x\\ty")')
    assert records[2].problem.endswith("z…)") and len(records[2].problem) < 400
