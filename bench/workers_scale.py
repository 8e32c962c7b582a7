"""Workers side by side: one run sent by 1, 2 and 4 `smslink worker` processes.

Not a test. Against `smslink simulator` with `--latency-ms` (200) on every answer, each
worker limited to `--concurrency` (25) requests in flight, so that workers, not Twilio or
the CPU, are the limit: one worker can send at most concurrency / latency messages a
second (125), and N workers N times that, if nothing else holds them back. Each round
gets a fresh PostgreSQL schema (the local server, `--pg`), a fresh simulator and fresh
workers (started and taking jobs before the run is queued); then `smslink send --queue`
reads the audience into the store, queues it, follows it and writes the results.

Figures per round:

* send rate: (records - 1) / (last create - first create), as the simulator saw them;
* tracking calls per message: the simulator's list and fetch requests / records;
* wall time of `send --queue`, and the CPU of the workers, the simulator and PostgreSQL.

With `--kill`, a round of 4 workers where one is SIGKILLed once a third is sent (and
reaped, as its supervisor would: another worker on the same machine sees its pid gone
and takes its leases at once, once its jobs are queued again as stalled), and one where
one is SIGSTOPped (its pid lives on, so its leases must run out: what a worker on a
machine that is gone costs): the time from the signal until each part it held is held by
another worker.

    python bench/workers_scale.py                        # 1, 2, 4 workers, 6,000 records
    python bench/workers_scale.py --records 2000 --workers 1 4
    python bench/workers_scale.py --kill
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import psycopg

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from send_throughput import (  # noqa: E402  (bench/ is not a package)
    AUTH_TOKEN,
    SMSLINK,
    Simulator,
    account_sid,
    fresh_schema,
    write_audience,
)

PG = "postgresql://postgres@127.0.0.1:5432/test"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=6000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument("--concurrency", type=int, default=25, help="per worker")
    parser.add_argument("--pg", default=PG, help="PostgreSQL (libpq URL) for the schemas")
    parser.add_argument("--kill", action="store_true", help="time the take-over of a dead worker")
    parser.add_argument(
        "--redis",
        default="redis://127.0.0.1:6379/0",
        help="shared pacing (SMSLINK_REDIS_URL); '' for each worker's own",
    )
    parser.add_argument("--json", type=Path, help="write the figures here too")
    return parser.parse_args(argv)


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [SMSLINK, *args], env=env, capture_output=True, text=True, timeout=900, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"smslink {' '.join(args)}: {result.stdout}\n{result.stderr}")
    return result


def round_env(args: argparse.Namespace, home: Path, url: str) -> dict[str, str]:
    """The environment of a round's commands: its home and schema, shared pacing."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMSLINK_")}
    env.update(SMSLINK_HOME=str(home), SMSLINK_DATABASE_URL=url, TWILIO_AUTH_TOKEN=AUTH_TOKEN)
    if args.redis:
        env["SMSLINK_REDIS_URL"] = args.redis
    return env


def configure(env: dict[str, str], base_url: str) -> None:
    cli(
        env,
        "connection", "add", "sim", "--account-sid", account_sid(), "--from", "+15005550006",
        "--base-url", base_url, "--poll-interval-ms", "1000", "--poll-attempts", "30",
        "--concurrency", "100",
    )  # fmt: skip
    cli(
        env,
        "touchpoint", "add", "bench", "--connection", "sim", "--message", "Hi <Name>, code <Code>",
        "--phone", "phone", "--map", "Name=name", "--map", "Code=code",
    )  # fmt: skip


