"""Journeys streamed: records at a steady rate into `smslink serve`, timed to Twilio and back.

Not a test. Four processes on one machine (one clock, `time.time()` on every side):

* the simulator (`smslink simulator`), which posts signed status callbacks to the service
  and keeps, per message, when it was created, when it reached its final status and when
  each of its callbacks was posted and answered (`GET /_timeline`);
* the service (`smslink serve`, started by this file with `--serve-worker` so that an
  SQLAlchemy listener counts every write statement and write transaction of the process);
  its connection has a callback base URL (callbacks on, polling every 10 s the fallback),
  and a webhook subscription for the touchpoint points at
* the subscriber (this file with `--subscriber-worker`): an aiohttp server that answers
  every event 204 and notes when each final event (`status` not null) arrived;
* this process, the journey: `--rate` records a second for `--seconds`, `--batch` records
  a request (`POST /api/touchpoints/journey/messages`, bearer token), each request started
  on a schedule (k / requests-per-second after the start, never back to back) with at most
  `--client-concurrency` in flight. Every record has its own phone number, which is how a
  simulator message is matched to its record.

After a warm-up (the standing run started, its first events delivered) the stream runs,
then the bench waits until every accepted record's final event reached the subscriber.

Figures, each record's own, as p50 / p95 / p99 / max:

* accept -> create: the 202's arrival at the client to the simulator's create of that
  record's message (negative when the message was created before the 202 reached the
  client); split at the delivery's `claimed_at` (the store: when the sender took it) into
  "202 -> claimed" and "claimed -> create";
* final status -> event: the moment the simulator's message became `delivered` to the
  subscriber receiving the delivery's final event. When the final callback got a 2xx, it is
  split at that callback's POST (its start and its answer) and at the final event's
  `timestamp` (when the service stored it); a final found by polling instead is counted
  apart.

Also: requests sent late by the client (it, the simulator and the service share the
cores); a probe's GET of a static file every 0.25 s (how long anything waits for the
service's event loop); the rate the service sustained; exactly once (every accepted record
created once, no recipient twice, one final event per message created); store writes per
delivery (statements by table, rows, write transactions) from the end of the warm-up to the
end of the drain; each process's CPU; and, in `--json`, the per-second counts of 202s,
creates, events and final events.

    python bench/journey_stream.py --rate 200 --seconds 60
    python bench/journey_stream.py --rate 200 --seconds 60 --batch 20
    python bench/journey_stream.py --rate 50 --seconds 10    # a quick try
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import json
import os
import re
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from send_throughput import (  # noqa: E402  (bench/ is not a package)
    FROM_NUMBER,
    SMSLINK,
    Simulator,
    account_sid,
    base_env,
    free_port,
    phone_numbers,
)

TOUCHPOINT = "journey"
MESSAGE = "Hi <Name>, your code is <Code>"
ADMIN, PASSWORD = "bench", "bench password 1"
#: The issue's targets.
ACCEPT_TO_CREATE_P99_MS = 100.0
FINAL_TO_EVENT_P99_S = 1.0
WARMUP_RECORDS = 20
IDLE_S = 5.0
_WRITE = re.compile(
    r"^\s*(INSERT(?:\s+OR\s+\w+)?\s+INTO|UPDATE|DELETE\s+FROM)\s+\"?(\w+)", re.IGNORECASE
)


# -- the service, with its writes counted (a child process) ------------------------------------


class WriteCounter:
    """Write statements (by verb and table), rows they wrote, and write transactions.

    Rows: an executemany's parameter sets; else the driver's rowcount, except that a
    statement with RETURNING counts 1 (its rowcount is 0 until its rows are fetched).
    A write transaction is a commit after at least one write statement on that connection;
    transactions are also counted by kind, the set of statements (verb and table) in them.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.statements: Counter[str] = Counter()
        self.rows: Counter[str] = Counter()
        self.transactions: Counter[str] = Counter()
        self.write_transactions = 0
        self.commits = 0

    def install(self) -> None:
        """Listen on every SQLAlchemy engine the process will create."""
        from sqlalchemy import event
        from sqlalchemy.engine import Engine

        event.listen(Engine, "after_cursor_execute", self._executed)
        event.listen(Engine, "commit", self._committed)
        event.listen(Engine, "rollback", self._rolled_back)

    def _executed(
        self,
        conn: Any,
        cursor: Any,
        statement: str,
        parameters: Any,
        context: Any,
        executemany: bool,
    ) -> None:
        found = _WRITE.match(statement)
        if found is None:
            return
        key = f"{found.group(1).split()[0].upper()} {found.group(2).lower()}"
        if executemany:
            rows = len(parameters)
        elif " RETURNING " in statement.upper():
            rows = 1  # the driver's rowcount says 0 until the rows are fetched
        else:
            rows = max(cursor.rowcount, 0)
        with self.lock:
            self.statements[key] += 1
            self.rows[key] += rows
        conn.info.setdefault("bench_wrote", set()).add(key)

    def _committed(self, conn: Any) -> None:
        wrote = conn.info.pop("bench_wrote", None)
        with self.lock:
            self.commits += 1
            if wrote:
                self.write_transactions += 1
                self.transactions[" + ".join(sorted(wrote))] += 1

    def _rolled_back(self, conn: Any) -> None:
        conn.info.pop("bench_wrote", None)

    def dump(self, path: Path) -> None:
        with self.lock:
            data = {
                "statements": dict(self.statements),
                "rows": dict(self.rows),
                "transactions": dict(self.transactions),
                "write_transactions": self.write_transactions,
                "commits": self.commits,
                "at": time.time(),
            }
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, path)


