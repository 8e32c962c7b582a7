"""Send throughput: `smslink send` against the official twilio SDK's async client.

Not a test. Both contestants send the same N personalised messages, at the same
concurrency, to smslink's own Twilio simulator running in a separate process with a fixed
latency (its CPU is counted against neither client):

* smslink: the whole `smslink send` command as a child process (ingest into SQLite,
  send, track every message until it is final, write the results file);
* sdk: a child process (this file with `--sdk-worker`) that builds
  `twilio.rest.Client(..., http_client=AsyncTwilioHttpClient())`, reads the same CSV,
  renders the same body and awaits `client.messages.create_async(...)` with C workers.
  No persistence, no tracking: the baseline a user would otherwise script by hand.

Each child is timed from spawn to exit (wall), and its CPU (user + sys) and peak RSS come
from `os.wait4`. The send phase (first to last create) and the tail (last create to the
child's exit) come from the simulator's own creation times (GET /_timeline); the CPU split
before / during / after sending from the simulator's request counters, sampled by this
(parent) process. Tracking calls per message = (fetches + lists) / N.

The simulator's messages are final `--final-after-s` after their create (default 0, as the
issue "Leaner than the bare SDK" measures; sections 1-14 of RESULTS.md used 0.9). With
`--pg URL` smslink stores each run in a fresh schema on that PostgreSQL server, whose
processes' CPU is shown beside it ("PG CPU s").

    python bench/send_throughput.py --n 10000 --latency-ms 50 --concurrency 100 --repeat 2
    python bench/send_throughput.py --rss-sweep 10000,50000,100000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import os
import secrets
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VENV_BIN = Path(sys.executable).parent
SMSLINK = str(VENV_BIN / "smslink")

AUTH_TOKEN = "bench-token"
FROM_NUMBER = "+15005550006"
MESSAGE = "Hi <Name>, your code is <Code>"
SDK_BODY = "Hi {name}, your code is {code}"  # the same body, rendered by hand for the SDK
#: US area codes whose 555-XXXX numbers libphonenumber accepts (each holds 10,000 numbers).
AREA_CODES = (212, 646, 415, 312, 617, 202, 305, 404, 503, 206, 213, 310, 702, 713, 214, 602)
FIRST_NAMES = ("Ana", "Ben", "Chloé", "Dev", "Eve", "Femi", "Gus", "Hana", "Ivo", "Jo")


# -- the audience ----------------------------------------------------------------------


def phone_numbers(n: int) -> list[str]:
    """n distinct valid US numbers (+1AAA555XXXX), each checked with libphonenumber."""
    import phonenumbers  # only the parent needs it; keep it out of the SDK child

    if n > 10_000 * len(AREA_CODES):
        raise SystemExit(f"at most {10_000 * len(AREA_CODES):,} distinct numbers")
    numbers: list[str] = []
    for i in range(n):
        area, line = AREA_CODES[i // 10_000], i % 10_000
        number = f"+1{area}555{line:04d}"
        if not phonenumbers.is_valid_number(phonenumbers.parse(number)):
            raise SystemExit(f"{number} is not a valid number; change AREA_CODES")
        numbers.append(number)
    return numbers


def write_audience(path: Path, n: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["id", "name", "phone", "code"])
        for i, number in enumerate(phone_numbers(n)):
            writer.writerow([i + 1, FIRST_NAMES[i % len(FIRST_NAMES)], number, f"{i:06d}"])


def audience(workdir: Path, n: int) -> Path:
    """The N-record CSV, generated once per N and reused by every contestant."""
    path = workdir / f"audience-{n}.csv"
    if not path.exists():
        write_audience(path, n)
    return path


# -- the simulator (a separate process) ---------------------------------------------------


class Simulator:
    """`smslink simulator` in its own process; `origin` is http://127.0.0.1:PORT."""

    def __init__(
        self,
        latency_ms: float,
        start_timeout_s: float = 30.0,
        extra: tuple[str, ...] = (),
        final_after_s: float = 0.9,
    ) -> None:
        self.latency_ms = latency_ms
        self.final_after_s = final_after_s  # from create to final status: queued, sending, sent
        self.extra = extra  # more `smslink simulator` options (limits, faults)
        self.start_timeout_s = start_timeout_s
        self.proc: subprocess.Popen[str] | None = None
        self.origin = ""
        self.base_url = ""

    def __enter__(self) -> Simulator:
        cmd = [
            SMSLINK, "simulator", "--port", "0", "--auth-token", AUTH_TOKEN,
            "--latency-ms", str(self.latency_ms),
            *self.status_times(), *self.extra,
        ]  # fmt: skip
        self.proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        try:
            line = self._read_line(self.start_timeout_s)
            marker = "listening on "
            if marker not in line:
                raise RuntimeError(f"simulator did not start: {line!r}")
            self.base_url = line.split(marker, 1)[1].strip()
            self.origin = self.base_url.rsplit("/2010-04-01", 1)[0]
        except BaseException:
            self.__exit__()
            raise
        return self

    def status_times(self) -> list[str]:
        """The simulator's status clock: `final_after_s` split 2:2:5 between queued, sending
        and sent (0.9 s gives the 0.2/0.2/0.5 s of the earlier sections)."""
        step = self.final_after_s / 9
        return [
            "--queued-s", f"{2 * step:g}", "--sending-s", f"{2 * step:g}",
            "--sent-s", f"{5 * step:g}",
        ]  # fmt: skip

    def _read_line(self, timeout_s: float) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            if not sel.select(timeout_s):
                raise RuntimeError(f"simulator printed nothing in {timeout_s}s")
        return self.proc.stdout.readline()

    def __exit__(self, *exc: object) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def cpu_s(self) -> float:
        """CPU seconds the simulator has used so far (to show it is not the bottleneck)."""
        assert self.proc is not None
        import psutil

        times = psutil.Process(self.proc.pid).cpu_times()
        return times.user + times.system

    def stats(self) -> dict:
        with urllib.request.urlopen(f"{self.origin}/_stats", timeout=30) as answer:
            data = json.loads(answer.read())
        # Drop per-recipient counters (posts_by_to / messages_by_to): only totals are used.
        return {k: v for k, v in data.items() if not isinstance(v, dict)}

    def creations(self) -> tuple[float, float] | None:
        """(first, last) creation time of the messages it holds, epoch seconds, as the
        server saw them; None when it holds none."""
        with urllib.request.urlopen(f"{self.origin}/_timeline", timeout=120) as answer:
            created = [m["created"] for m in json.loads(answer.read())["messages"]]
        return (min(created), max(created)) if created else None

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.origin}/_reset", data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=30) as answer:
            answer.read()


