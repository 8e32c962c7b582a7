"""Records are never silently merged or split: quotes, limits and bytes that would do it stop.

Each structural problem must stop a send before anything is stored (`scan_audience`) and
also stop the streaming reader (`open_audience`), which reads the file again while sending.
"""

from __future__ import annotations

import hashlib
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

from smslink.audience.readers import (
    MAX_FIELD_CHARS,
    MAX_FIELD_LINES,
    MAX_LINE_CHARS,
    AudienceError,
    AudienceRecord,
    check_decodable,
    file_digest,
    open_audience,
    scan_audience,
)
from smslink.domain.errors import Action, Remedy
from tests.audience.files import read_all, write

HEADER = "id,Name,City,Phone"


def read_until_error(path: Path) -> tuple[list[AudienceRecord], AudienceError]:
    """The records the streaming reader yields before it stops, and why it stopped."""
    records: list[AudienceRecord] = []
    with pytest.raises(AudienceError) as info, open_audience(path) as reader:
        records.extend(reader)
    return records, info.value


def numbered(count: int) -> list[str]:
    """Lines of the hostile trial's audience: record i is on line i + 2."""
    return [HEADER] + [f"{i},Name{i},Berlin,+1212557{i:04d}" for i in range(count)]


def thousand_with_unclosed_quote_on_line_5(tmp_path: Path) -> Path:
    lines = numbered(1000)
    lines[4] = '3,"Name3 (VIP,Berlin,+12125570003'
    return write(tmp_path, "audience.csv", "\n".join(lines) + "\n")


def big_file(path: Path, parts: list[tuple[str, int]]) -> Path:
    """Write (text, repeat) parts without building the whole content in memory."""
    with path.open("w", encoding="utf-8", newline="") as file:
        for text, repeat in parts:
            for _ in range(repeat):
                file.write(text)
    return path


def scan_error(path: Path) -> AudienceError | None:
    try:
        scan_audience(path)
    except AudienceError as error:
        return error
    return None


