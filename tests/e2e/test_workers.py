"""Runs sent by several `smslink worker` processes on the local PostgreSQL: nothing sent
twice or lost when workers are killed or paused mid-run."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs

import psycopg
import pytest
import redis
import requests

from smslink.app import Config, open_app
from smslink.jobs import conninfo_of
from smslink.simulator import SimulatorConfig, run_in_thread
from tests.clikit import TOKEN, Simulator, audience, read_csv, write_csv
from tests.e2e.conftest import Cli
from tests.e2e.test_serve_restart import _serve
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

    time.sleep(2.5)  # a heartbeat: each worker's row says what it sent
    listing = pg_cli.run("workers").stdout
    lines = [line for line in listing.splitlines() if "s ago" in line]
    assert len(lines) == 2, listing
    assert sum(int(line.split("│")[4].strip().replace(",", "")) for line in lines) == 300, listing


REDIS_URL = os.environ.get("SMSLINK_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

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


#: Loaded into the workers of the freeze test (PYTHONPATH): the first worker to POST after
#: the test drops the file `freeze` in FREEZE_DIR stops itself (SIGSTOP) between the
#: client's check of its lease and its request, as a process paused at that very point.
FREEZE_HOOK = """
import os, signal
from pathlib import Path
from smslink.twilio import client

_request_once = client.TwilioClient._request_once
FREEZE = Path(os.environ["FREEZE_DIR"])

async def _frozen_first(self, method, url, body, *args, **kwargs):
    mine = FREEZE / f"frozen-{os.getpid()}"
    if method == "POST" and (FREEZE / "freeze").exists():
        try:
            (FREEZE / "freeze").rename(mine)  # one worker wins it
        except OSError:
            pass
        else:
            mine.write_bytes(body)
            os.kill(os.getpid(), signal.SIGSTOP)
    return await _request_once(self, method, url, body, *args, **kwargs)

client.TwilioClient._request_once = _frozen_first
"""


def test_a_worker_frozen_between_its_lease_check_and_a_post_sends_nothing_when_it_thaws(
    pg_cli: Cli, workers: Workers, tmp_path: Path
) -> None:
    """A worker stops (SIGSTOP) after its lease said yes to a POST and before the request
    left. The other worker takes its parts over, finds no such message at Twilio and
    sends it. When the frozen worker thaws, its request must not go out: asked again as
    its bytes are written, the lease has passed. (Before that second check, every freeze
    at this point sent the recipient a second message; RESULTS §21.)"""
    config = SimulatorConfig(auth_token=TOKEN, queued_s=0.05, sending_s=0.05, sent_s=0.1)
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(FREEZE_HOOK)
    freeze = tmp_path / "freeze"
    freeze.mkdir()
    records = 4000
    with run_in_thread(config) as base_url:
        simulator = Simulator(base_url)
        pg_cli.add_touchpoint(base_url)
        paths = [str(hook), *filter(None, [pg_cli.env.get("PYTHONPATH")])]
        pg_cli.env.update(PYTHONPATH=os.pathsep.join(paths), FREEZE_DIR=str(freeze))
        fleet = workers.start(
            2, "--concurrency", "25", "--jobs", "32", "--stalled-s", "1", "--lease-s", "3"
        )
        source = _distinct_recipients(tmp_path / "many.csv", records)
        output = tmp_path / "results.csv"
        sending = pg_cli.start(
            "send", "hello", "--input", str(source), "--output", str(output), "--queue"
        )
        _wait_for_posts(simulator, records // 5, sending)
        (freeze / "freeze").touch()
        deadline = time.monotonic() + 60
        while not (frozen := list(freeze.glob("frozen-*"))) or not frozen[0].read_bytes():
            assert time.monotonic() < deadline, "no worker froze"
            time.sleep(0.01)
        pid = int(frozen[0].name.removeprefix("frozen-"))
        [worker] = [w for w in fleet if w.pid == pid]
        to = parse_qs(frozen[0].read_text())["To"][0]
        # Until the other worker has taken the part over and sent that message itself.
        while not any(m["to"] == to for m in simulator.messages().values()):
            assert time.monotonic() < deadline, f"nobody sent {to} while the worker was frozen"
            assert _state(pid) == "T", "the worker was not frozen"
            time.sleep(0.1)
        worker.send_signal(signal.SIGCONT)
        out, err = sending.communicate(timeout=300)
        assert sending.returncode == 0, f"send exited {sending.returncode}\n{out}\n{err}"
        time.sleep(1)  # a request the thawed worker let go would have landed by now
        messages = simulator.messages()
    rows = read_csv(output)
    assert [m["to"] for m in messages.values()].count(to) == 1
    assert len(messages) == len(rows) == records
    assert len({m["to"] for m in messages.values()}) == records
    for row in rows:
        assert messages[row["message_sid"]]["to"] == row["phone"]


def _state(pid: int) -> str:
    """A process's state letter (R running, S sleeping, T stopped, ...)."""
    return Path(f"/proc/{pid}/stat").read_text().rpartition(") ")[2][:1]


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