def profiled(path: Path) -> None:
    """Profile the calling thread (the service's event loop: uvicorn runs it in the main
    thread) by CPU time, not wall time, until the process exits; pstats text to `path`."""
    import cProfile
    import io
    import pstats

    profile = cProfile.Profile(time.thread_time)

    def dump() -> None:
        profile.disable()
        out = io.StringIO()
        stats = pstats.Stats(profile, stream=out)
        stats.sort_stats("tottime").print_stats(40)
        stats.sort_stats("cumulative").print_stats(120)
        path.write_text(out.getvalue())

    atexit.register(dump)
    profile.enable()


def serve_worker(port: int, counts: Path, profile: Path | None = None) -> None:
    """`smslink serve --port PORT` in this process, its writes dumped to `counts` 5x a
    second; with `profile`, its event loop's CPU by function there at exit."""
    counter = WriteCounter()
    counter.install()
    if profile is not None:
        profiled(profile)

    def dump_often() -> None:
        while True:
            counter.dump(counts)
            time.sleep(0.2)

    threading.Thread(target=dump_often, daemon=True).start()
    atexit.register(counter.dump, counts)
    from smslink.cli import main as smslink_main

    sys.argv = ["smslink", "serve", "--port", str(port)]
    smslink_main()


# -- the subscriber (a child process) ---------------------------------------------------------


def subscriber_worker() -> None:
    """Answer every webhook 204; note each final event's arrival; print the port."""
    from aiohttp import web

    finals: list[dict[str, Any]] = []
    events = Counter[str]()
    arrivals: list[float] = []  # every event's

    async def take(request: web.Request) -> web.Response:
        body = await request.read()
        at = time.time()
        event = json.loads(body)
        arrivals.append(at)
        events[event.get("twilio_status") or "none"] += 1
        if event.get("status") is not None:
            finals.append(
                {
                    "at": at,
                    "delivery_id": event["delivery_id"],
                    "event_id": event["event_id"],
                    "message_sid": event["message_sid"],
                    "status": event["status"],
                    "timestamp": event["timestamp"],
                }
            )
        return web.Response(status=204)

    async def count(_request: web.Request) -> web.Response:
        return web.json_response({"finals": len(finals), "events": sum(events.values())})

    async def received(_request: web.Request) -> web.Response:
        return web.json_response({"finals": finals, "events": dict(events), "arrivals": arrivals})

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/hook", take)
        app.router.add_get("/count", count)
        app.router.add_get("/received", received)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        print(runner.addresses[0][1], flush=True)
        await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())


