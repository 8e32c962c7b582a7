"""Shared pacing state: what Redis and PostgreSQL cost per operation, from several processes.

Not a test. Several worker processes send for one Twilio account at once, so the account's
request window and each sender's segment rate must be kept in a shared backend. This
measures the two operations the engine needs (engine/shared_pacing.py), each from
`--procs` processes at once with `--tasks` concurrent tasks each, all on one key (one
account, one sender: the contended case):

* `reserve`: book the next free moment for k segments at rate r and return the wait (the
  segment rate; nothing sleeps here, only the booking is timed);
* `window`: acquire a slot in the account's window, then release it with the AIMD update
  (the adaptive window; the slot is given back at once, so only the pair is timed).

Backends:

* `redis`: smslink's adapter (`smslink.limits.redis`): redis-py's asyncio client, one Lua
  script (EVALSHA) per operation;
* `postgres`: psycopg 3 async, autocommit, one statement per operation: the reservation
  an `INSERT ... ON CONFLICT DO UPDATE ... RETURNING` on one row per sender, the window
  two PL/pgSQL functions (the account's row locked FOR UPDATE, a row per slot with its
  expiry), in ordinary tables (every commit flushes WAL);
* `postgres-unlogged`: the same in UNLOGGED tables (no WAL: the fastest PostgreSQL can do
  this, at the price of losing the state on a crash, which pacing can afford).

Each configuration runs for `--seconds` after a warm-up; the processes start together on a
barrier. Reported per operation: ops/s (all processes), client CPU (user + sys of the
worker processes over the timed span, from `time.process_time()` in each), server CPU
(user + sys, read with psutil before and after while the workers' connections are still
open, of the `redis-server` process, or of the PostgreSQL backends serving the workers
plus the server's own processes: WAL writer, checkpointer and the like, but not other
clients' backends), and latency p50 / p99.

    python bench/shared_limits.py --procs 4 --tasks 8 --seconds 5
    python bench/shared_limits.py --only redis --ops window
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import random
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

BACKENDS = ("redis", "postgres", "postgres-unlogged")
OPS = ("reserve", "window")

#: The window's rules, as engine/pacing.py has them (here only their cost matters).
BACKOFF_FACTOR = 0.9
PROBE_SLOWDOWN = 8
#: Large enough that no acquire is refused: every pair is one acquire and one release.
CEILING = 1000
HOLD_S = 30.0

# -- PostgreSQL: the candidate implementation -----------------------------------------------

PG_DDL = """
CREATE {unlogged} TABLE pacing_window (
    key text PRIMARY KEY,
    win double precision NOT NULL,
    generation integer NOT NULL DEFAULT 0,
    slow_start boolean NOT NULL DEFAULT true,
    limit_seen double precision
);
CREATE {unlogged} TABLE pacing_slot (
    key text NOT NULL,
    slot text NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (key, slot)
);
CREATE {unlogged} TABLE pacing_rate (
    key text PRIMARY KEY,
    next_free double precision NOT NULL
);

CREATE FUNCTION pacing_acquire(
    k text, s text, ceiling integer, initial integer, hold double precision,
    OUT admitted boolean, OUT in_flight integer, OUT gen integer, OUT win double precision)
LANGUAGE plpgsql AS $$
DECLARE
    w pacing_window%ROWTYPE;
BEGIN
    SELECT * INTO w FROM pacing_window WHERE key = k FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO pacing_window (key, win) VALUES (k, least(ceiling, greatest(1, initial)))
        ON CONFLICT (key) DO NOTHING;
        SELECT * INTO w FROM pacing_window WHERE key = k FOR UPDATE;
    END IF;
    DELETE FROM pacing_slot WHERE key = k AND expires_at <= clock_timestamp();
    SELECT count(*) INTO in_flight FROM pacing_slot WHERE key = k;
    admitted := in_flight < greatest(1, floor(least(w.win, ceiling)));
    IF admitted THEN
        INSERT INTO pacing_slot VALUES (k, s, clock_timestamp() + hold * interval '1 second');
        in_flight := in_flight + 1;
    END IF;
    gen := w.generation;
    win := w.win;
END $$;

CREATE FUNCTION pacing_release(
    k text, s text, sent_gen integer, load integer, throttled boolean, answered boolean,
    ceiling integer, backoff double precision, slowdown double precision,
    OUT in_flight integer, OUT gen integer, OUT win double precision, OUT decreased boolean)
LANGUAGE plpgsql AS $$
DECLARE
    w pacing_window%ROWTYPE;
    step double precision;
