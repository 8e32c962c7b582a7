"""A connection's rate cap and request timeout, as an administrator sets them over the CLI."""

from __future__ import annotations

from tests.e2e.conftest import Cli

BASE_URL = "http://127.0.0.1:9/2010-04-01"  # never contacted by these commands


def _fields(cli: Cli, name: str) -> dict[str, str]:
    """`connection show` as label -> value."""
    shown: dict[str, str] = {}
    for line in cli.run("connection", "show", name).stdout.splitlines():
        label, _, value = line.partition("  ")
        shown[label.strip()] = value.strip()
    return shown


def test_defaults_are_no_cap_and_30_seconds(cli: Cli) -> None:
    cli.add_connection("sim", BASE_URL)

    shown = _fields(cli, "sim")

    assert (shown["max segments/s"], shown["request timeout"]) == ("no cap", "30 s")
    listed = cli.run("connection", "list").stdout
    assert "segments/s" in listed and "30 s" in listed


def test_add_and_update_set_change_and_clear_them(cli: Cli) -> None:
    cli.add_connection("sim", BASE_URL, "--mps", "1", "--request-timeout", "12.5")
    shown = _fields(cli, "sim")
    assert (shown["max segments/s"], shown["request timeout"]) == ("1", "12.5 s")

    cli.run("connection", "update", "sim", "--max-segments-per-second", "0.5")
    assert _fields(cli, "sim")["max segments/s"] == "0.5"
    assert _fields(cli, "sim")["request timeout"] == "12.5 s"  # untouched by that update

    cli.run("connection", "update", "sim", "--mps", "0", "--request-timeout", "45")
    shown = _fields(cli, "sim")
    assert (shown["max segments/s"], shown["request timeout"]) == ("no cap", "45 s")


#: Each bad value, and the part of the message that tells the user what to give instead.
_NONSENSE = [
    ("--mps", "-1", "--max-segments-per-second -1: give segments per second above 0"),
    ("--max-segments-per-second", "nan", "or 0 for no cap"),
    ("--request-timeout", "0", "--request-timeout 0: give a number of seconds above 0"),
    ("--request-timeout", "-3", "give a number of seconds above 0"),
    ("--request-timeout", "inf", "give a number of seconds above 0"),
]


def test_values_that_make_no_sense_are_refused(cli: Cli) -> None:
    # One test over every case: each CLI call is a process start, and they add up.
    cli.add_connection("sim", BASE_URL)

    for option, value, expected in _NONSENSE:
        added = cli.run(
            "connection", "add", "other", "--account-sid", "AC" + "0" * 32,
            "--from", "+15005550006", option, value, check=False,
        )  # fmt: skip
        updated = cli.run("connection", "update", "sim", option, value, check=False)
        for result in (added, updated):
            assert result.returncode == 2, (option, value)
            assert expected in " ".join(result.stderr.split()), (option, value)
    assert _fields(cli, "sim")["request timeout"] == "30 s"  # nothing was changed
    assert "other" not in cli.run("connection", "list").stdout