@pytest.fixture
def redis_url() -> str:
    """The local Redis that workers share their pacing through; skips without one."""
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except redis.RedisError as error:
        pytest.skip(f"Redis at {REDIS_URL} unreachable: {error}")
    return REDIS_URL


def _forget_pacing(url: str, base_url: str, rate_key_part: str) -> None:
    """Delete what an earlier run left in Redis for this simulator's account window (its
    base URL's digest is in the key) and for the capped sender."""
    client = redis.Redis.from_url(url)
    digest = hashlib.sha256(base_url.encode()).hexdigest()[:12]
    for pattern in (f"*{digest}*", f"*{rate_key_part}*"):
        for key in client.scan_iter(match=pattern):
            client.delete(key)
    client.close()


def test_workers_together_stay_under_the_accounts_concurrency_limit(
    pg_cli: Cli, workers: Workers, tmp_path: Path, redis_url: str
) -> None:
    """4 workers of 25 requests each against an account that allows 20 at once: the
    shared window learns the limit for all of them, so under 5% of POSTs get a 429."""
    config = SimulatorConfig(
        auth_token=TOKEN, queued_s=0.05, sending_s=0.05, sent_s=0.1,
        latency_ms=50, concurrency_limit=20,
    )  # fmt: skip
    with run_in_thread(config) as base_url:
        simulator = Simulator(base_url)
        _forget_pacing(redis_url, base_url, "no-rate-here")
        pg_cli.env["SMSLINK_REDIS_URL"] = redis_url
        pg_cli.add_touchpoint(base_url, "--concurrency", "100")
        workers.start(4, "--concurrency", "25")
        source = _distinct_recipients(tmp_path / "a.csv", 2000)
        output = tmp_path / "results.csv"
        pg_cli.run("send", "hello", "--input", str(source), "--output", str(output), "--queue")
        stats = simulator.stats()
    assert len(read_csv(output)) == 2000
    assert stats["messages"] == 2000
    assert stats["throttled"] < 0.05 * stats["posts"], stats


def test_workers_together_keep_a_senders_segment_cap(
    pg_cli: Cli, workers: Workers, tmp_path: Path, redis_url: str
) -> None:
    """4 workers on a sender capped at 50 segments a second, which Twilio queues for only
    2 seconds before refusing with 21611: together they send within 5% of the cap, and
    no message is refused."""
    config = SimulatorConfig(
        auth_token=TOKEN, queued_s=0.05, sending_s=0.05, sent_s=0.1,
        sender_mps=50, sender_queue_s=2,
    )  # fmt: skip
    records = 1000
    with run_in_thread(config) as base_url:
        simulator = Simulator(base_url)
        _forget_pacing(redis_url, base_url, "+15005550006:50")
        pg_cli.env["SMSLINK_REDIS_URL"] = redis_url
        pg_cli.add_touchpoint(base_url, "--max-segments-per-second", "50")
        workers.start(4, "--concurrency", "25")
        source = _distinct_recipients(tmp_path / "a.csv", records)
        output = tmp_path / "results.csv"
        pg_cli.run("send", "hello", "--input", str(source), "--output", str(output), "--queue")
        stats = simulator.stats()
        created = sorted(m["created"] for m in simulator.timeline()["messages"])
    rows = read_csv(output)
    assert {row["status"] for row in rows} == {"delivered"}, Counter(r["status"] for r in rows)
    assert stats["queue_full"] == 0 and stats["messages"] == records
    rate = (records - 1) / (created[-1] - created[0])
    assert 47.5 <= rate <= 52.5, rate


