"""What Excel writes: .tsv, the `sep=` hint line, and which files came from Excel."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from smslink.audience.readers import (
    CSV_SUFFIXES,
    AudienceError,
    open_audience,
    scan_audience,
)
from tests.audience.files import read_all, write


def test_tsv_is_delimited_text_with_tabs(tmp_path: Path) -> None:
    assert ".tsv" in CSV_SUFFIXES
    # The header alone would vote for the comma; a .tsv is tab-separated whatever it holds.
    path = write(tmp_path, "a.tsv", "Phone\tName, full\n+14155550100\tSmith, Ann\n")
    with open_audience(path) as reader:
        assert (reader.columns, reader.delimiter) == (["Phone", "Name, full"], "\t")
        assert [r.values for r in reader] == [{"Phone": "+14155550100", "Name, full": "Smith, Ann"}]
    assert scan_audience(path).delimiter == "\t"


def test_a_single_column_tsv_keeps_commas(tmp_path: Path) -> None:
    path = write(tmp_path, "a.TSV", "Name\nSmith, Ann\n")
    assert read_all(path)[0].values == {"Name": "Smith, Ann"}


@pytest.mark.parametrize(
    ("hint", "delimiter"), [("sep=;", ";"), ("sep=,", ","), ("sep=\t", "\t"), ("SEP=|", "|")]
)
def test_excels_sep_line_sets_the_delimiter_and_is_skipped(
    tmp_path: Path, hint: str, delimiter: str
) -> None:
    d = delimiter
    note = {";": "a,b", ",": "a;b"}.get(d, "a;b,c")  # the other delimiters are data
    content = f"{hint}\r\nPhone{d}Name{d}Note\r\n+14155550100{d}Ann{d}{note}\r\n\r\n2{d}Bob{d}\r\n"
    path = write(tmp_path, "a.csv", content)
    with open_audience(path) as reader:
        assert (reader.columns, reader.delimiter, reader.sep_line) == (
            ["Phone", "Name", "Note"],
            delimiter,
            True,
        )
        records = list(reader)
    assert [(r.number, r.line) for r in records] == [(1, 3), (2, 5)]  # the sep line counts
    assert records[0].values == {"Phone": "+14155550100", "Name": "Ann", "Note": note}
    scan = scan_audience(path)
    assert (scan.records, scan.delimiter, scan.sep_line) == (2, delimiter, True)


def test_a_sep_line_after_a_bom(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", b"\xef\xbb\xbfsep=;\nPhone;Name\n1;Ann, Jr\n")
    assert read_all(path)[0].values == {"Phone": "1", "Name": "Ann, Jr"}


def test_the_sep_line_counts_in_error_lines(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", 'sep=;\nPhone;Name\n1;Ann\n2;"Bob\n3;Cy\n')
    with pytest.raises(AudienceError, match="unclosed quote on line 4"):
        scan_audience(path)
    path = write(tmp_path, "b.csv", 'sep=;\nPhone;"Name\n1;Ann\n')
    with pytest.raises(AudienceError, match=r"line 2: the header has an unclosed quote"):
        scan_audience(path)


@pytest.mark.parametrize("content", ["sep=;\n", "sep=;\n\n1;2\n"])
def test_a_sep_line_without_a_header(tmp_path: Path, content: str) -> None:
    with pytest.raises(AudienceError, match=r"has no header row"):
        scan_audience(write(tmp_path, "a.csv", content))


@pytest.mark.parametrize("hint", ['sep="', "sep=ab", "sep=", "sep=x"])
def test_a_malformed_sep_line_is_named(tmp_path: Path, hint: str) -> None:
    path = write(tmp_path, "a.csv", f"{hint}\nPhone\n1\n")
    with pytest.raises(AudienceError, match=r"^a\.csv: line 1 .*sep=;"):
        scan_audience(path)


def test_the_sep_line_is_not_looked_for_in_json_lines(tmp_path: Path) -> None:
    path = write(tmp_path, "a.jsonl", 'sep=;\n{"Phone": "1"}\n')
    scan = scan_audience(path)
    assert (scan.records, scan.problems, scan.sep_line) == (2, 1, False)


@pytest.mark.parametrize(
    ("name", "content", "encoding", "excel"),
    [
        ("a.csv", "Phone,Name\n1,Zoë\n".encode(), None, False),
        ("a.csv", b"\xef\xbb\xbf" + "Phone,Name\n1,Zoë\n".encode(), None, True),
        ("a.csv", b"\xef\xbb\xbf" + "Phone,Name\n1,Zoë\n".encode(), "utf-8", True),
        ("a.csv", "Phone,Name\n1,Zoë\n".encode(), "utf-8", False),
        ("a.txt", "Phone\tName\r\n1\tZoë\r\n".encode("utf-16"), None, True),
        ("a.txt", "Phone\tName\r\n1\tZoë\r\n".encode("utf-16-be"), "utf-16-be", True),
        ("a.csv", "Phone;Name\n1;Zoë\n".encode("cp1252"), "cp1252", True),
        ("a.jsonl", b"\xef\xbb\xbf" + '{"Phone": "1", "Name": "Zoë"}\n'.encode(), None, True),
        ("a.jsonl", '{"Phone": "1", "Name": "Zoë"}\n'.encode(), None, False),
    ],
)
def test_files_from_excel_are_told(
    tmp_path: Path, name: str, content: bytes, encoding: str | None, excel: bool
) -> None:
    path = write(tmp_path, name, content)
    scan = scan_audience(path, encoding)
    assert (scan.excel, scan.records, scan.columns) == (excel, 1, ("Phone", "Name"))
    with open_audience(path, encoding) as reader:
        assert reader.excel is excel
        assert next(iter(reader)).values == {"Phone": "1", "Name": "Zoë"}


def test_a_bom_under_an_explicit_utf16_byte_order_is_not_part_of_a_name(tmp_path: Path) -> None:
    path = write(
        tmp_path, "a.txt", codecs.BOM_UTF16_LE + "Phone\tName\n1\tAnn\n".encode("utf-16-le")
    )
    with open_audience(path, "utf-16-le") as reader:
        assert reader.columns == ["Phone", "Name"] and reader.excel


def test_the_delimiter_is_told_for_every_kind_of_file(tmp_path: Path) -> None:
    for name, content, delimiter in [
        ("a.csv", "Phone;Name\n1;Ann\n", ";"),
        ("b.txt", "Phone\tName\n1\tAnn\n", "\t"),
        ("c.csv", "Phone\n1\n", ","),
        ("d.jsonl", '{"Phone": "1"}\n', None),
    ]:
        with open_audience(write(tmp_path, name, content)) as reader:
            assert (reader.delimiter, reader.sep_line) == (delimiter, False)