class PostWatcher:
    """Times the send phase (first to Nth POST) from the simulator's POST counter, and
    samples the child's CPU so it can be split into before / during / after sending.

    /_stats is only read until every message is posted (it grows with N); after that the
    child's CPU alone is sampled, which costs the simulator nothing.
    """

    def __init__(self, sim: Simulator, n: int, every_s: float) -> None:
        self._sim = sim
        self._n = n
        self._every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._child = None
        self.t0 = 0.0
        self.first_post: float | None = None  # seconds after t0, first sample with posts > 0
        self.all_posted: float | None = None  # first sample with posts >= n
        self.cpu_before: float | None = None  # child CPU s at the first sample with posts > 0
        self.cpu_sending: float | None = None  # child CPU s from there to all posted
        self.rss_first: float | None = None  # child RSS MB at the first POST
        self.rss_posted: float | None = None  # child RSS MB once every message is posted

    def __enter__(self) -> PostWatcher:
        self.t0 = time.perf_counter()
        return self

    def attach(self, pid: int) -> None:
        """Start watching once the child exists."""
        import psutil

        with contextlib.suppress(psutil.Error):
            self._child = psutil.Process(pid)
        if self._every_s > 0:
            self._thread.start()

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _child_usage(self) -> tuple[float | None, float | None]:
        """(CPU s, RSS MB) of the child now."""
        import psutil

        try:
            times = self._child.cpu_times()  # type: ignore[union-attr]
            rss = self._child.memory_info().rss / 2**20  # type: ignore[union-attr]
        except (psutil.Error, AttributeError):
            return None, None
        return times.user + times.system, rss

    def _watch(self) -> None:
        while not self._stop.wait(self._every_s):
            cpu, rss = self._child_usage()
            try:
                posts = int(self._sim.stats()["posts"])
            except OSError:
                continue
            now = time.perf_counter() - self.t0
            if posts > 0 and self.first_post is None:
                self.first_post, self.cpu_before, self.rss_first = now, cpu, rss
            if posts >= self._n:
                self.all_posted, self.rss_posted = now, rss
                if cpu is not None and self.cpu_before is not None:
                    self.cpu_sending = cpu - self.cpu_before
                return

    @property
    def send_phase_s(self) -> float | None:
        if self.first_post is None or self.all_posted is None:
            return None
        return max(self.all_posted - self.first_post, self._every_s)