# -- the bench ----------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=200.0, help="records a second")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to stream")
    parser.add_argument("--batch", type=int, default=1, help="records a request")
    parser.add_argument("--client-concurrency", type=int, default=64)
    parser.add_argument("--latency-ms", type=float, default=50.0, help="the simulator's")
    parser.add_argument("--concurrency", type=int, default=50, help="the connection's")
    parser.add_argument("--drain-timeout-s", type=float, default=3600.0)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument(
        "--profile-service",
        type=Path,
        default=None,
        help="profile the service's event loop (CPU time, cProfile); pstats text to this file",
    )
    return parser.parse_args(argv)


def get_json(url: str, timeout_s: float = 60.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout_s) as answer:
        return json.load(answer)


def cpu_of(pid: int) -> float:
    import psutil

    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def busy_s() -> float:
    """CPU seconds the whole machine has spent busy (all processes, all cores)."""
    import psutil

    times = psutil.cpu_times()
    not_busy = ("idle", "iowait", "guest", "guest_nice")
    return sum(times) - sum(getattr(times, name, 0.0) for name in not_busy)


def percentiles(values: Iterable[float]) -> dict[str, float]:
    """n, p50, p95, p99 (nearest rank) and max of `values`."""
    ordered = sorted(values)
    if not ordered:
        return {"n": 0}

    def rank(p: int) -> float:
        return ordered[min(len(ordered) - 1, max(0, -(-len(ordered) * p // 100) - 1))]

    return {
        "n": len(ordered),
        "p50": rank(50),
        "p95": rank(95),
        "p99": rank(99),
        "max": ordered[-1],
    }


@dataclass
class Sent:
    """One record as the journey sent it."""

    phone: str
    scheduled: float  # epoch s: when its request was due
    started: float = 0.0  # epoch s: when its request went out (a client slot was free)
    answered: float = 0.0  # epoch s: the 202 read
    status: str = ""  # the record's answer (queued), or the HTTP failure
    delivery_id: str | None = None


@dataclass
class Children:
    """The processes this bench started, stopped in reverse order."""

    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            cmd,
            env=env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for proc in reversed(self.procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def smslink_cli(env: dict[str, str], *args: str) -> None:
    done = subprocess.run([SMSLINK, *args], env=env, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"smslink {' '.join(args[:2])} failed: {done.stdout}{done.stderr}")


def configure(
    home: Path,
    env: dict[str, str],
    sim: Simulator,
    service: str,
    hook: str,
    args: argparse.Namespace,
) -> str:
    """Connection (callbacks on), touchpoint, an administrator, its API token and the
    webhook subscription; the token's Authorization header value."""
    smslink_cli(
        env, "connection", "add", TOUCHPOINT, "--account-sid", account_sid(),
        "--from", FROM_NUMBER, "--base-url", sim.base_url,
        "--concurrency", str(args.concurrency), "--callback-base-url", service,
    )  # fmt: skip
    smslink_cli(
        env, "touchpoint", "add", TOUCHPOINT, "--connection", TOUCHPOINT, "--message", MESSAGE,
        "--phone", "phone", "--map", "Name=name", "--map", "Code=code",
    )  # fmt: skip
    smslink_cli(env, "user", "add", ADMIN, "--role", "admin")
    os.environ["SMSLINK_HOME"] = str(home)  # the store's key lives there: same secrets
    from smslink.app import open_app

    with open_app() as app:
        [user] = [u for u in app.users.list() if u.name == ADMIN]
        _, token = app.users.create_token(user.id, "bench")
        app.webhooks.add(hook, TOUCHPOINT, created_by=ADMIN)
    return f"Bearer {token}"


def body_of(records: list[tuple[int, str]]) -> bytes:
    def one(i: int, phone: str) -> dict[str, Any]:
        fields = {"phone": phone, "name": "Ada", "code": f"{i:06d}"}
        return {"identity": {"CustomerID": f"C-{i}"}, "fields": fields}

    if len(records) == 1:
        return json.dumps(one(*records[0])).encode()
    return json.dumps({"records": [one(i, p) for i, p in records]}).encode()


async def stream(
    url: str, auth: str, sent: list[Sent], first: int, batch: int, per_s: float, limit: int
) -> None:
    """POST `sent` `batch` records a request, request k due at start + k / per_s."""
    import aiohttp

    gate = asyncio.Semaphore(limit)
    headers = {"Authorization": auth, "Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=limit)
    timeout = aiohttp.ClientTimeout(total=120)

    async def post(session: aiohttp.ClientSession, group: list[Sent], offset: int) -> None:
        data = body_of([(first + offset + j, s.phone) for j, s in enumerate(group)])
        async with gate:
            started = time.time()
            for s in group:
                s.started = started
            try:
                async with session.post(url, data=data, headers=headers) as answer:
                    text = await answer.read()
                    answered = time.time()
                    if answer.status != 202:
                        raise RuntimeError(f"HTTP {answer.status}: {text[:200]!r}")
                    records = json.loads(text)["records"]
            except Exception as error:  # counted and reported
                for s in group:
                    s.status = f"failed: {type(error).__name__}: {error}"[:200]
                return
        for s, record in zip(group, records, strict=True):
            s.answered, s.status, s.delivery_id = answered, record["status"], record["id"]

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        tasks = []
        start = time.time() + 0.2
        for k, offset in enumerate(range(0, len(sent), batch)):
            due = start + k / per_s
            group = sent[offset : offset + batch]
            for s in group:
                s.scheduled = due
            delay = due - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(post(session, group, offset)))
        await asyncio.gather(*tasks)


class Probe:
    """GET a static file of the service every `every_s` from a thread of its own: how long
    anything at all waits for the service's event loop (and its middleware)."""

    def __init__(self, url: str, every_s: float = 0.25) -> None:
        self.url, self.every_s = url, every_s
        self.samples: list[tuple[float, float]] = []  # (epoch s sent, seconds to answer)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Probe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            sent = time.time()
            with contextlib.suppress(OSError), urllib.request.urlopen(self.url, timeout=60) as r:
                r.read()
                self.samples.append((sent, time.time() - sent))

    def between(self, start: float, end: float) -> list[float]:
        return [took * 1000 for sent, took in self.samples if start <= sent < end]


def wait_finals(hook_origin: str, expected: int, timeout_s: float) -> int:
    """Wait until the subscriber has `expected` final events, or nothing came for a while."""
    deadline = time.monotonic() + timeout_s
    last, last_change = -1, time.monotonic()
    while True:
        got = int(get_json(f"{hook_origin}/count")["finals"])
        if got >= expected:
            return got
        if got != last:
            last, last_change = got, time.monotonic()
        if time.monotonic() > deadline or time.monotonic() - last_change > 120:
            return got
        time.sleep(0.2)


def read_counts(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def counts_delta(after: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    def minus(key: str) -> dict[str, int]:
        keys = set(after[key]) | set(before[key])
        delta = {k: after[key].get(k, 0) - before[key].get(k, 0) for k in keys}
        return {k: v for k, v in sorted(delta.items()) if v}

    return {
        "statements": minus("statements"),
        "rows": minus("rows"),
        "transactions": minus("transactions"),
        "write_transactions": after["write_transactions"] - before["write_transactions"],
        "commits": after["commits"] - before["commits"],
    }


def epoch(stored: str | None) -> float | None:
    """A SQLite UTCDateTime (naive UTC text) or an ISO timestamp as epoch seconds."""
    if stored is None:
        return None
    moment = datetime.fromisoformat(stored)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def store_times(db: Path) -> dict[str, float | None]:
    """claimed_at per delivery id, read from the store once everything is final."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        rows = conn.execute("SELECT run_id, seq, claimed_at FROM deliveries").fetchall()
    return {f"{run}-{seq + 1}": epoch(claimed) for run, seq, claimed in rows}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    n = round(args.rate * args.seconds)
    n -= n % args.batch
    per_s = args.rate / args.batch
    work = Path(tempfile.mkdtemp(prefix="journey-bench-"))
    home = work / "home"
    env = base_env(home)
    env["SMSLINK_PASSWORD"] = PASSWORD
    os.environ["TWILIO_AUTH_TOKEN"] = env["TWILIO_AUTH_TOKEN"]
    port = free_port()
    service = f"http://127.0.0.1:{port}"
    counts = work / "writes.json"
    children = Children()
    phones = phone_numbers(WARMUP_RECORDS + n)
    warm = [Sent(p, 0.0) for p in phones[:WARMUP_RECORDS]]
    sent = [Sent(p, 0.0) for p in phones[WARMUP_RECORDS:]]
    print(
        f"{n:,} records at {args.rate:g}/s for {args.seconds:g} s, {args.batch} a request "
        f"({per_s:g} requests/s, at most {args.client_concurrency} in flight); simulator "
        f"latency {args.latency_ms:g} ms; nproc {os.cpu_count()}, python {sys.version.split()[0]}"
    )
    try:
        with Simulator(args.latency_ms) as sim:
            subscriber = subprocess.Popen(
                [sys.executable, __file__, "--subscriber-worker"],
                stdout=subprocess.PIPE,
                start_new_session=True,
            )
            children.procs.append(subscriber)
            assert subscriber.stdout is not None
            hook_origin = f"http://127.0.0.1:{int(subscriber.stdout.readline())}"
            auth = configure(home, env, sim, service, f"{hook_origin}/hook", args)
            serve = children.start(
                [
                    sys.executable,
                    __file__,
                    "--serve-worker",
                    str(port),
                    str(counts),
                    *([str(args.profile_service.resolve())] if args.profile_service else []),
                ],
                env,
                work / "serve.log",
            )
            wait_up(f"{service}/signin", serve)
            url = f"{service}/api/touchpoints/{TOUCHPOINT}/messages"
            # Warm-up: the standing run starts, the sender and the dispatcher get going.
            asyncio.run(stream(url, auth, warm, 0, 1, 20.0, args.client_concurrency))
            if wait_finals(hook_origin, WARMUP_RECORDS, 60) < WARMUP_RECORDS:
                raise RuntimeError(f"the warm-up's events did not arrive; see {work}")
            time.sleep(1.0)
            idle_from = cpu_of(serve.pid)
            time.sleep(IDLE_S)  # what the service burns with nothing to do
            idle_cores = (cpu_of(serve.pid) - idle_from) / IDLE_S
            writes_before = read_counts(counts)
            cpu_before = {
                "service": cpu_of(serve.pid),
                "simulator": sim.cpu_s(),
                "subscriber": cpu_of(subscriber.pid),
            }
            own_before = resource.getrusage(resource.RUSAGE_SELF)
            busy_before, wall_before = busy_s(), time.time()
            with Probe(f"{service}/static/favicon.svg") as probe:
                asyncio.run(
                    stream(
                        url, auth, sent, WARMUP_RECORDS, args.batch, per_s, args.client_concurrency
                    )
                )
                streamed = time.time()
                accepted = sum(1 for s in sent if s.status == "queued")
                got = wait_finals(hook_origin, WARMUP_RECORDS + accepted, args.drain_timeout_s)
                drained = time.time()
            time.sleep(1.0)  # the last cursor move and counters reach the counts file
            writes_after = read_counts(counts)
            own_after = resource.getrusage(resource.RUSAGE_SELF)
            cpu = {
                "service": cpu_of(serve.pid) - cpu_before["service"],
                "simulator": sim.cpu_s() - cpu_before["simulator"],
                "subscriber": cpu_of(subscriber.pid) - cpu_before["subscriber"],
                "client": (own_after.ru_utime + own_after.ru_stime)
                - (own_before.ru_utime + own_before.ru_stime),
            }
            machine = (busy_s() - busy_before) / (time.time() - wall_before)
            timeline = get_json(f"{sim.origin}/_timeline")["messages"]
            received = get_json(f"{hook_origin}/received")
            stats = sim.stats()
            claimed = store_times(home / "smslink.db")
        figures = analyse(
            args, n, sent, timeline, received, claimed, counts_delta(writes_after, writes_before)
        )
        figures.update(
            probe_stream_ms=percentiles(probe.between(wall_before, streamed)),
            probe_drain_ms=percentiles(probe.between(streamed, drained)),
            service_idle_cores=idle_cores,
            cpu_s=cpu,
            machine_busy_cores=machine,
            stream_s=streamed - wall_before,
            drain_s=drained - streamed,
            finals_seen=got - WARMUP_RECORDS,
            simulator_stats=stats,
        )
        report(figures)
        if args.json is not None:
            args.json.write_text(json.dumps(figures, indent=2))
        return figures
    finally:
        children.stop()
        if args.keep:
            print(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def wait_up(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the service did not start") from None
            time.sleep(0.1)


def analyse(
    args: argparse.Namespace,
    n: int,
    sent: list[Sent],
    timeline: list[dict[str, Any]],
    received: dict[str, Any],
    claimed: dict[str, float | None],
    writes: dict[str, Any],
) -> dict[str, Any]:
    by_phone = {s.phone: s for s in sent}
    accepted = [s for s in sent if s.status == "queued"]
    messages: dict[str, list[dict[str, Any]]] = {}
    for m in timeline:
        if m["to"] in by_phone:
            messages.setdefault(m["to"], []).append(m)
    by_sid = {m["sid"]: m for found in messages.values() for m in found}
    finals = [f for f in received["finals"] if f["message_sid"] in by_sid]
    finals_per_delivery = Counter(f["delivery_id"] for f in finals)
    accept_to_create, to_claim, claim_to_create = [], [], []
    for s in accepted:
        if s.phone not in messages:
            continue
        m = messages[s.phone][0]
        accept_to_create.append((m["created"] - s.answered) * 1000)
        at = claimed.get(s.delivery_id or "")
        if at is not None:
            to_claim.append((at - s.answered) * 1000)
            claim_to_create.append((m["created"] - at) * 1000)
    final_to_event: list[float] = []
    polled: list[float] = []  # finals whose final callback never got a 2xx: found by polling
    to_callback, callback_answer, to_stored, stored_to_event = [], [], [], []
    for f in finals:
        m = by_sid[f["message_sid"]]
        if not m["final"]:
            continue
        final_to_event.append(f["at"] - m["status_at"])
        answered = [c for c in m["callbacks"] if c[0] == m["status"]]
        if not answered:
            polled.append(f["at"] - m["status_at"])
            continue
        # By callback: the event's timestamp is when the service stored it (a polled
        # final's is Twilio's date_updated, to the second, so it is not split).
        _, posted, took = answered[0]
        stored = epoch(f["timestamp"])
        assert stored is not None
        to_callback.append(posted - m["status_at"])
        callback_answer.append(took - posted)
        to_stored.append(stored - m["status_at"])
        stored_to_event.append(f["at"] - stored)
    creates = sorted(m["created"] for found in messages.values() for m in found)
    create_span = creates[-1] - creates[0] if len(creates) > 1 else 0.0
    late = [(s.started - s.scheduled) * 1000 for s in sent if s.started]
    answers = [s.answered for s in accepted]
    firsts = sorted(s.started for s in sent if s.started)
    window = (max(answers) - min(firsts)) if answers and firsts else 0.0
    per_second = Counter(int(at) for at in received["arrivals"] if firsts and at >= firsts[0])
    return {
        "rate": args.rate,
        "seconds": args.seconds,
        "batch": args.batch,
        "records": n,
        "accepted": len(accepted),
        "not_accepted": dict(Counter(s.status for s in sent if s.status != "queued")),
        "sustained_per_s": len(accepted) / window if window else 0.0,
        "request_ms": percentiles((s.answered - s.started) * 1000 for s in accepted),
        "late_ms": percentiles(late),
        "messages_created": sum(len(found) for found in messages.values()),
        "accepted_not_created": sum(1 for s in accepted if s.phone not in messages),
        "created_not_accepted": sum(1 for phone in messages if by_phone[phone].status != "queued"),
        "recipients_twice": sum(1 for found in messages.values() if len(found) > 1),
        "final_events": len(finals),
        "deliveries_with_two_finals": sum(1 for c in finals_per_delivery.values() if c > 1),
        "final_statuses": dict(Counter(f["status"] for f in finals)),
        "events_received": received["events"],
        "subscriber_events_per_s_peak": max(per_second.values(), default=0),
        "events_since_start": sum(per_second.values()),
        # Per second from the first request: 202s, creates, events and finals received.
        "timeline": series(
            firsts[0] if firsts else 0.0,
            answers=answers,
            creates=creates,
            events=received["arrivals"],
            finals=[f["at"] for f in finals],
        ),
        "accept_to_create_ms": percentiles(accept_to_create),
        "accept_to_claim_ms": percentiles(to_claim),
        "claim_to_create_ms": percentiles(claim_to_create),
        "creates_per_s": (len(creates) - 1) / create_span if create_span else 0.0,
        "final_to_event_s": percentiles(final_to_event),
        "final_to_event_polled_s": percentiles(polled),
        "final_to_callback_post_s": percentiles(to_callback),
        "callback_post_to_2xx_s": percentiles(callback_answer),
        "final_to_event_stored_s": percentiles(to_stored),
        "event_stored_to_subscriber_s": percentiles(stored_to_event),
        "writes": writes,
    }


def series(start: float, **moments: list[float]) -> dict[str, list[int]]:
    """How many of each kind of moment fell in each second after `start`."""
    counted = {
        name: Counter(int(at - start) for at in ats if at >= start) for name, ats in moments.items()
    }
    last = max((max(c, default=0) for c in counted.values()), default=0)
    return {name: [c.get(i, 0) for i in range(last + 1)] for name, c in counted.items()}


def _row(name: str, p: dict[str, float], unit: str, digits: int) -> str:
    if not p.get("n"):
        return f"  {name:34s} (none)"
    cells = " ".join(f"{p[k]:>9.{digits}f}" for k in ("p50", "p95", "p99", "max"))
    return f"  {name:34s} {cells} {unit}  (n {p['n']:,})"


def report(f: dict[str, Any]) -> None:
    accepted = f["accepted"]
    print()
    print(
        f"accepted {accepted:,} of {f['records']:,} (others: {f['not_accepted'] or 'none'}); "
        f"sustained {f['sustained_per_s']:.1f} records/s over the stream"
    )
    print(
        f"messages created {f['messages_created']:,}, recipients sent twice "
        f"{f['recipients_twice']}, final events {f['final_events']:,} "
        f"(deliveries with two: {f['deliveries_with_two_finals']}), statuses "
        f"{f['final_statuses']}; events received {f['events_received']}"
    )
    sim = f["simulator_stats"]
    print(
        f"stream {f['stream_s']:.1f} s, then drain {f['drain_s']:.1f} s; the simulator created "
        f"{f['creates_per_s']:.1f} messages/s (first to last); its callbacks: "
        f"{sim['callbacks_sent']:,} answered 2xx, {sim['callbacks_failed']:,} failed"
    )
    print(f"{'':36s} {'p50':>9s} {'p95':>9s} {'p99':>9s} {'max':>9s}")
    print(_row("request sent late", f["late_ms"], "ms", 1))
    print(_row("probe GET, while streaming", f["probe_stream_ms"], "ms", 1))
    print(_row("probe GET, while draining", f["probe_drain_ms"], "ms", 1))
    print(_row("request -> 202", f["request_ms"], "ms", 1))
    print(_row("accept -> create", f["accept_to_create_ms"], "ms", 1))
    print(_row("  202 -> claimed", f["accept_to_claim_ms"], "ms", 1))
    print(_row("  claimed -> create", f["claim_to_create_ms"], "ms", 1))
    print(_row("final status -> event", f["final_to_event_s"], "s", 3))
    print(_row("  final by polling (no callback)", f["final_to_event_polled_s"], "s", 3))
    print(_row("  by callback: final -> its POST", f["final_to_callback_post_s"], "s", 3))
    print(_row("  callback POST -> 2xx", f["callback_post_to_2xx_s"], "s", 3))
    print(_row("  final -> event stored", f["final_to_event_stored_s"], "s", 3))
    print(_row("  event stored -> subscriber", f["event_stored_to_subscriber_s"], "s", 3))
    w = f["writes"]
    print(
        f"store writes per delivery: {sum(w['statements'].values()) / accepted:.2f} statements, "
        f"{sum(w['rows'].values()) / accepted:.2f} rows, "
        f"{w['write_transactions'] / accepted:.2f} write transactions "
        f"({w['commits'] / accepted:.2f} commits)"
    )
    for key, count in sorted(w["statements"].items(), key=lambda kv: -kv[1]):
        print(
            f"  {key:36s} {count / accepted:6.3f} statements, "
            f"{w['rows'].get(key, 0) / accepted:6.3f} rows"
        )
    print("write transactions per delivery, by the statements in them:")
    for key, count in sorted(w["transactions"].items(), key=lambda kv: -kv[1])[:12]:
        print(f"  {count / accepted:6.3f}  {key}")
    print(
        f"the subscriber took at most {f['subscriber_events_per_s_peak']} events in one "
        f"second ({f['events_since_start'] / max(1, accepted):.2f} events per delivery)"
    )
    cpu = f["cpu_s"]
    busy = f["stream_s"] + f["drain_s"]
    print(
        "CPU s over stream + drain: "
        + ", ".join(f"{k} {v:.1f} ({v / busy:.2f} core)" for k, v in cpu.items())
        + f"; machine {f['machine_busy_cores']:.2f} of {os.cpu_count()} cores busy; the "
        f"service idle before the stream: {f['service_idle_cores']:.2f} core"
    )
    p99_create = f["accept_to_create_ms"].get("p99", float("inf"))
    p99_event = f["final_to_event_s"].get("p99", float("inf"))
    exact = (
        not f["accepted_not_created"]
        and f["messages_created"] == f["final_events"]
        and not f["recipients_twice"]
        and not f["deliveries_with_two_finals"]
    )
    print()
    print(
        f"exactly once: {'yes' if exact else 'NO'} (accepted but never created: "
        f"{f['accepted_not_created']}; created though the client gave up on the request: "
        f"{f['created_not_accepted']})"
    )
    print(
        f"p99 accept -> create < {ACCEPT_TO_CREATE_P99_MS:.0f} ms: {p99_create:.1f} ms  "
        f"{'met' if p99_create < ACCEPT_TO_CREATE_P99_MS else 'MISSED'}"
    )
    print(
        f"p99 final status -> event < {FINAL_TO_EVENT_P99_S:.0f} s: {p99_event:.3f} s  "
        f"{'met' if p99_event < FINAL_TO_EVENT_P99_S else 'MISSED'}"
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve-worker"]:
        serve_worker(int(sys.argv[2]), Path(sys.argv[3]), *map(Path, sys.argv[4:5]))
    elif sys.argv[1:2] == ["--subscriber-worker"]:
        subscriber_worker()
    else:
        main()
