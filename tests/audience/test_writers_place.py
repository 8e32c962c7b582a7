"""Where results may be written: never over the audience, a folder or someone's other file."""

from __future__ import annotations

import codecs
import json
import os
from pathlib import Path

import pytest

from smslink.audience.readers import AudienceError
from smslink.audience.writers import (
    RESULT_COLUMNS,
    check_results_path,
    is_results_file,
    open_results,
    same_file,
)

# What a marketer's Excel saves in Germany: cp1252, ";" separated.
AUDIENCE = "Telefon;Vorname;Straße\r\n+4915112345678;Jürgen;Königsallee 1\r\n".encode("cp1252")
ERROR = {"status": "error", "error_code": 21211, "error_message": "invalid 'To'"}


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    folder = tmp_path / "x"
    folder.mkdir()
    path = folder / "same.csv"
    path.write_bytes(AUDIENCE)
    return path


def _same_as_victim(victim: Path, how: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Another name for the audience file."""
    if how == "identical":
        return victim
    if how == "relative":
        monkeypatch.chdir(victim.parent)
        return Path("./../x/same.csv")
    if how == "symlink":
        link = victim.parent / "link.csv"
        link.symlink_to(victim)
        return link
    if how == "hardlink":
        link = victim.parent.parent / "hard.csv"
        os.link(victim, link)
        return link
    raise AssertionError(how)


def _leftovers(folder: Path) -> list[str]:
    return sorted(name for name in os.listdir(folder) if name.endswith(".tmp"))


HOW = ["identical", "relative", "symlink", "hardlink"]


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize("overwrite", [False, True])
def test_the_audience_file_is_never_a_results_target(
    victim: Path, how: str, overwrite: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    output = _same_as_victim(victim, how, monkeypatch)
    with pytest.raises(AudienceError, match="is the audience file itself") as info:
        check_results_path(output, input_path=victim, overwrite=overwrite)
    assert str(victim) in str(info.value)
    assert "choose another output file" in str(info.value)
    assert "\n" not in str(info.value)
    with pytest.raises(AudienceError, match="is the audience file itself"):
        open_results(output, ["Telefon"], input_path=victim, overwrite=overwrite)
    assert victim.read_bytes() == AUDIENCE
    assert _leftovers(victim.parent) == []


@pytest.mark.parametrize("how", HOW)
def test_the_audience_is_refused_when_the_input_is_the_other_name(
    victim: Path, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = _same_as_victim(victim, how, monkeypatch)
    with pytest.raises(AudienceError, match="is the audience file itself"):
        check_results_path(victim, input_path=other)
    assert victim.read_bytes() == AUDIENCE


def test_even_without_input_path_an_audience_is_not_overwritten(victim: Path) -> None:
    # Not a results file, so it is protected by the second rule as well.
    with pytest.raises(AudienceError, match="exists and is not a smslink results file"):
        open_results(victim, ["Telefon"])
    assert victim.read_bytes() == AUDIENCE


def test_same_file(tmp_path: Path, victim: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for how in HOW:
        assert same_file(_same_as_victim(victim, how, monkeypatch), victim)
    assert same_file(tmp_path / "new.csv", tmp_path / "." / "new.csv")  # neither exists
    assert not same_file(tmp_path / "new.csv", victim)
    copy = tmp_path / "copy.csv"
    copy.write_bytes(AUDIENCE)
    assert not same_file(copy, victim)


def test_someone_elses_file_is_kept_unless_overwriting_is_allowed(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    path.write_text("Name,Email\nAnn,ann@example.com\n", "utf-8")
    with pytest.raises(AudienceError) as info:
        check_results_path(path)
    message = str(info.value)
    assert message == (
        f"{path} exists and is not a smslink results file: "
        "choose another name or allow overwriting it"
    )
    with pytest.raises(AudienceError, match="not a smslink results file"):
        open_results(path, ["Phone"])
    assert path.read_text("utf-8") == "Name,Email\nAnn,ann@example.com\n"
    assert _leftovers(tmp_path) == []

    check_results_path(path, overwrite=True)
    with open_results(path, ["Phone"], overwrite=True) as writer:
        writer.write({"Phone": "1"}, ERROR)
    assert is_results_file(path)


def _written(path: Path, columns: list[str], **kwargs: object) -> Path:
    with open_results(path, columns, **kwargs) as writer:  # type: ignore[arg-type]
        writer.write(dict.fromkeys(columns, "v"), ERROR)
    return path


def _utf16_results(path: Path) -> Path:
    header = "Telefon\t" + "\t".join(RESULT_COLUMNS) + "\r\n"
    path.write_bytes(codecs.BOM_UTF16_LE + header.encode("utf-16-le"))
    return path


EXISTING_RESULTS = {
    "plain": lambda p: _written(p / "r.csv", ["Phone"]),
    "renamed columns": lambda p: _written(
        p / "r.csv", ["to", "status", "smslink_status", "Timestamp"]
    ),
    "jsonl": lambda p: _written(p / "r.jsonl", ["Phone", "to"]),
    "semicolon with BOM": lambda p: _written(p / "r.csv", ["Telefon"], delimiter=";", bom=True),
    "sep line": lambda p: _written(p / "r.csv", ["T"], delimiter=";", bom=True, sep_line=True),
    "tsv": lambda p: _written(p / "r.tsv", ["Phone"]),
    "formula in the header": lambda p: _written(p / "r.csv", ["=cmd|' /C calc'!A0"]),
    "utf-16": lambda p: _utf16_results(p / "r.txt"),
    "header only": lambda p: open_results(p / "r.csv", ["Phone"]).close() or p / "r.csv",
}


@pytest.mark.parametrize("kind", list(EXISTING_RESULTS))
def test_an_earlier_results_file_is_replaced(tmp_path: Path, kind: str) -> None:
    path = EXISTING_RESULTS[kind](tmp_path)
    assert is_results_file(path)
    check_results_path(path)
    with open_results(path, ["Phone"]) as writer:
        writer.write({"Phone": "new"}, ERROR)
    assert "new" in path.read_text("utf-8")
    assert _leftovers(tmp_path) == []


def test_renamed_result_columns_are_recognised(tmp_path: Path) -> None:
    path = _written(tmp_path / "r.csv", ["to", "smslink_to", "SMSLINK_TO_2", "status"])
    header = path.read_text("utf-8").splitlines()[0]
    assert header.endswith(
        "smslink_to_3,smslink_status,error_code,error_message,message_sid,segments,timestamp"
    )
    assert is_results_file(path)


def test_an_empty_file_may_be_replaced(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    path.touch()
    assert not is_results_file(path)
    check_results_path(path)
    _written(path, ["Phone"])
    assert is_results_file(path)


HEADER = "to,status,error_code,error_message,message_sid,segments,timestamp"
NOT_RESULTS = {
    "audience": AUDIENCE,
    "result columns, but not last": f"{HEADER},Extra\r\n".encode(),
    "one result column missing": HEADER.replace("message_sid,", "").encode() + b"\n",
    "bad rename": f"Phone,{HEADER}".replace("timestamp", "smslink_timestamp_1").encode(),
    "binary": b"\x00\x01\x02PK\x03\x04" * 100,
    "not utf-8": "Telefon;Straße\n".encode("cp1252"),
    "jsonl without result keys": json.dumps({"Phone": "1"}).encode() + b"\n",
    "jsonl array": b'["to","status"]\n',
    "header longer than what is read": b"a," * 40_000 + b"\n",
}


@pytest.mark.parametrize("kind", list(NOT_RESULTS))
def test_other_files_are_not_results(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "out.csv"
    path.write_bytes(NOT_RESULTS[kind])
    assert not is_results_file(path)
    with pytest.raises(AudienceError, match="not a smslink results file"):
        check_results_path(path)
    assert path.read_bytes() == NOT_RESULTS[kind]


def test_is_results_file_of_things_that_are_not_files(tmp_path: Path) -> None:
    assert not is_results_file(tmp_path / "missing.csv")
    assert not is_results_file(tmp_path)
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    assert not is_results_file(fifo)  # and does not block waiting for a writer
    with pytest.raises(AudienceError, match="is not a regular file"):
        check_results_path(fifo, overwrite=True)


def test_a_folder_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    path.mkdir()
    with pytest.raises(AudienceError, match=r"out\.csv is a folder: name a file inside it"):
        check_results_path(path, overwrite=True)
    with pytest.raises(AudienceError, match="is a folder"):
        open_results(path, ["Phone"], overwrite=True)
    assert path.is_dir()
    assert os.listdir(tmp_path) == ["out.csv"]


def test_a_dangling_symlink_is_kept_unless_overwriting_is_allowed(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    path.symlink_to(tmp_path / "gone.csv")
    with pytest.raises(AudienceError, match="symbolic link to a missing file"):
        check_results_path(path)
    check_results_path(path, overwrite=True)


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="no /proc on this system")
def test_a_place_where_no_file_can_be_created_is_refused_up_front() -> None:
    # As root os.access calls /proc writable; creating a file there still fails.
    with pytest.raises(AudienceError, match=r"^/proc/out\.csv: cannot write results there"):
        check_results_path(Path("/proc/out.csv"))


def test_the_check_creates_nothing(tmp_path: Path) -> None:
    check_results_path(tmp_path / "out.csv")
    assert os.listdir(tmp_path) == []


def test_a_missing_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(AudienceError, match=r"the folder .*missing does not exist"):
        check_results_path(tmp_path / "missing" / "out.csv")
    (tmp_path / "file").write_text("x")
    with pytest.raises(AudienceError, match="file is not a folder"):
        check_results_path(tmp_path / "file" / "out.csv")


def test_a_foreign_file_appearing_during_the_run_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    writer = open_results(path, ["Phone"])
    writer.write({"Phone": "1"}, ERROR)
    path.write_bytes(AUDIENCE)  # somebody saved their sheet there meanwhile
    with pytest.raises(AudienceError, match="changed while the results were being written"):
        writer.close()
    assert path.read_bytes() == AUDIENCE
    assert _leftovers(tmp_path) == []


def test_the_context_manager_also_keeps_it(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    with (
        pytest.raises(AudienceError, match="not a smslink results file"),
        open_results(path, ["Phone"]) as writer,
    ):
        writer.write({"Phone": "1"}, ERROR)
        path.write_bytes(AUDIENCE)
    assert path.read_bytes() == AUDIENCE
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("overwrite", [False, True])
def test_the_target_turning_into_the_audience_during_the_run_is_refused(
    tmp_path: Path, victim: Path, overwrite: bool
) -> None:
    path = tmp_path / "out.csv"
    writer = open_results(path, ["Phone"], input_path=victim, overwrite=overwrite)
    writer.write({"Phone": "1"}, ERROR)
    path.symlink_to(victim)
    with pytest.raises(AudienceError, match="is the audience file itself"):
        writer.close()
    assert victim.read_bytes() == AUDIENCE
    assert path.is_symlink()
    assert _leftovers(tmp_path) == []


def test_overwrite_allows_a_file_appearing_during_the_run(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    with open_results(path, ["Phone"], overwrite=True) as writer:
        writer.write({"Phone": "1"}, ERROR)
        path.write_bytes(AUDIENCE)
    assert is_results_file(path)