# -- running a contestant ---------------------------------------------------------------------


@dataclass
class Result:
    contestant: str
    n: int
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    stats: dict
    sim_cpu_s: float
    first_post_s: float | None = None
    send_phase_s: float | None = None
    cpu_before_s: float | None = None  # child CPU until its first POST (startup, ingest)
    cpu_sending_s: float | None = None  # child CPU from first to last POST
    rss_first_mb: float | None = None  # child RSS at its first POST
    rss_posted_mb: float | None = None  # child RSS when the last message was posted
    tail_s: float | None = None  # from the last creation (server's clock) to the child's exit
    pg_cpu_s: float | None = None  # PostgreSQL's server processes, during the child's run
    statuses: Counter[str] = field(default_factory=Counter)
    rows: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.n / self.wall_s

    @property
    def cpu_per_1000(self) -> float:
        return self.cpu_s * 1000 / self.n

    @property
    def cpu_split(self) -> str:
        """CPU s before the first POST / while posting / after the last POST."""
        if self.cpu_before_s is None or self.cpu_sending_s is None:
            return "-"
        after = self.cpu_s - self.cpu_before_s - self.cpu_sending_s
        return f"{self.cpu_before_s:.2f}/{self.cpu_sending_s:.2f}/{after:.2f}"

    @property
    def rss_split(self) -> str:
        """RSS MB at the first POST / at the last POST (the peak is in its own column)."""
        if self.rss_first_mb is None or self.rss_posted_mb is None:
            return "-"
        return f"{self.rss_first_mb:.0f}/{self.rss_posted_mb:.0f}"

    @property
    def tracking_per_msg(self) -> float:
        return (self.stats.get("fetches", 0) + self.stats.get("lists", 0)) / self.n


