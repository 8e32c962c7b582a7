"""Runs sent by several `smslink worker` processes on the local PostgreSQL: nothing sent
twice or lost when workers are killed or paused mid-run."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from smslink.simulator import SimulatorConfig, run_in_thread
from tests.clikit import TOKEN, Simulator, audience, read_csv, write_csv
from tests.e2e.conftest import Cli
from tests.pg import fresh_pg_schema


@pytest.fixture
def pg_cli(cli: Cli) -> Iterator[Cli]:
    """The test's commands on a fresh PostgreSQL schema (the shared store of workers)."""
    with fresh_pg_schema() as url:
        cli.env["SMSLINK_DATABASE_URL"] = url
        yield cli


class Workers:
    """Worker processes of one test, stopped at its end whatever happened."""

    def __init__(self, cli: Cli) -> None:
        self._cli = cli
        self.processes: list[subprocess.Popen] = []

    def start(self, count: int, *options: str) -> list[subprocess.Popen]:
        started = [self._cli.start("worker", *options) for _ in range(count)]
        self.processes += started
        return started

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            for stream in (process.stdout, process.stderr):
                if stream:
                    stream.close()


@pytest.fixture
def workers(pg_cli: Cli) -> Iterator[Workers]:
    started = Workers(pg_cli)
    yield started
    started.stop_all()


def test_two_workers_send_a_run_queued_by_send(
    pg_cli: Cli, simulator: Simulator, workers: Workers, tmp_path: Path
) -> None:
    pg_cli.add_touchpoint(simulator.base_url)
    workers.start(2, "--concurrency", "10")
    source = audience(tmp_path / "a.csv", 300)
    output = tmp_path / "results.csv"
    pg_cli.run("send", "hello", "--input", str(source), "--output", str(output), "--queue")

    rows = read_csv(output)
    assert len(rows) == 300
    sent = simulator.messages()
    assert len(sent) == 300
    assert {row["status"] for row in rows} == {"delivered"}
    assert sorted(m["to"] for m in sent.values()) == sorted(row["phone"] for row in rows)


#: Records of the run that loses workers (the issue's figure); distinct recipients.
MANY = int(os.environ.get("SMSLINK_TEST_WORKER_RECORDS", "20000"))


def test_killed_and_paused_workers_lose_nothing_and_send_nothing_twice(
    pg_cli: Cli, workers: Workers, tmp_path: Path
) -> None:
    """4 workers and MANY records: two workers SIGKILLed mid-run, one SIGSTOPped past its
    leases and woken: every record has one result, every recipient one message, every
    result is the simulator's final status of that message."""
    config = SimulatorConfig(
        auth_token=TOKEN,
        queued_s=0.05,
        sending_s=0.05,
        sent_s=0.1,
        undelivered_share=0.1,
        failed_share=0.05,
        seed=11,
    )
    with run_in_thread(config) as base_url:
        simulator = Simulator(base_url)
        pg_cli.add_touchpoint(base_url)
        source = _distinct_recipients(tmp_path / "many.csv", MANY)
        output = tmp_path / "results.csv"
        fleet = workers.start(4, "--concurrency", "25", "--stalled-s", "4", "--lease-s", "6")
        sending = pg_cli.start(
            "send", "hello", "--input", str(source), "--output", str(output), "--queue"
        )
        _wait_for_posts(simulator, MANY // 5, sending)
        fleet[0].kill()  # SIGKILL: no goodbye, its parts and requests in flight left as they are
        _wait_for_posts(simulator, MANY * 2 // 5, sending)
        fleet[1].kill()
        _wait_for_posts(simulator, MANY // 2, sending)
        fleet[2].send_signal(signal.SIGSTOP)  # paused past its leases (6 s) and stall (4 s)
        time.sleep(12)
        fleet[2].send_signal(signal.SIGCONT)
        out, err = sending.communicate(timeout=600)
        assert sending.returncode == 0, f"send exited {sending.returncode}\n{out}\n{err}"

        rows = read_csv(output)
        messages = simulator.messages()
    assert len(rows) == MANY
    assert sorted(int(row["id"][1:]) for row in rows) == list(range(MANY))
    by_to = Counter(m["to"] for m in messages.values())
    assert len(messages) == MANY and set(by_to.values()) == {1}, by_to.most_common(3)
    for row in rows:
        message = messages[row["message_sid"]]
        assert message["to"] == row["phone"]
        assert row["status"] == message["status"], (row, message)
    statuses = Counter(row["status"] for row in rows)
    assert statuses["delivered"] and statuses["undelivered"] and statuses["failed"], statuses


def _distinct_recipients(path: Path, count: int) -> Path:
    """`count` records, each to a different valid number (two area codes of 10,000)."""
    area = ("212", "646", "718", "917")
    rows = [
        [f"C{i:05d}", f"Name{i}", f"+1{area[i // 10000]}555{i % 10000:04d}"] for i in range(count)
    ]
    return write_csv(path, ["id", "name", "phone"], rows)


def _wait_for_posts(simulator: Simulator, at_least: int, sending: subprocess.Popen) -> None:
    """Until the simulator has seen `at_least` creates (the send must still be running)."""
    deadline = time.monotonic() + 300
    while simulator.stats()["posts"] < at_least:
        assert sending.poll() is None, "the send ended before the workers were disturbed"
        assert time.monotonic() < deadline, simulator.stats()
        time.sleep(0.1)
