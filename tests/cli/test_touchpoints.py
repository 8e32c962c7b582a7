"""`smslink touchpoint …` as a marketer sets a message up: add, show, preview."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.clikit import InProcessCli, Simulator, write_csv


@pytest.mark.parametrize(
    ("message", "maps", "error"),
    [
        ("<A> <B> <C> <D> <E> <F>", ["A=a", "B=b", "C=c", "D=d", "E=e", "F=f"], "at most 5"),
        ("Hi <FirstName>", [], "<FirstName> is not mapped"),
        ("Hi <FirstName>", ["FirstName=first", "City=city"], "City"),
    ],
    ids=["six-placeholders", "unmapped", "mapping-not-in-message"],
)
def test_touchpoint_add_rejects_template_problems(
    cli: InProcessCli, simulator: Simulator, message: str, maps: list[str], error: str
) -> None:
    cli.add_connection("sim", simulator.base_url)
    map_args = [arg for pair in maps for arg in ("--map", pair)]

    result = cli.run(
        "touchpoint",
        "add",
        "t",
        "--connection",
        "sim",
        "--message",
        message,
        "--phone",
        "phone",
        *map_args,
        check=False,
    )

    assert result.returncode == 2
    assert error in " ".join(result.stderr.split())


def test_touchpoint_needs_an_existing_connection(cli: InProcessCli) -> None:
    result = cli.run(
        "touchpoint",
        "add",
        "t",
        "--connection",
        "nope",
        "--message",
        "Hi",
        "--phone",
        "phone",
        check=False,
    )

    assert result.returncode == 2 and "nope" in result.stderr


def test_touchpoint_show_and_preview_without_sending(
    cli: InProcessCli, simulator: Simulator, tmp_path: Path
) -> None:
    cli.add_connection("sim", simulator.base_url)
    cli.run(
        "touchpoint",
        "add",
        "promo",
        "--connection",
        "sim",
        "--message",
        "Hi <First Name>, 3 < 4 and <3 stay: {curly} costs two",
        "--phone",
        "Mobile",
        "--map",
        "First Name=first",
    )
    source = write_csv(
        tmp_path / "a.csv",
        ["first", "Mobile"],
        [["Ann", "212 555 0101"], ["Zoë", "+12125550102"], ["", "+12125550103"], ["Bo", "123"]],
    )

    shown = cli.run("touchpoint", "show", "promo").stdout
    preview = cli.run("touchpoint", "preview", "promo", "--input", str(source), "--limit", "1")

    assert "<First Name>" in shown and "first" in shown and "Mobile" in shown
    out = " ".join(preview.stdout.split())
    assert "Hi Ann, 3 < 4 and <3 stay: {curly} costs two" in out
    assert "+12125550101" in out and "Zoë" not in out  # --limit 1
    assert "4 records: 2 messages, 2 segments (1 GSM-7, 1 UCS-2), 2 would fail" in out
    assert "record 3" in out and "record 4" in out
    assert simulator.stats()["posts"] == 0