def run_child(
    cmd: list[str],
    env: dict[str, str],
    timeout_s: float,
    log: Path,
    on_start: Callable[[int], None] = lambda pid: None,
):
    """Run cmd to completion; return (wall s, cpu s, peak RSS MB, exit code).

    CPU comes from wait4's rusage of exactly this child (and anything it waited for). Peak
    RSS is the child's own high-water mark (VmHWM), read every 10 ms while it runs: wait4's
    ru_maxrss also holds this (parent) process's high-water mark, because subprocess
    starts the child with vfork and the kernel keeps the larger of the two at exec (a
    /bin/true started by a parent that once held 160 MB reports 160 MB). That made every
    child look as large as this process had been (RESULTS section 18).
    """
    with log.open("wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        on_start(proc.pid)
        deadline = started + timeout_s
        peak_kb = 0
        while True:
            peak_kb = max(peak_kb, high_water_kb(proc.pid))
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid == proc.pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                os.wait4(proc.pid, 0)
                proc.returncode = -9  # reaped here: keep Popen from waiting again
                raise RuntimeError(f"{cmd[0]} timed out after {timeout_s:.0f}s; see {log}")
            time.sleep(0.01)
        wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    cpu = usage.ru_utime + usage.ru_stime
    return wall, cpu, (peak_kb or usage.ru_maxrss) / 1024, proc.returncode


def high_water_kb(pid: int) -> int:
    """The process's peak RSS so far in kB (VmHWM); 0 once it has exited, or without /proc."""
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def base_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "SMSLINK_"))}
    env.update(
        SMSLINK_HOME=str(home),
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        COLUMNS="120",
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


def byte_compile_smslink(env: dict[str, str]) -> None:
    """Byte-compile the smslink package the child will import, as `pip install` does for an
    installed package (and did for the SDK's twilio and aiohttp). An editable install on a
    machine with PYTHONDONTWRITEBYTECODE=1 (this one) never writes smslink's .pyc files, so
    every timed start compiled its ~90 modules from source: 0.15-0.2 s of CPU that the SDK
    never pays (RESULTS.md section 17). Only stale files are compiled; not timed."""
    code = (
        "import compileall, os, smslink;"
        "compileall.compile_dir(os.path.dirname(smslink.__file__), quiet=1)"
    )
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now (for a service the bench starts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def account_sid() -> str:
    return "AC" + secrets.token_hex(16)


def watch_interval(args: argparse.Namespace, n: int) -> float:
    """/_stats serialises per-To counters (~1 us of simulator CPU per message it holds):
    sample less often as N grows, so watching costs the simulator ~5% of a core."""
    return args.watch_s if args.watch_s is not None else max(0.2, n / 50_000)


def run_smslink(sim: Simulator, csv_path: Path, n: int, args: argparse.Namespace) -> Result:
    workdir = Path(tempfile.mkdtemp(prefix="smslink-bench-", dir=args.workdir))
    stack = contextlib.ExitStack()
    try:
        home = workdir / "home"
        env = base_env(home)
        if args.pg:
            env["SMSLINK_DATABASE_URL"] = stack.enter_context(fresh_schema(args.pg))
        setup = [
            [SMSLINK, "connection", "add", "bench", "--account-sid", account_sid(),
             "--from", FROM_NUMBER, "--base-url", sim.base_url,
             "--concurrency", str(args.concurrency),
             "--poll-interval-ms", str(args.poll_interval_ms),
             "--poll-attempts", str(args.poll_attempts)],
            [SMSLINK, "touchpoint", "add", "bench", "--connection", "bench",
             "--message", MESSAGE, "--phone", "phone", "--map", "Name=name", "--map", "Code=code"],
        ]  # fmt: skip
        for cmd in setup:
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
            if done.returncode != 0:
                raise RuntimeError(f"{' '.join(cmd[1:3])} failed: {done.stdout}{done.stderr}")
        byte_compile_smslink(env)
        out = workdir / "out.csv"
        send = args.smslink_cmd.split() if args.smslink_cmd else [SMSLINK]
        cmd = [*send, "send", "bench", "--input", str(csv_path), "--output", str(out)]
        result = measure("smslink", cmd, env, sim, n, args, workdir / "send.log")
        with out.open(newline="", encoding="utf-8") as file:
            for row in csv.DictReader(file):
                result.rows += 1
                result.statuses[row["status"]] += 1
        check(result, n)
        return result
    finally:
        stack.close()
        if args.keep:
            print(f"  kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def measure(
    name: str,
    cmd: list[str],
    env: dict[str, str],
    sim: Simulator,
    n: int,
    args: argparse.Namespace,
    log: Path,
) -> Result:
    """Run one contestant's child process against a freshly reset simulator."""
    sim.reset()
    sim_cpu0 = sim.cpu_s()
    pg_cpu = PostgresCpu() if args.pg else None
    with PostWatcher(sim, n, watch_interval(args, n)) as watch:
        spawned = time.time()
        wall, cpu, rss, code = run_child(cmd, env, args.timeout_s, log, watch.attach)
        exited = time.time()
    if code != 0:
        tail = log.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{name} exited {code}:\n{tail}")
    result = Result(
        name, n, wall, cpu, rss, sim.stats(), sim.cpu_s() - sim_cpu0,
        watch.first_post, watch.send_phase_s, watch.cpu_before, watch.cpu_sending,
        watch.rss_first, watch.rss_posted,
    )  # fmt: skip
    if pg_cpu is not None:
        result.pg_cpu_s = pg_cpu.stop()
    # The send phase and the tail as the server saw them: its own creation times.
    if (created := sim.creations()) is not None:
        first, last = created
        result.first_post_s = first - spawned
        result.send_phase_s = max(last - first, 1e-3)
        result.tail_s = exited - last
    return result


class PostgresCpu:
    """CPU seconds PostgreSQL's server processes use while a child runs. A connection's
    backend exits with its client, taking its CPU figure with it: so every backend is
    sampled while it lives, and its last sample counts."""

    def __init__(self, every_s: float = 0.1) -> None:
        self._every_s = every_s
        self._before = self._sample()
        self._last: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    @staticmethod
    def _sample() -> dict[int, float]:
        import psutil

        cpu: dict[int, float] = {}
        for proc in psutil.process_iter(["name", "cpu_times"]):
            times = proc.info["cpu_times"]
            if proc.info["name"] == "postgres" and times is not None:
                cpu[proc.pid] = times.user + times.system
        return cpu

    def _watch(self) -> None:
        while not self._stop.wait(self._every_s):
            self._last.update(self._sample())

    def stop(self) -> float:
        self._stop.set()
        self._thread.join(timeout=5)
        self._last.update(self._sample())
        return sum(cpu - self._before.get(pid, 0.0) for pid, cpu in self._last.items())


@contextlib.contextmanager
def fresh_schema(pg: str) -> Iterator[str]:
    """A new schema on the PostgreSQL server at `pg` (a libpq URL); the store URL that
    selects it. Dropped afterwards."""
    import psycopg

    schema = f"bench_{secrets.token_hex(5)}"
    with psycopg.connect(pg, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        rest = pg.split("://", 1)[1]
        yield f"postgresql+psycopg://{rest}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(pg, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def run_sdk(sim: Simulator, csv_path: Path, n: int, args: argparse.Namespace) -> Result:
    workdir = Path(tempfile.mkdtemp(prefix="sdk-bench-", dir=args.workdir))
    try:
        summary = workdir / "summary.json"
        cmd = [
            sys.executable, str(Path(__file__).resolve()), "--sdk-worker",
            "--origin", sim.origin, "--input", str(csv_path),
            "--concurrency", str(args.concurrency), "--summary", str(summary),
        ]  # fmt: skip
        env = base_env(workdir / "home")
        result = measure("sdk", cmd, env, sim, n, args, workdir / "sdk.log")
        data = json.loads(summary.read_text())
        result.rows = data["sent"] + data["errors"]
        result.statuses.update(data["statuses"])
        check(result, n)
        return result
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def check(result: Result, n: int) -> None:
    # With a concurrency limit, POSTs answered 429 are retried (never processed, so not
    # duplicates): then only the messages count below says whether anything was sent twice.
    posts = result.stats.get("posts", 0)
    if posts != n and not result.stats.get("throttled"):
        result.notes.append(f"simulator saw {posts} POSTs, expected {n}")
    if result.rows != n:
        result.notes.append(f"{result.rows} result rows, expected {n}")
    if result.stats.get("messages", 0) != n:
        result.notes.append(f"simulator holds {result.stats.get('messages')} messages")
    for note in result.notes:
        print(f"  WARNING {result.contestant}: {note}", file=sys.stderr)


# -- the SDK child ----------------------------------------------------------------------------


async def sdk_send(origin: str, input_path: Path, concurrency: int) -> dict:
    from twilio.base.exceptions import TwilioRestException
    from twilio.http.async_http_client import AsyncTwilioHttpClient
    from twilio.rest import Client

    http = AsyncTwilioHttpClient()  # its aiohttp session must be made inside the loop
    client = Client(account_sid(), AUTH_TOKEN, http_client=http)
    client.api.base_url = origin
    statuses: Counter[str] = Counter()
    sent = errors = 0

    with input_path.open(newline="", encoding="utf-8") as file:
        rows = csv.DictReader(file)

        async def worker() -> None:
            nonlocal sent, errors
            for row in rows:  # one shared iterator: each row goes to exactly one worker
                body = SDK_BODY.format(name=row["name"], code=row["code"])
                try:
                    message = await client.messages.create_async(
                        to=row["phone"], from_=FROM_NUMBER, body=body
                    )
                except TwilioRestException as error:
                    errors += 1
                    statuses[f"error {error.code}"] += 1
                    continue
                sent += 1
                statuses[str(message.status)] += 1

        try:
            await asyncio.gather(*(worker() for _ in range(concurrency)))
        finally:
            await http.close()
    return {"sent": sent, "errors": errors, "statuses": dict(statuses)}


def sdk_worker(args: argparse.Namespace) -> None:
    summary = asyncio.run(sdk_send(args.origin, Path(args.input), args.concurrency))
    Path(args.summary).write_text(json.dumps(summary))


# -- reporting -----------------------------------------------------------------------------


HEADER = (
    f"{'contestant':<10} {'N':>7} {'wall s':>7} {'msg/s':>7} {'CPU s/1k':>8} "
    f"{'RSS MB':>7} {'track/msg':>9} {'1st POST s':>10} {'send s':>7} {'send msg/s':>10} "
    f"{'tail s':>6} {'sim CPU s':>9} {'PG CPU s':>8} {'CPU pre/send/post':>17} "
    f"{'RSS@1st/last POST':>17}  statuses"
)


def row(r: Result) -> str:
    send_rate = f"{r.n / r.send_phase_s:>10,.0f}" if r.send_phase_s else f"{'-':>10}"
    send_s = f"{r.send_phase_s:>7.2f}" if r.send_phase_s else f"{'-':>7}"
    first = f"{r.first_post_s:>10.2f}" if r.first_post_s is not None else f"{'-':>10}"
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(r.statuses.items()))
    tail = f"{r.tail_s:>6.2f}" if r.tail_s is not None else f"{'-':>6}"
    pg = f"{r.pg_cpu_s:>8.2f}" if r.pg_cpu_s is not None else f"{'-':>8}"
    return (
        f"{r.contestant:<10} {r.n:>7,} {r.wall_s:>7.2f} {r.rate:>7,.0f} {r.cpu_per_1000:>8.3f} "
        f"{r.peak_rss_mb:>7.1f} {r.tracking_per_msg:>9.4f} {first} {send_s} {send_rate} "
        f"{tail} {r.sim_cpu_s:>9.2f} {pg} {r.cpu_split:>17} {r.rss_split:>17}  {statuses}"
    )


def summarise(results: list[Result]) -> None:
    print()
    print(HEADER)
    for r in results:
        print(row(r))
    mine = [r for r in results if r.contestant == "smslink"]
    sdk = [r for r in results if r.contestant == "sdk"]
    if not (mine and sdk):
        return
    rate = statistics.mean(r.rate for r in mine) / statistics.mean(r.rate for r in sdk)
    cpu = statistics.mean(r.cpu_per_1000 for r in mine) / statistics.mean(
        r.cpu_per_1000 for r in sdk
    )
    print()
    print(f"smslink/sdk throughput ratio (mean of runs): {rate:.2f}x")
    print(f"smslink/sdk CPU-per-message ratio (mean):    {cpu:.2f}x  (target <= 1.00x)")
    for i, (a, b) in enumerate(zip(sdk, mine, strict=False), 1):
        print(
            f"  pair {i}: throughput {b.rate / a.rate:.2f}x, "
            f"CPU {b.cpu_per_1000 / a.cpu_per_1000:.2f}x"
        )
    phases = [(a, b) for a, b in zip(sdk, mine, strict=False) if a.send_phase_s and b.send_phase_s]
    if phases:
        send = statistics.mean(a.send_phase_s / b.send_phase_s for a, b in phases)  # type: ignore[operator]
        print(f"send phase alone, smslink/sdk msg/s (mean of pairs): {send:.2f}x (target >= 0.97x)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="messages per contestant")
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=1, help="rounds of sdk then smslink")
    parser.add_argument("--only", choices=("smslink", "sdk"))
    parser.add_argument(
        "--rss-sweep", help="comma-separated N values: run smslink only at each, report RSS"
    )
    parser.add_argument(
        "--final-after-s",
        type=float,
        default=0.0,
        help="seconds from create to final status in the simulator (sections 1-14: 0.9)",
    )
    parser.add_argument(
        "--pg",
        help="store smslink's runs on this PostgreSQL server (libpq URL), a fresh schema each",
    )
    parser.add_argument("--poll-interval-ms", type=int, default=1000)
    parser.add_argument("--poll-attempts", type=int, default=60)
    parser.add_argument(
        "--watch-s",
        type=float,
        default=None,
        help="how often to sample the simulator's POST counter (0: never; default by N)",
    )
    parser.add_argument("--timeout-s", type=float, default=None, help="per child process")
    parser.add_argument("--workdir", default=None, help="where temp homes and CSVs go")
    parser.add_argument("--keep", action="store_true", help="keep smslink's temp home")
    parser.add_argument(
        "--smslink-cmd",
        help="command used instead of the smslink script for the timed send (A/B a patch), "
        "e.g. 'python /tmp/patched_smslink.py'",
    )
    # the SDK child
    parser.add_argument("--sdk-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--origin", help=argparse.SUPPRESS)
    parser.add_argument("--input", help=argparse.SUPPRESS)
    parser.add_argument("--summary", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.sdk_worker:
        sdk_worker(args)
        return
    sizes = [int(s) for s in args.rss_sweep.split(",")] if args.rss_sweep else [args.n]
    if args.timeout_s is None:
        args.timeout_s = 120 + max(sizes) * 0.01
    own_workdir = args.workdir is None
    if own_workdir:
        args.workdir = tempfile.mkdtemp(prefix="send-bench-")
    workdir = Path(args.workdir)
    print(
        f"latency {args.latency_ms:g} ms, concurrency {args.concurrency}, "
        f"poll {args.poll_interval_ms} ms x {args.poll_attempts}, "
        f"final after {args.final_after_s:g} s, store {'PostgreSQL' if args.pg else 'SQLite'}, "
        f"nproc {os.cpu_count()}, "
        f"python {sys.version.split()[0]}"
    )
    results: list[Result] = []
    try:
        with Simulator(args.latency_ms, final_after_s=args.final_after_s) as sim:
            print(f"simulator at {sim.base_url} (pid {sim.proc.pid if sim.proc else '?'})")
            if args.rss_sweep:
                plan = [("smslink", n) for n in sizes]
            else:
                order = [c for c in ("sdk", "smslink") if args.only in (None, c)]
                plan = [(c, args.n) for _ in range(args.repeat) for c in order]
            for contestant, n in plan:
                csv_path = audience(workdir, n)
                runner = run_smslink if contestant == "smslink" else run_sdk
                print(f"running {contestant} N={n:,} ...", flush=True)
                result = runner(sim, csv_path, n, args)
                print(row(result), flush=True)
                results.append(result)
    finally:
        if own_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    summarise(results)
    if args.rss_sweep:
        print()
        print("peak RSS by N (smslink):")
        for r in results:
            print(f"  N={r.n:>7,}  {r.peak_rss_mb:7.1f} MB  ({r.rate:,.0f} msg/s)")


if __name__ == "__main__":
    main()