def peak_memory(action: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# --- The hostile trial: an unclosed quote on line 5 of 1,000 records --------------------------


def test_scan_refuses_the_unclosed_quote_on_line_5(tmp_path: Path) -> None:
    path = thousand_with_unclosed_quote_on_line_5(tmp_path)
    with pytest.raises(AudienceError) as info:
        scan_audience(path)
    message = str(info.value)
    assert message.startswith("audience.csv: unclosed quote on line 5")
    assert "end of the file" in message and "line 1001" in message
    assert "close the quote" in message and "remove it" in message
    assert "\n" not in message


def test_streaming_the_unclosed_quote_stops_after_the_records_before_it(tmp_path: Path) -> None:
    path = thousand_with_unclosed_quote_on_line_5(tmp_path)
    records, error = read_until_error(path)
    assert [r.line for r in records] == [2, 3, 4]
    assert max(len(v) for r in records for v in r.values.values()) < 100
    assert "unclosed quote on line 5" in str(error)


def test_skipping_over_the_unclosed_quote_stops_too(tmp_path: Path) -> None:
    path = thousand_with_unclosed_quote_on_line_5(tmp_path)
    with open_audience(path) as reader, pytest.raises(AudienceError, match="line 5"):
        reader.skip(10)


def test_check_decodable_refuses_it_as_well(tmp_path: Path) -> None:
    with pytest.raises(AudienceError, match="unclosed quote on line 5"):
        check_decodable(thousand_with_unclosed_quote_on_line_5(tmp_path))


def test_an_unclosed_quote_in_the_last_record(tmp_path: Path) -> None:
    lines = numbered(10)
    lines[-1] = '9,Name9,"Berlin,+12125570009'
    path = write(tmp_path, "a.csv", "\r\n".join(lines))  # no line break at the end either
    with pytest.raises(AudienceError, match=r"^a\.csv: unclosed quote on line 11\b"):
        scan_audience(path)
    records, error = read_until_error(path)
    assert len(records) == 9 and "line 11" in str(error)


def test_an_escaped_quote_at_the_end_leaves_the_quote_open(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", 'Phone,Note\n1,ok\n2,"says ""hi""\n3,x\n')
    with pytest.raises(AudienceError, match="unclosed quote on line 3"):
        scan_audience(path)


def test_the_quote_is_named_where_it_opened_not_where_the_record_started(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", 'Phone,Address,Note\n1,"a\nb","never closed\n2,x,y\n')
    with pytest.raises(AudienceError, match=r"unclosed quote on line 3\b"):
        scan_audience(path)


# --- Quotes that close far too late ---------------------------------------------------------


def test_a_stray_quote_closing_30_lines_later_swallowed_records(tmp_path: Path) -> None:
    lines = numbered(60)
    lines[4] = '3,"Name3 (VIP,Berlin,+12125570003'
    lines[34] = '33,Ann "the boss" Lee,Berlin,+12125570033'  # its first quote closes line 5's
    path = write(tmp_path, "a.csv", "\n".join(lines) + "\n")
    with pytest.raises(AudienceError) as info:
        scan_audience(path)
    message = str(info.value)
    assert message.startswith("a.csv: line 5: the quote opened there closes only on line 35")
    assert "line 6" in message and "close the quote on line 5 or remove it" in message
    records, error = read_until_error(path)
    assert [r.line for r in records] == [2, 3, 4] and str(error) == message


def test_a_stray_quote_swallowing_a_single_record(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "a.csv",
        'Phone,Name,City\n1,"Ann,Berlin\n2,"Bob",Paris\n3,Cy,Rome\n',
    )
    with pytest.raises(
        AudienceError, match=r"line 2: the quote opened there closes only on line 3"
    ):
        scan_audience(path)


def test_a_stray_quote_closing_cleanly_after_many_records(tmp_path: Path) -> None:
    lines = numbered(20)
    lines[4] = '3,"Name3 (VIP,Berlin,+12125570003'
    lines[12] = '11,TV 55",Berlin,+12125570011'  # a quote followed by the delimiter
    path = write(tmp_path, "a.csv", "\n".join(lines) + "\n")
    with pytest.raises(
        AudienceError, match=r"line 5: the quote opened there closes only on line 13"
    ):
        scan_audience(path)


def test_multiline_quoted_addresses_are_still_records(tmp_path: Path) -> None:
    content = (
        "Phone,Name,Address,Note\r\n"
        '+14155550100,Ann,"Acme Corp\r\n12 Main St, Suite 4\r\nSpringfield, IL 62701",vip\r\n'
        '+14155550101,Bob,"1 Elm St\r\nApt 2\r\nBoston, MA",\r\n'
        "+14155550102,Cy,,\r\n"
    )
    path = write(tmp_path, "a.csv", content)
    scan = scan_audience(path)
    assert scan.records == 3
    records = read_all(path)
    assert [(r.number, r.line) for r in records] == [(1, 2), (2, 5), (3, 8)]
    assert (
        records[0].values["Address"] == "Acme Corp\r\n12 Main St, Suite 4\r\nSpringfield, IL 62701"
    )
    assert records[0].values["Note"] == "vip"
    assert all(r.problem is None for r in records)


def test_a_two_column_address_with_a_comma_on_its_last_line_is_accepted(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", 'Phone,Address\n1,"12 Main St\nSpringfield, IL"\n2,x\n')
    assert scan_audience(path).records == 2


def test_a_field_at_the_line_break_limit_is_accepted_one_more_is_not(tmp_path: Path) -> None:
    note = "\n".join(["line"] * (MAX_FIELD_LINES + 1))  # exactly MAX_FIELD_LINES breaks
    ok = write(tmp_path, "ok.csv", f'Phone,Note\n1,"{note}"\n2,x\n')
    assert scan_audience(ok).records == 2
    assert read_all(ok)[1].line == MAX_FIELD_LINES + 3
    bad = write(tmp_path, "bad.csv", f'Phone,Note\n1,x\n2,"{note}\nline"\n3,x\n')
    with pytest.raises(AudienceError) as info:
        scan_audience(bad)
    message = str(info.value)
    assert message.startswith("bad.csv: line 3: the quoted value that starts there runs over")
    assert f"more than {MAX_FIELD_LINES} line breaks" in message
    assert "most likely an unclosed quote opened on line 3" in message


def test_a_runaway_quote_in_a_huge_file_stops_early_and_small(tmp_path: Path) -> None:
    path = big_file(
        tmp_path / "a.csv",
        [("Phone,Name\n", 1), ("1,Ann\n", 10), ('2,"Bob\n', 1), ("3,Cy\n", 2_000_000)],
    )
    peak = peak_memory(lambda: scan_error(path))
    with pytest.raises(AudienceError, match="most likely an unclosed quote opened on line 12"):
        scan_audience(path)
    assert peak < 2_000_000


def test_a_value_over_excels_cell_limit_is_refused(tmp_path: Path) -> None:
    ok = write(tmp_path, "ok.csv", "Phone,Note\n1," + "x" * MAX_FIELD_CHARS + "\n")
    assert scan_audience(ok).records == 1
    bad = write(tmp_path, "bad.csv", "Phone,Note\n1,x\n2," + "x" * (MAX_FIELD_CHARS + 1) + "\n")
    with pytest.raises(AudienceError, match=r"^bad\.csv: line 3: a value is 32,768 characters"):
        scan_audience(bad)
    records, error = read_until_error(bad)
    assert len(records) == 1 and "32,767" in str(error)


def test_a_quoted_value_over_the_cell_limit_names_where_the_quote_opened(tmp_path: Path) -> None:
    lines = "\n".join(["y" * 1000] * 40)  # 40,039 characters on 40 lines
    path = write(tmp_path, "a.csv", f'Phone,Note\n1,x\n2,"{lines}"\n3,z\n')
    with pytest.raises(AudienceError, match="most likely an unclosed quote opened on line 3"):
        scan_audience(path)


def test_a_value_beyond_csvs_own_field_limit_is_an_audience_error(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "Phone,Note\n1," + "x" * 200_000 + "\n")
    with pytest.raises(AudienceError, match=r"^a\.csv: line 2: .*32,767"):
        scan_audience(path)
    with pytest.raises(AudienceError, match="line 2"):
        read_all(path)


def test_a_file_without_line_breaks_is_an_audience_error(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "Phone," + "x" * 200_000)  # csv's own limit in the header
    with pytest.raises(AudienceError, match=r"^a\.csv: line 1\b"):
        scan_audience(path)


# --- 50 MB: memory stays flat, the error names the line --------------------------------------


def test_a_50_mb_file_with_no_line_break(tmp_path: Path) -> None:
    path = big_file(tmp_path / "a.csv", [("Phone,Name,", 1), ("x" * 1_000_000, 50)])
    errors: list[AudienceError | None] = []
    peak = peak_memory(lambda: errors.append(scan_error(path)))
    message = str(errors[0])
    assert message.startswith(f"a.csv: line 1 is longer than {MAX_LINE_CHARS:,} characters")
    assert "no line breaks" in message
    assert peak < 8_000_000  # the file is 50 MB
    with pytest.raises(AudienceError, match="line 1 is longer"):
        read_all(path)


def test_a_50_mb_line_mid_file(tmp_path: Path) -> None:
    path = big_file(
        tmp_path / "a.csv",
        [("Phone,Note\n", 1), ("1,ok\n", 500), ("2,", 1), ("x" * 1_000_000, 50), ("\n3,ok\n", 1)],
    )
    peak = peak_memory(lambda: scan_error(path))
    assert peak < 8_000_000
    with pytest.raises(AudienceError, match=r"^a\.csv: line 502 is longer than"):
        scan_audience(path)
    records, error = read_until_error(path)
    assert len(records) == 500 and "line 502" in str(error)


def test_a_50_mb_quoted_field_mid_file(tmp_path: Path) -> None:
    path = big_file(
        tmp_path / "a.csv",
        [("Phone,Note\n", 1), ("1,ok\n", 500), ('2,"', 1), ("x" * 99 + "\n", 500_000), ('"\n', 1)],
    )
    peak = peak_memory(lambda: scan_error(path))
    assert peak < 2_000_000
    with pytest.raises(AudienceError, match="most likely an unclosed quote opened on line 502"):
        scan_audience(path)
    records, error = read_until_error(path)
    assert len(records) == 500 and "line 502" in str(error)


# --- The header ------------------------------------------------------------------------------


def test_a_header_with_an_unclosed_quote(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", 'Phone,"Name\n1,Ann\n2,Bob\n')
    with pytest.raises(AudienceError, match=r"^a\.csv: line 1: the header has an unclosed quote"):
        scan_audience(path)
    with pytest.raises(AudienceError, match="line 1: the header"):
        read_all(path)


def test_a_header_only_audience_has_no_records(tmp_path: Path) -> None:
    for content in ("Phone,Name\n", "Phone,Name", "Phone;Name\r\n;\r\n\r\n"):
        path = write(tmp_path, "a.csv", content)
        scan = scan_audience(path)
        assert (scan.records, scan.columns) == (0, ("Phone", "Name"))


# --- Bytes that a CSV reader would silently take ---------------------------------------------


def test_a_nul_byte_is_refused_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", b"Phone,Name\n1,Ann\n2,B\x00b\n3,Cy\n")
    with pytest.raises(AudienceError, match=r"^a\.csv: line 3 contains a NUL byte"):
        scan_audience(path)
    records, error = read_until_error(path)
    assert len(records) == 1 and "line 3" in str(error)


def test_utf16_without_a_bom_is_a_nul_byte_with_a_hint(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "Phone,Name\n1,Ann\n".encode("utf-16-le"))
    with pytest.raises(AudienceError, match=r"line 1 contains a NUL byte.*as utf-16-le") as info:
        scan_audience(path)
    assert info.value.remedy == Remedy(Action.SET_ENCODING, {"encoding": "utf-16-le"})
    assert scan_audience(path, "utf-16-le").records == 1


def test_a_lone_carriage_return_in_an_unquoted_field(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "Phone,Name\n1,Ann\n2,Bo\rb\n")
    with pytest.raises(AudienceError, match=r"^a\.csv: line 3 has a carriage return"):
        scan_audience(path)
    records, error = read_until_error(path)
    assert len(records) == 1 and "line 3" in str(error)


def test_old_mac_line_breaks_are_named(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "Phone,Name\r1,Ann\r2,Bob\r")
    with pytest.raises(AudienceError, match=r"line 1 has a carriage return.*Mac"):
        scan_audience(path)


@pytest.mark.parametrize("encoding", ["base64", "rot13", "zlib"])
def test_an_encoding_that_is_not_a_text_encoding(tmp_path: Path, encoding: str) -> None:
    path = write(tmp_path, "a.csv", "Phone\n1\n")
    with pytest.raises(AudienceError, match=f"unknown encoding '{encoding}'"):
        scan_audience(path, encoding)


def test_a_directory_is_an_audience_error(tmp_path: Path) -> None:
    (tmp_path / "a.csv").mkdir()
    with pytest.raises(AudienceError, match="cannot be opened"):
        scan_audience(tmp_path / "a.csv")


# --- What the scan reports -------------------------------------------------------------------


def test_the_scan_counts_records_as_the_send_stores_them(tmp_path: Path) -> None:
    content = 'Phone,Name\n1,Ann\n\n,,\n,\n2,"Smith, Bob"\n3,too,many\n4,"a\nb"\n'
    path = write(tmp_path, "a.csv", content)
    scan = scan_audience(path)
    records = read_all(path)
    assert scan.records == len(records) == 4  # the blank line and the empty cells are not
    assert scan.problems == 1
    assert scan.size == len(content.encode())
    assert scan.sha256 == hashlib.sha256(content.encode()).hexdigest()
    assert (scan.columns, scan.delimiter, scan.excel, scan.sep_line) == (
        ("Phone", "Name"),
        ",",
        False,
        False,
    )


def test_the_scan_of_json_lines(tmp_path: Path) -> None:
    content = '{"Phone": "1"}\n\nnot json\n{"Name": "Bob", "Phone": "2"}\n'
    path = write(tmp_path, "a.jsonl", content)
    scan = scan_audience(path)
    assert (scan.records, scan.problems, scan.columns, scan.delimiter) == (
        3,
        1,
        ("Phone", "Name"),
        None,
    )
    assert scan.sha256 == hashlib.sha256(content.encode()).hexdigest()


def test_the_scan_is_streamed(tmp_path: Path) -> None:
    path = big_file(tmp_path / "a.csv", [("Phone,Note\n", 1), ("1," + "x" * 2000 + "\n", 5000)])
    scans = []
    peak = peak_memory(lambda: scans.append(scan_audience(path)))
    assert scans[0].records == 5000 and scans[0].size == path.stat().st_size
    assert peak < 1_000_000


def test_the_reader_hashes_what_it_reads(tmp_path: Path) -> None:
    content = "Phone\n1\n2\n3\n"
    path = write(tmp_path, "a.csv", content)
    with open_audience(path) as reader:
        assert reader.sha256 is None  # not read to the end yet
        assert reader.skip(1) == 1
        assert reader.sha256 is None
        assert len(list(reader)) == 2
        assert reader.sha256 == hashlib.sha256(content.encode()).hexdigest()
        assert reader.bytes_read == len(content)


def test_a_file_changed_after_the_scan_is_told_by_its_digest(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "Phone\n1\n2\n")
    scan = scan_audience(path)
    path.write_text("Phone\n1\n3\n")
    with open_audience(path) as reader:
        list(reader)
        assert reader.sha256 != scan.sha256 and reader.bytes_read == scan.size


def test_file_digest_matches_the_scan(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "Phone\n1\n" * 50_000)
    scan = scan_audience(path)
    assert (
        file_digest(path)
        == (scan.size, scan.sha256)
        == (
            path.stat().st_size,
            hashlib.sha256(path.read_bytes()).hexdigest(),
        )
    )
    with pytest.raises(OSError):
        file_digest(tmp_path / "missing.csv")


def test_json_lines_that_python_cannot_take_are_problem_records(tmp_path: Path) -> None:
    lines = [
        '{"Phone": "1", "Name": "\\ud83d"}',  # half of an emoji's surrogate pair
        "[" * 100_000,  # deeper than the parser recurses
        '{"Phone": ' + "9" * 5000 + "}",  # more digits than int() converts
        '{"Phone": "4", "Name": "\\ud83d\\ude00"}',  # a whole pair is fine
    ]
    path = write(tmp_path, "a.jsonl", "\n".join(lines) + "\n")
    records = read_all(path)
    assert [r.values for r in records][:3] == [{}, {}, {}]
    assert "unpaired surrogate" in (records[0].problem or "")
    assert "nested too deeply" in (records[1].problem or "")
    assert "line 3 is not valid JSON" in (records[2].problem or "")
    assert records[3].values == {"Phone": "4", "Name": "😀"} and records[3].problem is None
    assert scan_audience(path).problems == 3
