"""Stopping a real `smslink send` process (Ctrl-C, SIGTERM, kill -9, a pause past its lease)
and resuming it: nothing lost, nothing sent twice.

The stopped `send` is a process of its own, as a user's would be; the set-up before it and
the `runs resume` after it run in this process (`cli.in_process`), which is a process
apart from the stopped one just as a second `smslink` command would be."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from smslink.simulator import SimulatorConfig, run_in_thread
from tests.clikit import TOKEN, Simulator, audience, read_csv
from tests.e2e.conftest import Cli
from tests.pg import fresh_pg_schema

RECORDS = 400
#: Slow enough (4 at a time, 20 ms each) that the run is surely mid-send when stopped.
SLOW = SimulatorConfig(auth_token=TOKEN, latency_ms=20, queued_s=0.05, sending_s=0.05, sent_s=0.1)


@pytest.fixture
def slow_simulator() -> Iterator[Simulator]:
    with run_in_thread(SLOW) as base_url:
        yield Simulator(base_url)


def _send_in_background(
    cli: Cli, simulator: Simulator, tmp_path: Path, posts: int = 40
) -> tuple[subprocess.Popen, Path]:
    """Start `smslink send` on RECORDS records; return once `posts` messages went out."""
    out = tmp_path / "out.csv"
    process = cli.start(
        "send", "hello", "--input", str(audience(tmp_path / "a.csv", RECORDS)),
        "--output", str(out),
    )  # fmt: skip
    _wait_for_posts(simulator, posts)
    return process, out


def _wait_for_posts(simulator: Simulator, at_least: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while simulator.stats()["posts"] < at_least:
        assert time.monotonic() < deadline, "the run never started posting"
        time.sleep(0.02)


@pytest.mark.parametrize(
    ("how", "exit_code"),
    [(signal.SIGINT, 130), (signal.SIGTERM, 130), (signal.SIGKILL, -9)],
    ids=["ctrl-c", "sigterm", "kill-9"],
)
def test_stopped_run_resumes_without_duplicates_or_losses(
    cli: Cli, slow_simulator: Simulator, tmp_path: Path, how: signal.Signals, exit_code: int
) -> None:
    cli.add_touchpoint(slow_simulator.base_url, "--concurrency", "4")
    process, out = _send_in_background(cli, slow_simulator, tmp_path)
    process.send_signal(how)
    _, stderr = process.communicate(timeout=60)

    assert process.returncode == exit_code, stderr
    if how is not signal.SIGKILL:
        assert "smslink runs resume 1" in stderr
    assert not out.exists()
    posted_before = slow_simulator.stats()["posts"]
    assert posted_before < RECORDS

    cli.in_process.run("runs", "resume", "1")

    rows = read_csv(out)
    assert [r["id"] for r in rows] == [f"C{i:05d}" for i in range(RECORDS)]
    assert {r["status"] for r in rows} == {"delivered"}
    stats = slow_simulator.stats()
    assert stats["messages"] == RECORDS
    assert max(stats["messages_by_to"].values()) == 1
    assert len({r["message_sid"] for r in rows}) == RECORDS
    assert "completed" in cli.in_process.run("runs", "show", "1").stdout


def test_resume_refuses_a_run_another_process_is_still_sending(
    cli: Cli, slow_simulator: Simulator, tmp_path: Path
) -> None:
    # Two real processes on one run: the refusal's text and exit code as a user sees them.
    cli.add_touchpoint(slow_simulator.base_url, "--concurrency", "4")
    process, out = _send_in_background(cli, slow_simulator, tmp_path, posts=20)
    try:
        refused = cli.run("runs", "resume", "1", check=False)

        assert refused.returncode == 1
        assert f"process {process.pid}" in refused.stderr and "being worked on" in refused.stderr
    finally:
        process.communicate(timeout=60)
    assert process.returncode == 0
    assert len(read_csv(out)) == RECORDS
    assert max(slow_simulator.stats()["messages_by_to"].values()) == 1


def test_send_kill_and_resume_on_postgresql(
    cli: Cli, slow_simulator: Simulator, tmp_path: Path
) -> None:
    with fresh_pg_schema() as database_url:
        cli.env["SMSLINK_DATABASE_URL"] = database_url
        cli.add_touchpoint(slow_simulator.base_url, "--concurrency", "4")
        process, out = _send_in_background(cli, slow_simulator, tmp_path)
        process.kill()
        process.communicate(timeout=60)

        cli.in_process.run("runs", "resume", "1")

        rows = read_csv(out)
        assert len(rows) == RECORDS and {r["status"] for r in rows} == {"delivered"}
        assert max(slow_simulator.stats()["messages_by_to"].values()) == 1
        assert not (cli.home / "smslink.db").exists()  # it really used PostgreSQL


def test_resume_after_changing_the_sender_sends_nobody_twice(cli: Cli, tmp_path: Path) -> None:
    other = "+14155550100"
    config = SimulatorConfig(
        auth_token=TOKEN, latency_ms=20, queued_s=0.05, sending_s=0.05, sent_s=0.1,
        owned_numbers=frozenset({"+15005550006", other}),
    )  # fmt: skip
    with run_in_thread(config) as base_url:
        simulator = Simulator(base_url)
        cli.add_touchpoint(base_url, "--concurrency", "4")
        process, out = _send_in_background(cli, simulator, tmp_path)
        process.kill()
        process.communicate(timeout=60)

        cli.in_process.run("connection", "update", "sim", "--from", other)
        cli.in_process.run("runs", "resume", "1")
        stats = simulator.stats()

    rows = read_csv(out)
    assert len(rows) == RECORDS and {r["status"] for r in rows} == {"delivered"}
    assert stats["messages"] == RECORDS
    assert max(stats["messages_by_to"].values()) == 1


def test_a_process_paused_past_its_lease_stops_instead_of_sending_twice(
    cli: Cli, slow_simulator: Simulator, tmp_path: Path
) -> None:
    cli.env["SMSLINK_LEASE_TTL_S"] = "3"  # trusted 2.25 s after each renewal
    cli.add_touchpoint(slow_simulator.base_url, "--concurrency", "4")
    first, out = _send_in_background(cli, slow_simulator, tmp_path)
    first.send_signal(signal.SIGSTOP)  # like Ctrl-Z, or a laptop lid closing
    try:
        time.sleep(4)  # the lease expires in the database
        # another process takes over and finishes the run
        cli.in_process.run("runs", "resume", "1")
    finally:
        first.send_signal(signal.SIGCONT)
    _, stderr = first.communicate(timeout=60)

    assert first.returncode == 1 and "lost its hold on run 1" in " ".join(stderr.split())
    rows = read_csv(out)
    assert len(rows) == RECORDS and {r["status"] for r in rows} == {"delivered"}
    # A request frozen half-written (headers out, body not) completes when the process
    # thaws; nothing can recall it, and the new owner could not see it. So at most the
    # frozen process's requests in flight (3 senders) can go twice; without the lease
    # check it would go on to send its whole claimed batch (~200) a second time.
    duplicates = slow_simulator.stats()["messages"] - RECORDS
    assert 0 <= duplicates <= 3
    assert "completed" in cli.in_process.run("runs", "show", "1").stdout


def test_runs_stop_stops_a_send_in_another_process_which_resumes_later(
    cli: Cli, slow_simulator: Simulator, tmp_path: Path
) -> None:
    """The Stop button's command: asked from another process, the sending process ends
    within about a second, exit 1, resumable; the resume sends each recipient once."""
    cli.add_touchpoint(slow_simulator.base_url, "--concurrency", "4")
    process, out = _send_in_background(cli, slow_simulator, tmp_path)

    asked = cli.in_process.run("runs", "stop", "1")
    started = time.monotonic()
    _, stderr = process.communicate(timeout=60)

    assert "Asked run 1 to stop" in asked.stdout
    assert time.monotonic() - started < 10  # within about a second (plus start-up slack)
    assert process.returncode == 1, stderr
    assert "stopped on request" in stderr and "smslink runs resume 1" in stderr
    assert slow_simulator.stats()["posts"] < RECORDS

    cli.in_process.run("runs", "resume", "1")

    rows = read_csv(out)
    assert {r["status"] for r in rows} == {"delivered"} and len(rows) == RECORDS
    stats = slow_simulator.stats()
    assert stats["messages"] == RECORDS and max(stats["messages_by_to"].values()) == 1
    nothing = cli.in_process.run("runs", "stop", "1")
    assert "nothing is sending it" in nothing.stdout