def test_a_journey_and_a_campaign_on_one_connection_both_progress_across_workers(
    pg_cli: Cli, workers: Workers, tmp_path: Path, redis_url: str
) -> None:
    """The service queues journey records for the workers (SMSLINK_WORKERS=on) while a
    campaign capped at 40 segments a second goes out on the same connection, each on a
    worker of its own queue: the journey's records go out while the campaign is still
    sending, and both end exactly once."""
    config = SimulatorConfig(auth_token=TOKEN, queued_s=0.05, sending_s=0.05, sent_s=0.1)
    pg_cli.env.update(
        SMSLINK_PASSWORD="correct horse battery",
        SMSLINK_REDIS_URL=redis_url,
        SMSLINK_WORKERS="on",
    )
    campaign_size, journey_size = 400, 20
    with run_in_thread(config) as base_url:
        simulator = Simulator(base_url)
        _forget_pacing(redis_url, base_url, "+15005550006:40")
        pg_cli.in_process.run("user", "add", "ada", "--role", "marketer")
        pg_cli.add_touchpoint(base_url, "--max-segments-per-second", "40")
        auth = _token(pg_cli.env["SMSLINK_DATABASE_URL"])
        # One worker for campaigns, one for journeys (queues), as a deployment may split them.
        workers.start(1, "--concurrency", "10", "--queue", "sending", "--queue", "tracking")
        workers.start(1, "--concurrency", "10", "--queues", "journeys")
        service, url = _serve(pg_cli)
        try:
            source = _distinct_recipients(tmp_path / "campaign.csv", campaign_size)
            output = tmp_path / "results.csv"
            campaign = pg_cli.start(
                "send", "hello", "--input", str(source), "--output", str(output), "--queue"
            )
            _wait_for_posts(simulator, 40, campaign)
            accepted: dict[str, float] = {}
            for i in range(journey_size):
                phone = f"+1917555{i:04d}"
                answer = requests.post(
                    url + "/api/touchpoints/hello/messages",
                    headers=auth,
                    json={"identity": {"id": f"J{i}"}, "fields": {"phone": phone, "name": "J"}},
                    timeout=10,
                )
                assert answer.status_code == 202, answer.text
                accepted[phone] = time.time()
                time.sleep(0.1)
            out, err = campaign.communicate(timeout=120)
            assert campaign.returncode == 0, f"{out}\n{err}"
            deadline = time.monotonic() + 30
            while len(simulator.messages()) < campaign_size + journey_size:
                assert time.monotonic() < deadline, len(simulator.messages())
                time.sleep(0.2)
        finally:
            service.send_signal(signal.SIGINT)
            service.wait(timeout=30)
        timeline = simulator.timeline()["messages"]
    created = {m["to"]: m["created"] for m in timeline}
    assert len(timeline) == campaign_size + journey_size == len(created)  # one each
    campaign_end = max(t for to, t in created.items() if to not in accepted)
    journey_created = [created[phone] for phone in accepted]
    # The journey did not wait for the campaign: its records went out while it was sending.
    assert sum(t < campaign_end for t in journey_created) >= journey_size // 2, (
        campaign_end,
        journey_created,
    )
    assert len(read_csv(output)) == campaign_size


def _token(database_url: str) -> dict[str, str]:
    """An Authorization header with a new API token of ada's."""
    with open_app(Config(database_url=database_url)) as app:
        [user] = [u for u in app.users.list() if u.name == "ada"]
        _, secret = app.users.create_token(user.id, "journey")
    return {"Authorization": f"Bearer {secret}"}