def start_workers(env: dict[str, str], count: int, concurrency: int) -> list[subprocess.Popen]:
    """`count` workers, each returned once it says it takes jobs."""
    workers = []
    for _ in range(count):
        proc = subprocess.Popen(
            [SMSLINK, "worker", "--concurrency", str(concurrency), "--stalled-s", "10"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        workers.append(proc)
    for proc in workers:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if "taking jobs" not in line:
            raise SystemExit(f"a worker did not start: {line!r}")
    return workers


def stop_workers(workers: list[subprocess.Popen]) -> None:
    for proc in workers:
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
            proc.terminate()
    for proc in workers:
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def cpu_s(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
    return total


def postgres_pids() -> list[int]:
    return [p.pid for p in psutil.process_iter(["name"]) if p.info["name"] == "postgres"]


def create_times(sim: Simulator) -> list[float]:
    with urllib.request.urlopen(f"{sim.origin}/_timeline", timeout=60) as answer:
        timeline = json.loads(answer.read())
    return sorted(m["created"] for m in timeline["messages"])


def one_round(args: argparse.Namespace, count: int, audience: Path, work: Path) -> dict[str, Any]:
    with fresh_schema(args.pg) as url, Simulator(args.latency_ms) as sim:
        home = work / f"home-{count}-{uuid.uuid4().hex[:6]}"
        env = round_env(args, home, url)
        configure(env, sim.base_url)
        workers = start_workers(env, count, args.concurrency)
        try:
            pg_before, sim_before = cpu_s(postgres_pids()), sim.cpu_s()
            workers_before = cpu_s([w.pid for w in workers])
            started = time.monotonic()
            cli(env, "send", "bench", "--input", str(audience), "--output",
                str(home / "results.csv"), "--queue")  # fmt: skip
            wall = time.monotonic() - started
            workers_cpu = cpu_s([w.pid for w in workers]) - workers_before
            pg_cpu, sim_cpu = cpu_s(postgres_pids()) - pg_before, sim.cpu_s() - sim_before
            stats = sim.stats()
            created = create_times(sim)
        finally:
            stop_workers(workers)
    n = args.records
    if stats["posts"] != n or len(created) != n:
        raise SystemExit(f"{count} workers: {stats['posts']} posts for {n} records")
    return {
        "workers": count,
        "records": n,
        "send_rate": (n - 1) / (created[-1] - created[0]),
        "wall_s": wall,
        "tracking_calls_per_message": (stats["lists"] + stats["fetches"]) / n,
        "tracking_calls_per_second": (stats["lists"] + stats["fetches"]) / wall,
        "lists": stats["lists"],
        "fetches": stats["fetches"],
        "workers_cpu_ms_per_message": 1000 * workers_cpu / n,
        "simulator_cpu_ms_per_message": 1000 * sim_cpu / n,
        "postgres_cpu_ms_per_message": 1000 * pg_cpu / n,
    }


def parts_held(pg: str, url: str) -> dict[int, str]:
    """Parts of run 1 held now, by part: their holders (host:pid:...)."""
    schema = url.rsplit("%3D", 1)[1]
    with psycopg.connect(pg, options=f"-csearch_path={schema}") as conn:
        rows = conn.execute(
            "SELECT part, lease_owner FROM run_parts WHERE run_id = 1 AND lease_owner IS NOT NULL"
            " AND lease_expires > now()"
        ).fetchall()
    return {part: owner for part, owner in rows}


def take_over(args: argparse.Namespace, audience: Path, work: Path, how: str) -> dict[str, Any]:
    """4 workers; one gets `how` (kill or stop) once a third is sent: seconds until each
    part it held is held by another worker, or finished."""
    with fresh_schema(args.pg) as url, Simulator(args.latency_ms) as sim:
        home = work / f"home-{how}-{uuid.uuid4().hex[:6]}"
        env = round_env(args, home, url)
        configure(env, sim.base_url)
        workers = start_workers(env, 4, args.concurrency)
        sending = subprocess.Popen(
            [SMSLINK, "send", "bench", "--input", str(audience), "--output",
             str(home / "results.csv"), "--queue"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            victim = workers[0]
            while sim.stats()["posts"] < args.records // 3:
                time.sleep(0.05)
            held = [
                p for p, owner in parts_held(args.pg, url).items()
                if owner.split(":")[1] == str(victim.pid)
            ]  # fmt: skip
            signalled = time.monotonic()
            victim.send_signal(signal.SIGKILL if how == "kill" else signal.SIGSTOP)
            if how == "kill":
                victim.wait()  # reaped, as its supervisor (systemd) would: its pid is gone
            moved: dict[int, float] = {}
            while len(moved) < len(held) and time.monotonic() - signalled < 180:
                now = parts_held(args.pg, url)
                for part in held:
                    owner = now.get(part)
                    if part not in moved and owner and owner.split(":")[1] != str(victim.pid):
                        moved[part] = time.monotonic() - signalled
                time.sleep(0.1)
            if how == "stop":
                victim.send_signal(signal.SIGCONT)
            sending.wait(timeout=900)
        finally:
            stop_workers(workers)
    return {
        "signal": "SIGKILL" if how == "kill" else "SIGSTOP",
        "parts_held": len(held),
        "moved_within_s": max(moved.values()) if moved else None,
        "first_moved_s": min(moved.values()) if moved else None,
        "send_exit": sending.returncode,
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    work = Path(os.environ.get("TMPDIR", "/tmp")) / f"smslink-workers-{os.getpid()}"
    work.mkdir(parents=True)
    audience = work / "audience.csv"
    write_audience(audience, args.records)
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, "
          f"{args.records:,} records, latency {args.latency_ms:.0f} ms, "
          f"concurrency {args.concurrency} per worker")  # fmt: skip
    figures: dict[str, Any] = {"rounds": [], "take_over": []}
    if args.kill:
        for how in ("kill", "stop"):
            result = take_over(args, audience, work, how)
            figures["take_over"].append(result)
            print(json.dumps(result))
    else:
        for count in args.workers:
            result = one_round(args, count, audience, work)
            figures["rounds"].append(result)
            print(json.dumps(result))
        base = figures["rounds"][0]
        print("\n| workers | msg/s | x first | wall s | tracking calls/msg | tracking calls/s "
              "| CPU ms/msg (workers, simulator, PostgreSQL) |")  # fmt: skip
        print("|---|---|---|---|---|---|---|")
        for r in figures["rounds"]:
            print(
                f"| {r['workers']} | {r['send_rate']:.1f} | "
                f"{r['send_rate'] / base['send_rate']:.2f} | {r['wall_s']:.1f} | "
                f"{r['tracking_calls_per_message']:.4f} | "
                f"{r['tracking_calls_per_second']:.2f} | "
                f"{r['workers_cpu_ms_per_message']:.2f}, "
                f"{r['simulator_cpu_ms_per_message']:.2f}, "
                f"{r['postgres_cpu_ms_per_message']:.2f} |"
            )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
