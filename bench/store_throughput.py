"""What the store costs per message: times each hot path over a 100,000-delivery run.

Not a test. Run it with `python bench/store_throughput.py` (SQLite file in a temp dir) or
`--url postgresql://postgres@127.0.0.1/test` (uses and then drops its own schema).
A message passes through: one ingest insert, one claim, two progress writes (POSTING ->
TRACKING with its sid, then TRACKING -> DONE), and one read when results are written.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from smslink.domain.models import Delivery, Progress, ResultStatus, RunSnapshot, Stage
from smslink.store import Store, open_store
from smslink.store.location import normalise_database_url
from smslink.store.secrets import SecretBox

INGEST_BATCH = 1000
CLAIM_BATCH = 100
PROGRESS_BATCH = 500


def _timed(label: str, n: int, work: Callable[[], None]) -> float:
    started = time.perf_counter()
    work()
    elapsed = time.perf_counter() - started
    print(f"  {label:<44} {n / elapsed:>10,.0f} rows/s  {elapsed * 1e6 / n:>6.1f} us/row")
    return elapsed


def _delivery(run_id: int, seq: int) -> Delivery:
    return Delivery(
        run_id=run_id,
        seq=seq,
        row={
            "customer_id": f"C{seq:08d}",
            "first_name": "Zoë",
            "last_name": "Example",
            "mobile": f"+1555{seq:07d}",
            "city": "Zürich",
            "segment": "gold",
        },
        to=f"+1555{seq:07d}",
        body=f"Hi Zoë, your code is {seq:06d}. Reply STOP to opt out.",
        segments=1,
    )


def bench(store: Store, n: int) -> None:
    run_id = store.runs.create_run(
        touchpoint="bench",
        connection="bench",
        input_path="-",
        output_path="-",
        snapshot=RunSnapshot("Hi", "mobile"),
    ).id
    columns = ["customer_id", "first_name", "last_name", "mobile", "city", "segment"]

    def ingest() -> None:
        for start in range(0, n, INGEST_BATCH):
            batch = [_delivery(run_id, s) for s in range(start, min(start + INGEST_BATCH, n))]
            store.deliveries.add_deliveries(run_id, batch, columns)

    claimed: list[int] = []
    # Random, as Twilio's are (seeded, for the same work each run): sids in seq order would
    # grow the sid index at its end only, and hide what a real run's writes cost it.
    rng = random.Random(1)
    sids = [f"SM{rng.getrandbits(128):032x}" for _ in range(n)]

    def claim() -> None:
        now = datetime.now(UTC)
        while batch := store.deliveries.claim_pending(run_id, CLAIM_BATCH, now):
            claimed.extend(o.seq for o in batch)

    def progress(stage: Stage, status: ResultStatus | None, twilio: str) -> Callable[[], None]:
        def work() -> None:
            for start in range(0, n, PROGRESS_BATCH):
                store.deliveries.save_progress(
                    [
                        Progress(run_id, s, stage, status, twilio, sids[s], polls=1)
                        for s in claimed[start : start + PROGRESS_BATCH]
                    ]
                )

        return work

    def read() -> None:
        assert sum(1 for _ in store.deliveries.iter_deliveries(run_id)) == n

    per_message = 0.0
    per_message += _timed(f"add_deliveries (batches of {INGEST_BATCH})", n, ingest)
    per_message += _timed(f"claim_pending ({CLAIM_BATCH} at a time)", n, claim)
    assert len(claimed) == n
    per_message += _timed(
        f"save_progress -> tracking ({PROGRESS_BATCH}/batch)",
        n,
        progress(Stage.TRACKING, None, "sent"),
    )
    per_message += _timed(
        f"save_progress -> done ({PROGRESS_BATCH}/batch)",
        n,
        progress(Stage.DONE, ResultStatus.DELIVERED, "delivered"),
    )
    per_message += _timed("iter_deliveries (with rows, 1000/page)", n, read)
    started = time.perf_counter()
    totals = store.deliveries.totals(run_id)
    print(f"  {'totals (one GROUP BY)':<44} {(time.perf_counter() - started) * 1e3:>10.1f} ms")
    assert totals.done == n
    print(
        f"  {'whole life of one message':<44} {n / per_message:>10,.0f} msg/s  "
        f"{per_message * 1e6 / n:>6.1f} us/msg"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="database URL (default: a SQLite file in a temp dir)")
    parser.add_argument("-n", type=int, default=100_000, help="deliveries (default 100000)")
    args = parser.parse_args()
    box = SecretBox(Fernet.generate_key())
    if args.url is None:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            print(f"SQLite file, {args.n:,} deliveries")
            with open_store(url, secret_box=box) as store:
                bench(store, args.n)
        return
    base = normalise_database_url(args.url)
    schema = f"smslink_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
        print(f"{make_url(base).get_backend_name()}, {args.n:,} deliveries")
        with open_store(url.render_as_string(hide_password=False), secret_box=box) as store:
            bench(store, args.n)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


if __name__ == "__main__":
    main()
