"""The worker commands on the embedded default (SQLite): refused with the fix, nothing
stored or sent. With PostgreSQL they are tested as real processes in tests/e2e."""

from __future__ import annotations

from pathlib import Path

from tests.clikit import InProcessCli, Simulator, audience


def test_a_worker_needs_the_store_on_postgresql(cli: InProcessCli) -> None:
    refused = cli.run("worker", check=False)
    assert refused.returncode == 1
    assert "workers need the store on PostgreSQL" in refused.stderr
    assert "SMSLINK_DATABASE_URL" in refused.stderr


def test_send_queue_on_sqlite_is_refused_and_sends_nothing(
    cli: InProcessCli, simulator: Simulator, tmp_path: Path
) -> None:
    cli.add_touchpoint(simulator.base_url)
    source = audience(tmp_path / "a.csv", 3)
    refused = cli.run(
        "send", "hello", "--input", str(source), "--output", str(tmp_path / "r.csv"), "--queue",
        check=False,
    )  # fmt: skip
    assert refused.returncode == 1
    assert "workers need the store on PostgreSQL" in refused.stderr
    assert simulator.stats()["posts"] == 0
    assert "No runs yet" in cli.run("runs", "list").stdout  # refused before it was stored


def test_no_workers_listed_says_how_to_start_one(cli: InProcessCli) -> None:
    listed = cli.run("workers")
    assert "No worker seen in the last minute" in listed.stdout
    assert "smslink worker" in listed.stdout


def test_an_unknown_queue_is_refused_with_the_known_ones(cli: InProcessCli) -> None:
    refused = cli.run("worker", "--queue", "sending", "--queue", "urgent", check=False)
    assert refused.returncode == 2
    assert "no queue named urgent" in refused.stderr
    assert "journeys, sending, tracking" in refused.stderr