BEGIN
    SELECT * INTO w FROM pacing_window WHERE key = k FOR UPDATE;
    DELETE FROM pacing_slot WHERE key = k AND slot = s;
    decreased := false;
    IF answered AND w.key IS NOT NULL THEN
        IF throttled THEN
            IF sent_gen = w.generation THEN
                w.slow_start := false;
                w.generation := w.generation + 1;
                decreased := true;
                w.limit_seen := greatest(1, load - 1);
                w.win := greatest(1.0, least(w.win, load) * backoff);
            END IF;
        ELSE
            IF w.slow_start THEN
                step := 1;
            ELSE
                step := 1 / w.win;
                IF w.limit_seen IS NOT NULL AND w.win >= w.limit_seen THEN
                    step := step / slowdown;
                END IF;
            END IF;
            w.win := greatest(w.win, least(ceiling, w.win + step));
        END IF;
        UPDATE pacing_window
        SET win = w.win, generation = w.generation, slow_start = w.slow_start,
            limit_seen = w.limit_seen
        WHERE key = k;
    END IF;
    SELECT count(*) INTO in_flight FROM pacing_slot WHERE key = k;
    gen := w.generation;
    win := w.win;
END $$;
"""

PG_RESERVE = """
INSERT INTO pacing_rate AS r (key, next_free)
VALUES (%(k)s, extract(epoch FROM clock_timestamp()) + %(d)s)
ON CONFLICT (key) DO UPDATE
SET next_free = greatest(r.next_free, extract(epoch FROM clock_timestamp())) + %(d)s
RETURNING r.next_free - %(d)s - extract(epoch FROM clock_timestamp())
"""
PG_ACQUIRE = "SELECT * FROM pacing_acquire(%s, %s, %s, %s, %s)"
PG_RELEASE = "SELECT * FROM pacing_release(%s, %s, %s, %s, %s, %s, %s, %s, %s)"


def pg_conninfo(url: str, schema: str) -> str:
    from psycopg.conninfo import make_conninfo

    return make_conninfo(url.replace("postgresql+psycopg://", "postgresql://"),
                         options=f"-csearch_path={schema}")  # fmt: skip


def pg_setup(url: str, schema: str, unlogged: bool) -> None:
    import psycopg

    with psycopg.connect(pg_conninfo(url, "public"), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(f'SET search_path TO "{schema}"')
        conn.execute(PG_DDL.format(unlogged="UNLOGGED" if unlogged else ""))


def pg_drop(url: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(pg_conninfo(url, "public"), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


# -- one worker process ---------------------------------------------------------------------


@dataclass
class Config:
    backend: str
    op: str
    tasks: int
    seconds: float
    warmup_s: float
    segments: int
    per_second: float
    throttle_share: float
    redis_url: str
    pg_url: str
    schema: str
    prefix: str


Op = Callable[[], Awaitable[Any]]


Made = tuple[list[Op], Callable[[], Awaitable[None]], list[int]]


async def redis_ops(cfg: Config, proc: int) -> Made:
    """One RedisPacingBackend (one connection pool) per process, shared by its tasks."""
    from smslink.limits.redis import RedisPacingBackend

    backend = RedisPacingBackend(cfg.redis_url, prefix=cfg.prefix)
    ops: list[Op] = []
    for task in range(cfg.tasks):
        if cfg.op == "reserve":

            async def reserve() -> float:
                return await backend.reserve("rate", cfg.segments, cfg.per_second)

            ops.append(reserve)
        else:
            counter = iter(range(10**12))

            async def pair(task: int = task, counter: Any = counter) -> None:
                slot = f"{proc}:{task}:{next(counter)}"
                while True:
                    got = await backend.acquire_slot(
                        "window", slot, ceiling=CEILING, initial=CEILING, hold_s=HOLD_S
                    )
                    if got.admitted:
                        break
                await backend.release_slot(
                    "window", slot, generation=got.generation, load=got.in_flight,
                    throttled=random.random() < cfg.throttle_share, answered=True,
                    ceiling=CEILING, initial=CEILING, backoff=BACKOFF_FACTOR,
                    probe_slowdown=PROBE_SLOWDOWN,
                )  # fmt: skip

            ops.append(pair)
    return ops, backend.aclose, []


async def pg_ops(cfg: Config, proc: int) -> Made:
    """One connection per task (psycopg runs one statement at a time per connection)."""
    import psycopg

    conns = [
        await psycopg.AsyncConnection.connect(pg_conninfo(cfg.pg_url, cfg.schema), autocommit=True)
        for _ in range(cfg.tasks)
    ]
    ops: list[Op] = []
    delay = max(1, cfg.segments) / cfg.per_second
    for task, conn in enumerate(conns):
        if cfg.op == "reserve":

            async def reserve(conn: Any = conn) -> float:
                cur = await conn.execute(PG_RESERVE, {"k": "rate", "d": delay})
                return float((await cur.fetchone())[0])

            ops.append(reserve)
        else:
            counter = iter(range(10**12))

            async def pair(conn: Any = conn, task: int = task, counter: Any = counter) -> None:
                slot = f"{proc}:{task}:{next(counter)}"
                while True:
                    cur = await conn.execute(PG_ACQUIRE, ("window", slot, CEILING, CEILING, HOLD_S))
                    admitted, in_flight, gen, _ = await cur.fetchone()
                    if admitted:
                        break
                throttled = random.random() < cfg.throttle_share
                await conn.execute(
                    PG_RELEASE,
                    ("window", slot, gen, in_flight, throttled, True, CEILING,
                     BACKOFF_FACTOR, PROBE_SLOWDOWN),
                )  # fmt: skip

            ops.append(pair)

    async def close() -> None:
        for conn in conns:
            await conn.close()

    return ops, close, [conn.info.backend_pid for conn in conns]


async def run_worker(cfg: Config, proc: int, barrier: Any, pids: Any) -> dict[str, Any]:
    make = redis_ops if cfg.backend == "redis" else pg_ops
    ops, close, server_pids = await make(cfg, proc)
    try:
        # Warm up: connections made, scripts loaded, statements prepared, caches hot.
        warm_until = time.perf_counter() + cfg.warmup_s
        while time.perf_counter() < warm_until:
            await asyncio.gather(*(op() for op in ops))
        pids.put(server_pids)
        barrier.wait()  # ready: the parent reads the server's CPU
        barrier.wait()  # go
        latencies: list[float] = []
        count = 0
        cpu0, t0 = time.process_time(), time.perf_counter()
        deadline = t0 + cfg.seconds

        async def loop(op: Op) -> None:
            nonlocal count
            while (started := time.perf_counter()) < deadline:
                await op()
                latencies.append(time.perf_counter() - started)
                count += 1

        await asyncio.gather(*(loop(op) for op in ops))
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
        barrier.wait()  # done: the parent reads the server's CPU again
        barrier.wait()  # read: connections may close
    finally:
        await close()
    return {"ops": count, "cpu_s": cpu, "wall_s": wall, "latencies": latencies}


def worker_main(cfg: Config, proc: int, barrier: Any, pids: Any, results: Any) -> None:
    try:
        results.put((proc, asyncio.run(run_worker(cfg, proc, barrier, pids))))
    except BaseException as error:
        barrier.abort()
        results.put((proc, {"error": f"{type(error).__name__}: {error}"}))
        raise


# -- the parent ----------------------------------------------------------------------------


def server_pids(cfg: Config, backends: list[int]) -> list[int]:
    """The server processes whose CPU counts: Redis's one process; for PostgreSQL the
    backends of the workers' connections and the server's own processes (WAL writer,
    checkpointer, background writer, autovacuum...), not other clients' backends (the
    machine may run other work on the same server)."""
    import psutil

    if cfg.backend == "redis":
        return [p.pid for p in psutil.process_iter(["name"]) if p.info["name"] == "redis-server"]
    import psycopg

    with psycopg.connect(pg_conninfo(cfg.pg_url, "public")) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE backend_type <> 'client backend'"
        ).fetchall()
        postmaster = psutil.Process(conn.info.backend_pid).ppid()
    return [*backends, *(row[0] for row in rows), postmaster]


def server_cpu(pids: list[int]) -> dict[int, float]:
    """CPU seconds (user + sys) of each of `pids` still running."""
    import psutil

    seen: dict[int, float] = {}
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.Error:
            continue
        seen[pid] = times.user + times.system
    return seen


@dataclass
class Result:
    backend: str
    op: str
    ops: int
    wall_s: float
    client_cpu_s: float
    server_cpu_s: float
    p50_ms: float
    p99_ms: float

    @property
    def rate(self) -> float:
        return self.ops / self.wall_s

    def row(self) -> str:
        us = 1e6 / self.ops
        return (
            f"{self.backend:<18} {self.op:<8} {self.rate:>9,.0f} ops/s  "
            f"client {self.client_cpu_s * us:>6.1f} us/op  server {self.server_cpu_s * us:>6.1f} "
            f"us/op  p50 {self.p50_ms:>6.2f} ms  p99 {self.p99_ms:>6.2f} ms"
        )


def measure(cfg: Config, procs: int) -> Result:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(procs + 1, timeout=120)
    pids, results = ctx.Queue(), ctx.Queue()
    workers = [
        ctx.Process(target=worker_main, args=(cfg, i, barrier, pids, results), daemon=True)
        for i in range(procs)
    ]
    for w in workers:
        w.start()
    try:
        barrier.wait()
        measured = server_pids(cfg, [pid for _ in workers for pid in pids.get(timeout=10)])
        before = server_cpu(measured)
        barrier.wait()
        barrier.wait()
        after = server_cpu(measured)
        barrier.wait()
    except Exception as error:
        barrier.abort()
        for w in workers:
            w.join(timeout=10)
        errors = [results.get(timeout=10)[1].get("error") for _ in range(results.qsize())]
        raise SystemExit(f"{cfg.backend}/{cfg.op} failed: {error!r}; workers: {errors}") from None
    got = [results.get(timeout=60)[1] for _ in workers]
    for w in workers:
        w.join(timeout=30)
    server = sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())
    latencies = sorted(x for g in got for x in g["latencies"])
    return Result(
        backend=cfg.backend,
        op=cfg.op,
        ops=sum(g["ops"] for g in got),
        wall_s=max(g["wall_s"] for g in got),
        client_cpu_s=sum(g["cpu_s"] for g in got),
        server_cpu_s=server,
        p50_ms=statistics.median(latencies) * 1000,
        p99_ms=latencies[int(len(latencies) * 0.99)] * 1000,
    )


def versions(args: argparse.Namespace, backends: list[str]) -> str:
    import psycopg
    import redis

    parts = [f"CPython {sys.version.split()[0]}"]
    if "redis" in backends:
        server = redis.Redis.from_url(args.redis_url).info("server")["redis_version"]
        parts.append(f"redis-server {server}, redis-py {redis.__version__}")
    if any(b.startswith("postgres") for b in backends):
        with psycopg.connect(pg_conninfo(args.pg_url, "public")) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            sync = conn.execute("SHOW synchronous_commit").fetchone()
        assert row is not None and sync is not None
        parts.append(
            f"PostgreSQL {row[0]} (synchronous_commit {sync[0]}), psycopg {psycopg.__version__}"
        )
    return "; ".join(parts)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--procs", type=int, default=4, help="worker processes at once")
    parser.add_argument("--tasks", type=int, default=8, help="concurrent tasks per process")
    parser.add_argument("--seconds", type=float, default=5.0, help="timed span per case")
    parser.add_argument("--warmup-s", type=float, default=0.5)
    parser.add_argument("--only", choices=BACKENDS, action="append", help="repeatable")
    parser.add_argument("--ops", choices=OPS, action="append", help="repeatable")
    parser.add_argument("--segments", type=int, default=2, help="k segments per reservation")
    parser.add_argument("--per-second", type=float, default=100.0, help="rate r, segments/s")
    parser.add_argument(
        "--throttle-share", type=float, default=0.0,
        help="share of releases reported as 429 (the window then shrinks and refuses)",
    )  # fmt: skip
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/test")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    backends = args.only or list(BACKENDS)
    ops = args.ops or list(OPS)
    print(versions(args, backends))
    print(
        f"{args.procs} processes x {args.tasks} tasks, {args.seconds:g} s per case, one key "
        f"each; reserve: {args.segments} segments at {args.per_second:g}/s"
    )
    results: list[Result] = []
    for backend in backends:
        token = uuid.uuid4().hex[:12]
        schema = f"bench_limits_{token}"
        prefix = f"bench:limits:{token}:"
        if backend.startswith("postgres"):
            pg_setup(args.pg_url, schema, unlogged=backend == "postgres-unlogged")
        try:
            for op in ops:
                cfg = Config(
                    backend=backend, op=op, tasks=args.tasks, seconds=args.seconds,
                    warmup_s=args.warmup_s, segments=args.segments,
                    per_second=args.per_second, throttle_share=args.throttle_share,
                    redis_url=args.redis_url, pg_url=args.pg_url, schema=schema,
                    prefix=prefix,
                )  # fmt: skip
                result = measure(cfg, args.procs)
                print(result.row(), flush=True)
                results.append(result)
        finally:
            if backend.startswith("postgres"):
                pg_drop(args.pg_url, schema)
            else:
                cleanup_redis(args.redis_url, prefix)
    print()
    print("| backend | operation | ops/s | client CPU µs/op | server CPU µs/op | p50 / p99 ms |")
    print("|---|---|---:|---:|---:|---:|")
    for r in results:
        us = 1e6 / r.ops
        print(
            f"| {r.backend} | {r.op} | {r.rate:,.0f} | {r.client_cpu_s * us:.0f} | "
            f"{r.server_cpu_s * us:.1f} | {r.p50_ms:.2f} / {r.p99_ms:.2f} |"
        )


def cleanup_redis(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=prefix + "*"))
    if keys:
        client.delete(*keys)
    client.close()


if __name__ == "__main__":
    main()
