"""Live workers: each writes its row every few seconds, so anyone can list them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, insert, select, update

from smslink.store.database import Database
from smslink.store.schema import workers


@dataclass(frozen=True, slots=True)
class WorkerRow:
    """What a worker last said of itself."""

    owner: str  # host:pid:...: the name its leases carry
    started_at: datetime
    seen_at: datetime
    concurrency: int
    queues: list[str]
    posted: int  # messages it posted since it started
    rate: float  # messages per second over its last beats
    runs: list[int]  # the runs it is working on


class WorkerStore:
    """The `workers` table; see the module docstring."""

    def __init__(self, db: Database) -> None:
        self._engine = db.engine

    def beat(self, row: WorkerRow) -> None:
        """Write the worker's row (insert the first time, update after)."""
        values = {
            "started_at": row.started_at,
            "seen_at": row.seen_at,
            "concurrency": row.concurrency,
            "queues": json.dumps(row.queues),
            "posted": row.posted,
            "rate": row.rate,
            "runs_json": json.dumps(row.runs),
        }
        with self._engine.begin() as conn:
            changed = conn.execute(
                update(workers).where(workers.c.owner == row.owner).values(**values)
            ).rowcount
            if not changed:
                conn.execute(insert(workers).values(owner=row.owner, **values))

    def seen_since(self, since: datetime) -> list[WorkerRow]:
        """Workers whose last beat is at or after `since`, oldest first."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(workers).where(workers.c.seen_at >= since).order_by(workers.c.started_at)
            ).all()
        return [
            WorkerRow(
                owner=r.owner,
                started_at=r.started_at,
                seen_at=r.seen_at,
                concurrency=r.concurrency,
                queues=json.loads(r.queues),
                posted=r.posted,
                rate=r.rate,
                runs=json.loads(r.runs_json),
            )
            for r in rows
        ]

    def forget(self, owner: str) -> None:
        """Remove the row of a worker that stopped."""
        with self._engine.begin() as conn:
            conn.execute(delete(workers).where(workers.c.owner == owner))

    def forget_older_than(self, moment: datetime) -> None:
        """Remove the rows of workers not seen since `moment` (they died)."""
        with self._engine.begin() as conn:
            conn.execute(delete(workers).where(workers.c.seen_at < moment))
