"""Runs: creating one without colliding with another, reading and updating it, and the lease
that lets one process at a time work on it.

Kept apart from the deliveries (`store.deliveries`) because a run row is written a handful
of times in its life and its rules are about processes, not throughput: run creation checks
for conflicts and inserts under one lock, and one UPDATE decides who holds a lease.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from types import EllipsisType
from typing import Any

from sqlalchemy import ColumnElement, Table, Update, and_, insert, or_, select, update
from sqlalchemy import Connection as DBConnection

from smslink.domain.errors import say
from smslink.domain.models import JOURNEY, Run, RunSnapshot, RunState
from smslink.store.database import Database
from smslink.store.errors import LeaseTaken, NotFound, RunConflict
from smslink.store.rows import dumps, to_run
from smslink.store.schema import run_parts, runs

#: Serialises run creation (its conflict checks) per PostgreSQL schema.
_RUN_CREATION_LOCK = "smslink:runs:"


@dataclass(frozen=True, slots=True)
class LeaseHolder:
    """The process that must still hold a run's lease (or the lease of one `part` of it)
    for a write in its name to land: see `holds_lease`."""

    run_id: int
    owner: str
    part: int | None = None


def holds_lease(conn: DBConnection, holder: LeaseHolder, *, postgres: bool) -> bool:
    """True when the lease still names `holder.owner`, expired or not: no other process
    has taken it. On PostgreSQL the lease's row is locked FOR SHARE until `conn`'s
    transaction ends, so a process taking the lease over waits for the write to commit
    (and then sees it); SQLite's one writer at a time gives the same, in a transaction
    begun IMMEDIATE."""
    if holder.part is None:
        query = select(runs.c.lease_owner).where(runs.c.id == holder.run_id)
    else:
        query = select(run_parts.c.lease_owner).where(
            run_parts.c.run_id == holder.run_id, run_parts.c.part == holder.part
        )
    if postgres:
        query = query.with_for_update(read=True)
    return conn.execute(query).scalar() == holder.owner


def _run_row(run_id: int, holder: LeaseHolder | None) -> Update:
    """An UPDATE of the run's row; with `holder`, of that row only while its lease names
    `holder` (on PostgreSQL a concurrent takeover is waited for and the condition
    checked again on the row it left)."""
    if holder is None:
        return update(runs).where(runs.c.id == run_id)
    if holder.part is not None:
        raise ValueError("a run's row is fenced by the run's lease, not a part's")
    return update(runs).where(runs.c.id == run_id, runs.c.lease_owner == holder.owner)


def _lease_free(
    table: Table, owner: str, *, now: datetime, replacing: str | None = None
) -> ColumnElement[bool]:
    """The condition under which `owner` may take a lease row of `table` (runs or
    run_parts): nobody holds it, it expired, it is `owner`'s already, or its holder is
    `replacing` (proven dead by the caller)."""
    free = or_(
        table.c.lease_owner.is_(None), table.c.lease_expires < now, table.c.lease_owner == owner
    )
    return free if replacing is None else or_(free, table.c.lease_owner == replacing)


class RunStore:
    """Runs and their leases; see the module docstring."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._engine = db.engine

    def create_run(
        self,
        *,
        touchpoint: str,
        connection: str,
        input_path: str,
        output_path: str,
        snapshot: RunSnapshot,
        columns: list[str] | None = None,
        origin: str = "cli",
        fingerprint: str | None = None,
        repeat_since: datetime | None = None,
        now: datetime | None = None,
    ) -> Run:
        """Store a new run, unless an earlier one stands in its way (RunConflict):

        - one that is unfinished and will write its results to the same `output_path`;
        - with `fingerprint` given: one of the same touchpoint whose snapshot carries the
          same fingerprint and that is unfinished or was created at or after `repeat_since`.

        Checked and inserted under one lock, so two sends started at the same instant
        cannot both pass the check.
        """
        created_at = now or datetime.now(UTC)
        settings_json = dumps(snapshot.to_json())
        with self._engine.begin() as conn:
            # PostgreSQL: an advisory lock per schema; SQLite: the write lock, taken at once.
            self._db.hold_write_lock(conn, _RUN_CREATION_LOCK)
            conflict = self._conflicting_run(
                conn, touchpoint, output_path, fingerprint, repeat_since or created_at
            )
            if conflict is not None:
                raise RunConflict(*conflict)
            result = conn.execute(
                insert(runs).values(
                    touchpoint=touchpoint,
                    connection=connection,
                    input_path=input_path,
                    output_path=output_path,
                    state=RunState.CREATED.value,
                    created_at=created_at,
                    columns_json=dumps(columns or []),
                    total=0,
                    audience_complete=False,
                    settings_json=settings_json,
                    origin=origin,
                )
            )
            key = result.inserted_primary_key
            assert key is not None  # an INSERT of one row always has one
            run_id = key[0]
        return Run(
            id=run_id,
            touchpoint=touchpoint,
            connection=connection,
            input_path=input_path,
            output_path=output_path,
            state=RunState.CREATED,
            created_at=created_at,
            columns=list(columns or []),
            snapshot=RunSnapshot.from_json(json.loads(settings_json)),  # as get_run reads it
            origin=origin,
        )

    def _conflicting_run(
        self,
        conn: DBConnection,
        touchpoint: str,
        output_path: str,
        fingerprint: str | None,
        since: datetime,
    ) -> tuple[Run, str] | None:
        unfinished = runs.c.state != RunState.COMPLETED.value
        same_output = conn.execute(
            select(runs).where(unfinished, runs.c.output_path == output_path).limit(1)
        ).first()
        if same_output is not None:
            return to_run(same_output), "output"
        if fingerprint is None:
            return None
        candidates = conn.execute(
            select(runs)
            .where(runs.c.touchpoint == touchpoint, or_(unfinished, runs.c.created_at >= since))
            .order_by(runs.c.id.desc())
        ).all()
        for row in candidates:
            run = to_run(row)
            if run.snapshot.fingerprint == fingerprint:
                return run, "repeat"
        return None

    def get_run(self, run_id: int) -> Run:
        with self._engine.connect() as conn:
            row = conn.execute(select(runs).where(runs.c.id == run_id)).first()
        if row is None:
            raise NotFound(say("no run %(run)s", run=str(run_id)))
        return to_run(row)

    def runs_to_resume(self, origin: str) -> list[Run]:
        """Runs of `origin` that were being sent when their process went away (sending or
        interrupted): what a restarted service picks up again. Stopped runs stay stopped:
        someone or something decided they should wait. A journey's standing run is also
        picked up when it was created but not started yet (its records are stored)."""
        unfinished = [RunState.SENDING.value, RunState.INTERRUPTED.value]
        if origin == JOURNEY:
            unfinished.append(RunState.CREATED.value)
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(runs)
                .where(runs.c.origin == origin, runs.c.state.in_(unfinished))
                .order_by(runs.c.id)
            ).all()
        return [to_run(r) for r in rows]

    def queued_sending(self) -> list[Run]:
        """Runs the workers are sending now: queued, not asked to stop, and sending (or a
        journey's run not started yet, or interrupted: its worker went away)."""
        journey_waiting = and_(
            runs.c.origin == JOURNEY,
            runs.c.state.in_([RunState.CREATED.value, RunState.INTERRUPTED.value]),
        )
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(runs).where(
                    runs.c.queued.is_(True),
                    or_(runs.c.state == RunState.SENDING.value, journey_waiting),
                    runs.c.stop_requested_at.is_(None),
                )
            ).all()
        return [to_run(r) for r in rows]

    def list_runs(self, limit: int = 20) -> list[Run]:
        with self._engine.connect() as conn:
            rows = conn.execute(select(runs).order_by(runs.c.id.desc()).limit(limit)).all()
        return [to_run(r) for r in rows]

    def update_run(
        self,
        run_id: int,
        *,
        state: RunState | None = None,
        columns: list[str] | None = None,
        error: str | EllipsisType | None = ...,
        finished_at: datetime | None = None,
        audience_complete: bool | None = None,
        output_path: str | None = None,
        snapshot: RunSnapshot | None = None,
        queued: bool | None = None,
        stop_request_cleared: bool = False,
        holder: LeaseHolder | None = None,
    ) -> None:
        """Change only the fields given; `error=None` clears the error (hence the `...`
        default meaning "leave it"). `stop_request_cleared` forgets an earlier request to
        stop, in the same UPDATE: the run is being resumed on purpose.

        With `holder` (a run's lease, not a part's), only while the run's lease still
        names that process, decided by the UPDATE itself: LeaseTaken, and nothing
        changed, once another process has taken the run over (its state is the
        successor's to write)."""
        values: dict[str, Any] = {}
        if output_path is not None:
            values["output_path"] = output_path
        if snapshot is not None:
            values["settings_json"] = dumps(snapshot.to_json())
        if state is not None:
            values["state"] = state.value
        if columns is not None:
            values["columns_json"] = dumps(columns)
        if not isinstance(error, EllipsisType):
            values["error"] = error
        if finished_at is not None:
            values["finished_at"] = finished_at
        if audience_complete is not None:
            values["audience_complete"] = audience_complete
        if queued is not None:
            values["queued"] = queued
        if stop_request_cleared:
            values["stop_requested_at"] = None
        if not values:
            self.get_run(run_id)  # still report a missing run
            return
        with self._engine.begin() as conn:
            result = conn.execute(_run_row(run_id, holder).values(values))
        if result.rowcount == 0:
            self.get_run(run_id)  # NotFound
            if holder is not None:
                # Caught by the engine, never shown: not a translated message.
                raise LeaseTaken(f"run {run_id} is another process's now: not changed")

    # -- leases: one worker per run ---------------------------------------------------

    def acquire_run(
        self, run_id: int, owner: str, *, until: datetime, now: datetime, replacing: str | None
    ) -> str | None:
        """Take the run's lease for `owner`; returns None on success, else the holder.

        The lease is free when nobody holds it, when it has expired, or when its holder is
        `replacing` (a holder the caller has proven dead, e.g. a killed process on this host).
        One UPDATE decides, so two processes can never both succeed.
        """
        free = _lease_free(runs, owner, now=now, replacing=replacing)
        with self._engine.begin() as conn:
            result = conn.execute(
                update(runs)
                .where(runs.c.id == run_id, free)
                .values(lease_owner=owner, lease_expires=until)
            )
            if result.rowcount:
                return None
            holder = conn.execute(select(runs.c.lease_owner).where(runs.c.id == run_id)).first()
        if holder is None:
            raise NotFound(say("no run %(run)s", run=str(run_id)))
        return str(holder.lease_owner)

    def run_lease(self, run_id: int) -> tuple[str | None, datetime | None]:
        """The run's lease holder and expiry, (None, None) when free."""
        with self._engine.connect() as conn:
            row = conn.execute(
                select(runs.c.lease_owner, runs.c.lease_expires).where(runs.c.id == run_id)
            ).first()
        if row is None:
            raise NotFound(say("no run %(run)s", run=str(run_id)))
        return row.lease_owner, row.lease_expires

    def renew_run(self, run_id: int, owner: str, *, until: datetime) -> bool:
        """Extend `owner`'s lease; False when it no longer holds it."""
        with self._engine.begin() as conn:
            result = conn.execute(
                update(runs)
                .where(runs.c.id == run_id, runs.c.lease_owner == owner)
                .values(lease_expires=until)
            )
        return bool(result.rowcount)

    def request_stop(self, run_id: int, *, at: datetime) -> None:
        """Ask whoever is sending the run to stop (it looks every second or so)."""
        with self._engine.begin() as conn:
            result = conn.execute(
                update(runs).where(runs.c.id == run_id).values(stop_requested_at=at)
            )
        if result.rowcount == 0:
            raise NotFound(say("no run %(run)s", run=str(run_id)))

    def stop_requested(self, run_id: int) -> bool:
        """True when the run was asked to stop since it was last started or resumed: one
        read of one column by primary key, cheap enough to ask every second."""
        with self._engine.connect() as conn:
            at = conn.execute(select(runs.c.stop_requested_at).where(runs.c.id == run_id)).scalar()
        return at is not None

    def release_run(self, run_id: int, owner: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                update(runs)
                .where(runs.c.id == run_id, runs.c.lease_owner == owner)
                .values(lease_owner=None, lease_expires=None)
            )

    # -- part leases: one worker per part of a run ------------------------------------

    def acquire_part(
        self,
        run_id: int,
        part: int,
        owner: str,
        *,
        until: datetime,
        now: datetime,
        replacing: str | None,
    ) -> str | None:
        """Take the lease of one part of the run for `owner`, on the rules of
        `acquire_run`; None on success, else the holder."""
        p = self._db.placeholder
        free = _lease_free(run_parts, owner, now=now, replacing=replacing)
        with self._engine.begin() as conn:
            conn.exec_driver_sql(
                f"INSERT INTO run_parts (run_id, part) VALUES ({p}, {p}) ON CONFLICT DO NOTHING",
                (run_id, part),
            )
            result = conn.execute(
                update(run_parts)
                .where(run_parts.c.run_id == run_id, run_parts.c.part == part, free)
                .values(lease_owner=owner, lease_expires=until)
            )
            if result.rowcount:
                return None
            holder = conn.execute(
                select(run_parts.c.lease_owner).where(
                    run_parts.c.run_id == run_id, run_parts.c.part == part
                )
            ).scalar()
        return str(holder)

    def part_lease(self, run_id: int, part: int) -> tuple[str | None, datetime | None]:
        """The part's lease holder and expiry, (None, None) when free."""
        with self._engine.connect() as conn:
            row = conn.execute(
                select(run_parts.c.lease_owner, run_parts.c.lease_expires).where(
                    run_parts.c.run_id == run_id, run_parts.c.part == part
                )
            ).first()
        return (None, None) if row is None else (row.lease_owner, row.lease_expires)

    def renew_part(self, run_id: int, part: int, owner: str, *, until: datetime) -> bool:
        """Extend `owner`'s lease of the part; False when it no longer holds it."""
        with self._engine.begin() as conn:
            result = conn.execute(
                update(run_parts)
                .where(
                    run_parts.c.run_id == run_id,
                    run_parts.c.part == part,
                    run_parts.c.lease_owner == owner,
                )
                .values(lease_expires=until)
            )
        return bool(result.rowcount)

    def release_part(self, run_id: int, part: int, owner: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                update(run_parts)
                .where(
                    run_parts.c.run_id == run_id,
                    run_parts.c.part == part,
                    run_parts.c.lease_owner == owner,
                )
                .values(lease_owner=None, lease_expires=None)
            )

    def take_back_parts(self, run_id: int, owner: str, *, now: datetime) -> list[str]:
        """Take a queued run back from the workers for `owner` (a process that will send
        the rest itself), in one transaction: every part lease that has lapsed, or was
        never taken, passes to `owner` (already expired, so it blocks no one), and the run
        is no longer queued. Returns the holders of part leases still running (then
        nothing changes), or [] on success.

        Taking the lapsed leases is what fences their old holders: a worker paused past
        its lease that wakes finds its renewal and its progress writes refused (the lease
        names another process), instead of sending and writing beside the process that
        took the run back. A worker that takes a part's lease later finds the run no
        longer queued (engine/parts.py) and leaves it.
        """
        with self._engine.connect() as conn, conn.begin() as transaction:
            conn.execute(
                update(run_parts)
                .where(run_parts.c.run_id == run_id, _lease_free(run_parts, owner, now=now))
                .values(lease_owner=owner, lease_expires=now)
            )
            working = conn.execute(
                select(run_parts.c.lease_owner)
                .where(run_parts.c.run_id == run_id, run_parts.c.lease_owner != owner)
                .distinct()
                .order_by(run_parts.c.lease_owner)
            ).scalars()
            holders = [str(holder) for holder in working]
            if holders:
                transaction.rollback()  # the leases taken above go back as they were
                return holders
            conn.execute(update(runs).where(runs.c.id == run_id).values(queued=False))
        return []

    def holders(self, run_id: int, *, now: datetime) -> dict[str, list[int | None]]:
        """Who works on the run now: each holder of an unexpired lease with the parts it
        holds (None for the run's own lease: tracking, or the whole run in one process)."""
        found: dict[str, list[int | None]] = {}
        with self._engine.connect() as conn:
            run_holder = conn.execute(
                select(runs.c.lease_owner).where(runs.c.id == run_id, runs.c.lease_expires >= now)
            ).scalar()
            part_rows = conn.execute(
                select(run_parts.c.lease_owner, run_parts.c.part)
                .where(run_parts.c.run_id == run_id, run_parts.c.lease_expires >= now)
                .order_by(run_parts.c.part)
            ).all()
        if run_holder:
            found.setdefault(str(run_holder), []).append(None)
        for owner, part in part_rows:
            found.setdefault(str(owner), []).append(int(part))
        return found