def test_a_worker_stopped_with_sigterm_gives_its_parts_back_at_once(
    pg_cli: Cli, simulator: Simulator, workers: Workers, tmp_path: Path
) -> None:
    """SIGTERM: the worker finishes its requests in flight, releases what it claimed and
    queues its parts again, and exits; the other worker sends them without waiting for
    the (here 60 s) lease or stall detection to notice anything."""
    pg_cli.add_touchpoint(simulator.base_url, "--max-segments-per-second", "100")
    leaving, staying = workers.start(
        2, "--concurrency", "10", "--stalled-s", "60", "--lease-s", "60"
    )
    source = _distinct_recipients(tmp_path / "a.csv", 1500)
    output = tmp_path / "results.csv"
    sending = pg_cli.start(
        "send", "hello", "--input", str(source), "--output", str(output), "--queue"
    )
    _wait_for_posts(simulator, 300, sending)
    shown = pg_cli.run("runs", "show", "1").stdout
    assert "worked on by" in shown and f"pid {leaving.pid} (" in shown, shown
    assert "the run" in shown  # its tracking
    leaving.terminate()
    stopped_at = time.monotonic()
    assert leaving.wait(timeout=15) == 0
    left_after_s = time.monotonic() - stopped_at
    out, err = sending.communicate(timeout=120)
    finished_after_s = time.monotonic() - stopped_at
    assert sending.returncode == 0, f"{out}\n{err}"
    assert staying.poll() is None
    assert left_after_s < 10
    # The rest (1,200 at 100 a second) took its time, not a minute of waiting for leases.
    assert finished_after_s < 40, finished_after_s
    messages = simulator.messages()
    assert len(messages) == 1500
    assert len({m["to"] for m in messages.values()}) == 1500
    assert len(read_csv(output)) == 1500


def test_a_queued_run_stopped_on_request_is_finished_by_resume_queue(
    pg_cli: Cli, simulator: Simulator, workers: Workers, tmp_path: Path
) -> None:
    """`runs stop` reaches every worker sending the run: all its parts stop resumably and
    so does its tracking; `runs resume --queue` has the workers finish it, each recipient
    getting one message."""
    pg_cli.add_touchpoint(simulator.base_url, "--max-segments-per-second", "50")
    workers.start(2, "--concurrency", "10")
    source = _distinct_recipients(tmp_path / "a.csv", 500)
    output = tmp_path / "results.csv"
    sending = pg_cli.start(
        "send", "hello", "--input", str(source), "--output", str(output), "--queue"
    )
    _wait_for_posts(simulator, 100, sending)
    pg_cli.run("runs", "stop", "1")
    out, err = sending.communicate(timeout=60)
    assert sending.returncode == 1, f"{out}\n{err}"
    assert "stopped on request" in err and "runs resume 1 --queue" in err
    time.sleep(1.5)  # requests in flight land
    posted_when_stopped = simulator.stats()["posts"]
    time.sleep(2)
    assert simulator.stats()["posts"] == posted_when_stopped < 500  # nothing more went out
    assert "stopped" in pg_cli.run("runs", "show", "1").stdout

    pg_cli.run("runs", "resume", "1", "--queue")
    rows = read_csv(output)
    messages = simulator.messages()
    assert len(rows) == 500 and len(messages) == 500
    assert len({m["to"] for m in messages.values()}) == 500
    assert {row["status"] for row in rows} == {"delivered"}


def test_jobs_lost_from_the_queue_are_queued_again_by_the_workers(
    pg_cli: Cli, simulator: Simulator, workers: Workers, tmp_path: Path
) -> None:
    """A queued run whose jobs vanished (procrastinate deletes a job that a worker paused
    past its leases finishes late, although it was queued again for another): the
    workers see its parts and tracking held by nobody and queue them again."""
    pg_cli.add_touchpoint(simulator.base_url)
    source = _distinct_recipients(tmp_path / "a.csv", 200)
    output = tmp_path / "results.csv"
    sending = pg_cli.start(
        "send", "hello", "--input", str(source), "--output", str(output), "--queue"
    )
    url = pg_cli.env["SMSLINK_DATABASE_URL"]
    deadline = time.monotonic() + 30
    while _jobs(url) < 2:  # its tracking and at least one part, waiting: no worker yet
        assert sending.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    time.sleep(1)  # every part queued
    with _connect(url) as conn:
        conn.execute("DELETE FROM procrastinate_jobs")
    workers.start(1, "--concurrency", "10")
    out, err = sending.communicate(timeout=90)
    assert sending.returncode == 0, f"{out}\n{err}"
    assert len(simulator.messages()) == 200
    assert len(read_csv(output)) == 200


def _connect(url: str) -> psycopg.Connection:
    return psycopg.connect(conninfo_of(url), autocommit=True)


def _jobs(url: str) -> int:
    with _connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM procrastinate_jobs").fetchone()
    return int(row[0]) if row else 0
