"""Opt-outs through the CLI: a 21610 answer is remembered per sender, later runs skip that
recipient without a POST, and `smslink optouts remove` lets them be sent to again.

The simulator answers 21610 to every message for Twilio's magic +15005550004, so "a POST
for that number" is what its /_stats counts under posts_by_to.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from smslink.app import open_app
from smslink.domain.models import OptOut
from smslink.simulator import run_in_thread
from tests.clikit import FAST, InProcessCli, Simulator, read_csv, write_csv

OPTED = "+15005550004"  # the simulator's "replied STOP" recipient
SENDER = "+15005550006"  # the connection `sim` that add_touchpoint creates
OTHER_SENDER = "+12125550199"  # a second number the simulated account owns


@pytest.fixture
def two_senders() -> Iterator[Simulator]:
    """The simulator, owning a second From number besides Twilio's magic one."""
    config = replace(FAST, owned_numbers=frozenset({SENDER, OTHER_SENDER}))
    with run_in_thread(config) as base_url:
        yield Simulator(base_url)


def _send(cli: InProcessCli, touchpoint: str, source: Path, out: Path) -> dict[str, dict[str, str]]:
    # --again: these tests send the same audience run after run on purpose.
    cli.run("send", touchpoint, "--input", str(source), "--output", str(out), "--again")
    return {row["id"]: row for row in read_csv(out)}


def _posts_to_opted(simulator: Simulator) -> int:
    return int(simulator.stats()["posts_by_to"].get(OPTED, 0))


def test_an_optout_is_remembered_per_sender_until_removed(
    cli: InProcessCli, two_senders: Simulator, tmp_path: Path
) -> None:
    simulator = two_senders
    # Concurrency 2 leaves one sending worker, so records go out in input order.
    cli.add_touchpoint(simulator.base_url, "--concurrency", "2")
    source = write_csv(
        tmp_path / "audience.csv",
        ["id", "name", "phone"],
        [
            ["1", "Ann", "+12125550101"],
            ["2", "Opt", OPTED],
            ["3", "Bob", "+12125550102"],
            ["4", "Opt again", "(500) 555-0004"],  # the same recipient, written differently
        ],
    )
    today = datetime.now(UTC).date().isoformat()
    remove_hint = "remove their opt-out for this sender"

    # Run 1: Twilio refuses the first message with 21610; the repeat is skipped unposted.
    first = _send(cli, "hello", source, tmp_path / "run1.csv")
    assert (first["2"]["status"], first["2"]["error_code"]) == ("error", "21610")
    refused = first["2"]["error_message"]
    assert f"{OPTED} unsubscribed from messages from {SENDER}" in refused
    assert "Attempt to send to unsubscribed recipient" in refused  # Twilio's own words
    assert remove_hint in refused
    assert (first["4"]["status"], first["4"]["error_code"]) == ("error", "21610")
    assert first["4"]["error_message"] == (
        f"not sent: {OPTED} opted out of messages from {SENDER} (replied STOP; Twilio error "
        f"21610, first seen {today}); if they opted back in, {remove_hint}"
    )
    assert {first["1"]["status"], first["3"]["status"]} == {"delivered"}
    assert _posts_to_opted(simulator) == 1

    listed = cli.run("optouts", "list").stdout
    assert SENDER in listed and OPTED in listed and today in listed and "run 1" in listed

    # Run 2, same audience: both records skipped, no POST for that number at all.
    second = _send(cli, "hello", source, tmp_path / "run2.csv")
    for seq in ("2", "4"):
        assert (second[seq]["status"], second[seq]["error_code"]) == ("error", "21610")
        assert second[seq]["error_message"].startswith(f"not sent: {OPTED} opted out")
    assert {second["1"]["status"], second["3"]["status"]} == {"delivered"}
    assert _posts_to_opted(simulator) == 1

    # Another sender is not affected: its run POSTs, and learns its own opt-out.
    cli.add_connection("other", simulator.base_url, "--from", OTHER_SENDER, "--concurrency", "2")
    cli.run(
        "touchpoint", "add", "hello-other", "--connection", "other",
        "--message", "Hi <Name>!", "--phone", "phone", "--map", "Name=name",
    )  # fmt: skip
    other = _send(cli, "hello-other", source, tmp_path / "run3.csv")
    assert f"unsubscribed from messages from {OTHER_SENDER}" in other["2"]["error_message"]
    assert _posts_to_opted(simulator) == 2
    only_other = cli.run("optouts", "list", "--sender", OTHER_SENDER).stdout
    assert OPTED in only_other and "run 3" in only_other and SENDER not in only_other

    # They opted back in to the first sender: remove that one opt-out (any phone format).
    removed = cli.run("optouts", "remove", "+1 (500) 555-0004", "--sender", SENDER)
    assert f"Removed 1 opt-out of {OPTED} from {SENDER}" in removed.stdout
    again = cli.run("optouts", "remove", OPTED, "--sender", SENDER, check=False)
    assert again.returncode == 1
    assert f"no opt-out of {OPTED} from {SENDER} is recorded" in again.stderr

    # Run 4: the first sender POSTs to them again (and Twilio, still refusing, is heard).
    fourth = _send(cli, "hello", source, tmp_path / "run4.csv")
    assert "unsubscribed from messages" in fourth["2"]["error_message"]
    assert fourth["4"]["error_message"].startswith("not sent:")
    assert _posts_to_opted(simulator) == 3
    assert max(simulator.stats()["messages_by_to"].values()) == 4  # once per run, never twice

    # Without --sender every sender's opt-out of that phone goes.
    everywhere = cli.run("optouts", "remove", OPTED)
    assert f"Removed 2 opt-outs of {OPTED} from any sender" in everywhere.stdout
    assert "No opt-outs recorded" in cli.run("optouts", "list").stdout


def test_optouts_commands_explain_empty_lists_and_bad_numbers(cli: InProcessCli) -> None:
    assert "No opt-outs recorded for +15005550006" in (
        cli.run("optouts", "list", "--sender", "+1 500 555 0006").stdout
    )
    bad = cli.run("optouts", "remove", "12345", check=False)
    assert bad.returncode == 2 and "not a valid phone number" in bad.stderr
    none = cli.run("optouts", "remove", "+12125550101", check=False)
    assert none.returncode == 1
    assert "no opt-out of +12125550101 from any sender is recorded" in none.stderr


def test_optouts_list_says_which_came_from_the_recipients_own_reply(
    cli: InProcessCli, simulator: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli.add_touchpoint(simulator.base_url)
    monkeypatch.setenv("SMSLINK_HOME", str(cli.home))
    with open_app() as smslink:  # what the webhook of `smslink serve` does with a STOP
        smslink.optouts.inbound("sim", "+12125550101", SENDER, "unsubscribe")
        smslink._store.catalogue.add_optout(
            OptOut(SENDER, "+12125550102", datetime.now(UTC), run_id=4)
        )

    listed = cli.run("optouts", "list").stdout

    [inbound] = [line for line in listed.splitlines() if "+12125550101" in line]
    [learned] = [line for line in listed.splitlines() if "+12125550102" in line]
    assert "replied UNSUBSCRIBE" in inbound and "21610" not in inbound
    assert "Twilio 21610, run 4" in learned
