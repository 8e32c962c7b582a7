"""Result files: column naming, CSV and JSON Lines rows, and all-or-nothing writes."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from smslink.audience.readers import AudienceError, open_audience
from smslink.audience.writers import RESULT_COLUMNS, open_results, result_column_names
from smslink.domain.models import ResultStatus

DELIVERED = {
    "to": "+14155550100",
    "status": ResultStatus.DELIVERED,
    "error_code": None,
    "error_message": None,
    "message_sid": "SM" + "0" * 32,
    "segments": 1,
    "timestamp": datetime(2024, 5, 1, 12, 30, tzinfo=UTC),
}
ERROR = {
    "to": None,
    "status": "error",
    "error_code": 21211,
    "error_message": "The 'To' number 12345 is not a valid phone number.",
    "segments": 0,
}


def test_result_columns_keep_their_names_without_clashes() -> None:
    names = result_column_names(["Phone", "FirstName"])
    assert names == {c: c for c in RESULT_COLUMNS}


def test_clashing_result_columns_are_prefixed_case_insensitively() -> None:
    names = result_column_names(["To", "Status", "City"])
    assert names["to"] == "smslink_to"
    assert names["status"] == "smslink_status"
    assert names["segments"] == "segments"


def test_a_prefixed_name_that_clashes_too_gets_a_numeric_suffix() -> None:
    names = result_column_names(["to", "SMSLINK_TO", "smslink_to_2", "timestamp"])
    assert names["to"] == "smslink_to_3"
    assert names["timestamp"] == "smslink_timestamp"
    assert len(set(names.values())) == len(RESULT_COLUMNS)


def test_csv_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    columns = ["Phone", "Name", "Status"]
    with open_results(path, columns) as writer:
        writer.write({"Phone": "(415) 555-0100", "Name": "Zoë, Jr", "Status": "VIP"}, DELIVERED)
        writer.write({"Phone": "12345", "Name": "Ann\nLee"}, ERROR)
    raw = path.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf")
    header = "Phone,Name,Status,to,smslink_status,error_code,error_message,message_sid,segments,"
    assert raw.decode("utf-8").startswith(header + "timestamp\r\n")
    with open_audience(path) as reader:
        assert reader.columns == writer.columns
        first, second = (r.values for r in reader)
    assert first["Name"] == "Zoë, Jr"
    assert first["Status"] == "VIP"
    assert first["smslink_status"] == "delivered"
    assert first["error_code"] == ""
    assert first["segments"] == "1"
    assert first["timestamp"] == "2024-05-01T12:30:00+00:00"
    assert second["Name"] == "Ann\nLee"
    assert second["Status"] == ""
    assert second["to"] == ""
    assert second["error_code"] == "21211"
    assert second["message_sid"] == ""


def test_jsonl_keeps_types_and_nulls(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    with open_results(path, ["Phone", "to"]) as writer:
        writer.write({"Phone": "+14155550100", "to": "x"}, DELIVERED)
        writer.write({"Phone": "12345"}, ERROR)
    first, second = (json.loads(line) for line in path.read_text("utf-8").splitlines())
    assert list(first) == ["Phone", "to", "smslink_to", *RESULT_COLUMNS[1:]]
    assert first["to"] == "x"
    assert first["smslink_to"] == "+14155550100"
    assert first["status"] == "delivered"
    assert first["error_code"] is None
    assert first["segments"] == 1
    assert second["to"] == ""
    assert second["smslink_to"] is None
    assert second["error_code"] == 21211
    assert second["message_sid"] is None


def test_nothing_appears_until_close(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    with open_results(path, ["Phone"]) as writer:
        writer.write({"Phone": "1"}, ERROR)
        assert not path.exists()
    assert path.exists()
    assert os.listdir(tmp_path) == ["results.csv"]


def test_an_exception_discards_the_temp_file_and_keeps_the_old_results(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    with open_results(path, ["Phone"]) as writer:
        writer.write({"Phone": "previous run"}, ERROR)
    previous = path.read_bytes()
    with pytest.raises(RuntimeError), open_results(path, ["Phone"]) as writer:
        writer.write({"Phone": "1"}, ERROR)
        raise RuntimeError("crash mid-run")
    assert path.read_bytes() == previous
    assert os.listdir(tmp_path) == ["results.csv"]


def test_abort_and_close_explicitly(tmp_path: Path) -> None:
    writer = open_results(tmp_path / "a.jsonl", ["Phone"])
    writer.abort()
    assert os.listdir(tmp_path) == []
    writer = open_results(tmp_path / "b.jsonl", ["Phone"])
    writer.close()
    writer.close()
    assert (tmp_path / "b.jsonl").read_text("utf-8") == ""
    with pytest.raises(ValueError, match="closed"):
        writer.write({}, {})


def test_an_empty_csv_result_still_has_its_header(tmp_path: Path) -> None:
    with open_results(tmp_path / "r.csv", ["Phone"]):
        pass
    assert (tmp_path / "r.csv").read_text("utf-8").splitlines()[0].startswith("Phone,to,status")


def test_the_results_file_gets_ordinary_permissions(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    try:
        with open_results(tmp_path / "r.csv", ["Phone"]):
            pass
    finally:
        os.umask(umask)
    assert (tmp_path / "r.csv").stat().st_mode & 0o777 == 0o644


def test_unknown_result_keys_are_a_bug(tmp_path: Path) -> None:
    with (
        pytest.raises(ValueError, match="not result columns: errorCode"),
        open_results(tmp_path / "r.csv", ["Phone"]) as writer,
    ):
        writer.write({"Phone": "1"}, {"errorCode": 1})
    assert os.listdir(tmp_path) == []


def test_unknown_results_extension(tmp_path: Path) -> None:
    with pytest.raises(AudienceError, match=r"unknown results format '\.xlsx'"):
        open_results(tmp_path / "r.xlsx", ["Phone"])
    assert os.listdir(tmp_path) == []


def test_an_unwritable_place_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(AudienceError, match="cannot write results there"):
        open_results(tmp_path / "missing" / "r.csv", ["Phone"])
