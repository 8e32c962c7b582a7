"""Deliveries' events: written with the change they report, read in order by id.

Every writer of a delivery's status inserts the event in its own transaction, right
after the change: `DeliveryStore.add_deliveries` (a delivery stored already final: a bad
phone, an opt-out), `DeliveryStore.save_progress` (the send and track loops) and
`CallbackStore.apply_status_by_sid` (Twilio's status callbacks). So an event exists if and
only if its change was committed, and:

- a delivery's events are in the order of its changes (each writer holds the row, a row
  lock on PostgreSQL or SQLite's one write lock, while it compares and writes);
- its final event (the one with a `status`) is written exactly once: it is written by the
  one transaction that moves the delivery to DONE, and a DONE row is never written again
  by either writer (`stage != 'done'` in both);
- ids are handed out in commit order (`Database.commit_in_order` on PostgreSQL, where
  concurrent transactions could otherwise commit ids out of order; SQLite has one writer),
  so a reader that resumes after the last id it saw misses nothing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Row, and_, func, select

from smslink.domain.events import DeliveryEvent
from smslink.store.database import Database
from smslink.store.rows import column_arrays
from smslink.store.schema import deliveries, events, runs

_E = events.c
_COLUMNS = (
    "run_id", "seq", "created_at", "status", "twilio_status", "error_code", "error_message",
    "segments", "message_sid",
)  # fmt: skip
_INSERT_SQL = (
    f"INSERT INTO events ({', '.join(_COLUMNS)}) VALUES ({', '.join(['{p}'] * len(_COLUMNS))})"
)
_PG_INSERT_SQL = (
    f"INSERT INTO events ({', '.join(_COLUMNS)}) SELECT {', '.join(_COLUMNS)} FROM unnest("
    "%s::integer[], %s::integer[], %s::timestamptz[], %s::varchar[], %s::varchar[], "
    "%s::integer[], %s::text[], %s::integer[], %s::varchar[]) WITH ORDINALITY AS e("
    f"{', '.join(_COLUMNS)}, n) ORDER BY n"
)
#: The name of the lock that keeps event ids in commit order (PostgreSQL).
ORDER_LOCK = "smslink.events"

#: One event as a driver-level row, in the order of `_COLUMNS` (created_at already bound).
EventRow = tuple[int, int, object, str | None, str | None, int | None, str | None, int, str | None]


class EventWriter:
    """Inserts events inside a writer's transaction (never one of its own)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._insert_sql = _INSERT_SQL.format(p=db.placeholder)

    def write(self, conn: Connection, rows: Sequence[EventRow]) -> None:
        """Insert `rows` in one executemany, in their order, as the last writes of `conn`'s
        transaction (the order lock is held from here to the commit)."""
        if not rows:
            return
        self._db.commit_in_order(conn, ORDER_LOCK)
        if self._db.postgres:
            # One statement over column arrays: a third of what psycopg's executemany
            # costs per row here (measured on 500-row batches).
            conn.exec_driver_sql(_PG_INSERT_SQL, column_arrays(rows))
        else:
            conn.exec_driver_sql(self._insert_sql, list(rows))


class EventStore:
    """Reading events back: all of them after a cursor, or one delivery's."""

    def __init__(self, db: Database) -> None:
        self._engine = db.engine

    def after(self, event_id: int, limit: int) -> list[DeliveryEvent]:
        """Up to `limit` events with ids above `event_id`, in id order."""
        query = (
            events_with_touchpoint().where(_E.id > event_id).order_by(_E.id).limit(max(0, limit))
        )
        with self._engine.connect() as conn:
            return [event_of(r) for r in conn.execute(query)]

    def of_delivery(self, run_id: int, seq: int) -> list[DeliveryEvent]:
        """One delivery's events, in order."""
        query = events_with_touchpoint().where(_E.run_id == run_id, _E.seq == seq).order_by(_E.id)
        with self._engine.connect() as conn:
            return [event_of(r) for r in conn.execute(query)]

    def last_id(self) -> int:
        """The newest event's id; 0 when there is none."""
        with self._engine.connect() as conn:
            return int(conn.execute(select(func.coalesce(func.max(_E.id), 0))).scalar_one())


def events_with_touchpoint() -> Any:
    """Events with their run's touchpoint and their delivery's identity (a journey's)."""
    return select(events, runs.c.touchpoint, deliveries.c.identity_json).select_from(
        events.outerjoin(runs, runs.c.id == _E.run_id).outerjoin(
            deliveries,
            and_(deliveries.c.run_id == _E.run_id, deliveries.c.seq == _E.seq),
        )
    )


def event_of(r: Row[Any]) -> DeliveryEvent:
    return DeliveryEvent(
        id=r.id,
        run_id=r.run_id,
        seq=r.seq,
        created_at=r.created_at,
        status=r.status,
        twilio_status=r.twilio_status,
        error_code=r.error_code,
        error_message=r.error_message,
        segments=r.segments,
        message_sid=r.message_sid,
        touchpoint=r.touchpoint,
        identity=json.loads(r.identity_json) if r.identity_json is not None else None,
    )
