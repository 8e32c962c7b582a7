"""The store: the single source of truth between the pipeline's steps, on SQLite or PostgreSQL.

SQLAlchemy Core, not the ORM: the hot paths (ingest, claim, progress) are batch statements
over plain dicts, and an identity map would only cost memory on a 100,000-row run.

Every write is one short transaction that starts with a write statement. On SQLite (where
Python's driver begins a transaction only before DML) that means a writer takes the lock at
its first statement and waits out the busy timeout instead of failing on a stale snapshot;
constraint checks (unique names, foreign keys) are left to the database, so there is no
check-then-write race between processes either.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Collection, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import EllipsisType
from typing import Any

from sqlalchemy import Connection as DBConnection
from sqlalchemy import (
    Engine,
    Row,
    case,
    create_engine,
    delete,
    event,
    func,
    insert,
    inspect,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError

from smslink.models import (
    Connection,
    Delivery,
    OptOut,
    Outgoing,
    Progress,
    Run,
    RunState,
    RunTotals,
    Stage,
    Touchpoint,
)
from smslink.secrets import SecretBox, check_folder, check_private_file
from smslink.settings import database_url, normalise_database_url
from smslink.store.errors import AlreadyExists, InUse, NotFound, RunConflict, SchemaTooNew
from smslink.store.rows import (
    STAGES,
    delivery_row,
    dumps,
    sqlite_datetime_text,
    to_delivery,
    to_optout,
    to_run,
    to_touchpoint,
)
from smslink.store.schema import (
    SCHEMA_VERSION,
    connections,
    deliveries,
    meta,
    metadata,
    optouts,
    runs,
    touchpoints,
)

#: How long a SQLite writer waits for another process's write to finish before failing.
#: Writes are short batches, so anything near this means something is badly wrong.
SQLITE_BUSY_TIMEOUT_S = 30.0

_PENDING = Stage.PENDING.value
_POSTING = Stage.POSTING.value
_DONE = Stage.DONE.value
_D = deliveries.c

#: One delivery's progress written by (run_id, seq); DONE rows are left alone so a final
#: status never changes, whatever order the send and track loops flush in. Written as
#: driver SQL: these two statements run for every message, and SQLAlchemy's per-row
#: parameter processing cost more than the database work (measured ~3x on SQLite).
_SAVE_PROGRESS_SQL = (
    "UPDATE deliveries SET stage = {p}, status = {p}, twilio_status = {p}, message_sid = {p}, "
    "error_code = {p}, error_message = {p}, polls = {p}, updated_at = {p} "
    "WHERE run_id = {p} AND seq = {p} AND stage != 'done'"
)
_INSERT_DELIVERY_COLUMNS = (
    "run_id", "seq", "row_json", "to_number", "body", "segments", "stage", "status",
    "twilio_status", "message_sid", "error_code", "error_message", "polls", "claimed_at",
    "updated_at",
)  # fmt: skip
_INSERT_DELIVERY_SQL = (
    f"INSERT INTO deliveries ({', '.join(_INSERT_DELIVERY_COLUMNS)}) "
    f"VALUES ({', '.join(['{p}'] * len(_INSERT_DELIVERY_COLUMNS))})"
)


#: Everything but the input row, which is often most of a delivery's bytes.
_SLIM_COLUMNS = [c for c in deliveries.c if c.name != "row_json"]


def open_store(url: str | None = None, *, secret_box: SecretBox | None = None) -> Store:
    """The store at `url`, else at `SMSLINK_DATABASE_URL`, else the SQLite file in the home.

    The secret box defaults to the key from `SMSLINK_SECRET_KEY` or `<home>/secret.key`.
    """
    return Store(url or database_url(), secret_box or SecretBox())


class Store:
    """Connections, touchpoints, runs and their deliveries, and opt-outs; see the module
    docstring."""

    def __init__(self, url: str, secret_box: SecretBox) -> None:
        self._box = secret_box
        self._engine = _create_engine(normalise_database_url(url))
        self._postgres = self._engine.dialect.name == "postgresql"
        placeholder = "%s" if self._postgres else "?"
        self._save_progress_sql = _SAVE_PROGRESS_SQL.format(p=placeholder)
        self._insert_delivery_sql = _INSERT_DELIVERY_SQL.format(p=placeholder)
        #: How a datetime goes to the driver: psycopg takes aware datetimes as they are;
        #: SQLite gets the text SQLAlchemy's own DateTime type writes, so reads agree.
        self._bind_time = _aware if self._postgres else sqlite_datetime_text
        self._ensure_schema()

    @property
    def url(self) -> str:
        """Where the store is, with any password hidden (safe to print)."""
        return self._engine.url.render_as_string(hide_password=True)

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- connections ------------------------------------------------------------------

    def add_connection(self, c: Connection) -> None:
        try:
            with self._engine.begin() as conn:
                conn.execute(insert(connections).values(self._connection_values(c)))
        except IntegrityError as e:
            raise AlreadyExists(f"a connection named {c.name!r} already exists") from e

    def update_connection(self, c: Connection) -> None:
        with self._engine.begin() as conn:
            result = conn.execute(
                update(connections)
                .where(connections.c.name == c.name)
                .values(self._connection_values(c))
            )
        if result.rowcount == 0:
            raise NotFound(f"no connection named {c.name!r}")

    def get_connection(self, name: str) -> Connection:
        with self._engine.connect() as conn:
            row = conn.execute(select(connections).where(connections.c.name == name)).first()
        if row is None:
            raise NotFound(f"no connection named {name!r}")
        return self._to_connection(row)

    def list_connections(self) -> list[Connection]:
        with self._engine.connect() as conn:
            rows = conn.execute(select(connections).order_by(connections.c.name)).all()
        return [self._to_connection(r) for r in rows]

    def remove_connection(self, name: str) -> None:
        """Remove it, unless touchpoints use it: the database's foreign key decides, and the
        touchpoints are named only afterwards, for the message."""
        for _ in range(3):  # a user may vanish between the refusal and the lookup; try again
            try:
                with self._engine.begin() as conn:
                    result = conn.execute(delete(connections).where(connections.c.name == name))
            except IntegrityError as e:
                users = self._touchpoints_using(name)
                if users:
                    raise InUse(
                        f"connection {name!r} is used by touchpoint(s) {', '.join(users)}; "
                        "remove them or point them at another connection first"
                    ) from e
                continue
            if result.rowcount == 0:
                raise NotFound(f"no connection named {name!r}")
            return
        raise InUse(f"connection {name!r} is still referenced; try again")

    def _touchpoints_using(self, connection: str) -> list[str]:
        with self._engine.connect() as conn:
            return list(
                conn.execute(
                    select(touchpoints.c.name)
                    .where(touchpoints.c.connection == connection)
                    .order_by(touchpoints.c.name)
                ).scalars()
            )

    def _connection_values(self, c: Connection) -> dict[str, Any]:
        return {
            "name": c.name,
            "account_sid": c.account_sid,
            "auth_token_encrypted": self._box.encrypt(c.auth_token),
            "from_number": c.from_number,
            "messaging_service_sid": c.messaging_service_sid,
            "api_key_sid": c.api_key_sid,
            "base_url": c.base_url,
            "poll_interval_ms": c.poll_interval_ms,
            "poll_attempts": c.poll_attempts,
            "concurrency": c.concurrency,
            "region": c.region,
            "max_segments_per_second": c.max_segments_per_second,
            "request_timeout_s": c.request_timeout_s,
        }

    def _to_connection(self, r: Row[Any]) -> Connection:
        return Connection(
            name=r.name,
            account_sid=r.account_sid,
            auth_token=self._box.decrypt(r.auth_token_encrypted),
            from_number=r.from_number,
            messaging_service_sid=r.messaging_service_sid,
            api_key_sid=r.api_key_sid,
            base_url=r.base_url,
            poll_interval_ms=r.poll_interval_ms,
            poll_attempts=r.poll_attempts,
            concurrency=r.concurrency,
            region=r.region,
            max_segments_per_second=r.max_segments_per_second,
            request_timeout_s=r.request_timeout_s,
        )

    # -- touchpoints ------------------------------------------------------------------

    def add_touchpoint(self, t: Touchpoint) -> None:
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    insert(touchpoints).values(
                        name=t.name,
                        connection=t.connection,
                        message=t.message,
                        phone_column=t.phone_column,
                        mapping_json=dumps(t.mapping),
                    )
                )
        except IntegrityError as e:
            # The same error class covers both constraints; ask which one it was.
            if not self._exists(connections.c.name, t.connection):
                raise NotFound(f"no connection named {t.connection!r}") from e
            raise AlreadyExists(f"a touchpoint named {t.name!r} already exists") from e

    def update_touchpoint(self, t: Touchpoint) -> None:
        """Replace a touchpoint's connection, message and mapping (runs keep their copy)."""
        try:
            with self._engine.begin() as conn:
                result = conn.execute(
                    update(touchpoints)
                    .where(touchpoints.c.name == t.name)
                    .values(
                        connection=t.connection,
                        message=t.message,
                        phone_column=t.phone_column,
                        mapping_json=dumps(t.mapping),
                    )
                )
        except IntegrityError as e:
            raise NotFound(f"no connection named {t.connection!r}") from e
        if result.rowcount == 0:
            raise NotFound(f"no touchpoint named {t.name!r}")

    def get_touchpoint(self, name: str) -> Touchpoint:
        with self._engine.connect() as conn:
            row = conn.execute(select(touchpoints).where(touchpoints.c.name == name)).first()
        if row is None:
            raise NotFound(f"no touchpoint named {name!r}")
        return to_touchpoint(row)

    def list_touchpoints(self) -> list[Touchpoint]:
        with self._engine.connect() as conn:
            rows = conn.execute(select(touchpoints).order_by(touchpoints.c.name)).all()
        return [to_touchpoint(r) for r in rows]

    def remove_touchpoint(self, name: str) -> None:
        with self._engine.begin() as conn:
            result = conn.execute(delete(touchpoints).where(touchpoints.c.name == name))
        if result.rowcount == 0:
            raise NotFound(f"no touchpoint named {name!r}")

    # -- runs -------------------------------------------------------------------------

    def create_run(
        self,
        *,
        touchpoint: str,
        connection: str,
        input_path: str,
        output_path: str,
        settings: dict[str, Any],
        columns: list[str] | None = None,
        fingerprint: str | None = None,
        repeat_since: datetime | None = None,
        now: datetime | None = None,
    ) -> Run:
        """Store a new run, unless an earlier one stands in its way (RunConflict):

        - one that is unfinished and will write its results to the same `output_path`;
        - with `fingerprint` given: one of the same touchpoint whose settings carry the
          same fingerprint and that is unfinished or was created at or after `repeat_since`.

        Checked and inserted under one lock, so two sends started at the same instant
        cannot both pass the check.
        """
        created_at = now or datetime.now(UTC)
        settings_json = dumps(settings)
        with self._engine.begin() as conn:
            self._lock_run_creation(conn)
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
                )
            )
            run_id = result.inserted_primary_key[0]
        return Run(
            id=run_id,
            touchpoint=touchpoint,
            connection=connection,
            input_path=input_path,
            output_path=output_path,
            state=RunState.CREATED,
            created_at=created_at,
            columns=list(columns or []),
            settings=json.loads(settings_json),  # exactly what get_run will return
        )

    def _lock_run_creation(self, conn: DBConnection) -> None:
        """Hold the right to create runs until this transaction ends, so the conflict check
        and the insert are one step (PostgreSQL: an advisory lock per schema; SQLite: the
        write lock, taken at once)."""
        if self._postgres:
            conn.execute(text(_PG_RUN_LOCK))
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

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
            if run.settings.get("fingerprint") == fingerprint:
                return run, "repeat"
        return None

    def get_run(self, run_id: int) -> Run:
        with self._engine.connect() as conn:
            row = conn.execute(select(runs).where(runs.c.id == run_id)).first()
        if row is None:
            raise NotFound(f"no run {run_id}")
        return to_run(row)

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
        settings: dict[str, Any] | None = None,
    ) -> None:
        """Change only the fields given; `error=None` clears the error (hence the `...`
        default meaning "leave it")."""
        values: dict[str, Any] = {}
        if output_path is not None:
            values["output_path"] = output_path
        if settings is not None:
            values["settings_json"] = dumps(settings)
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
        if not values:
            self.get_run(run_id)  # still report a missing run
            return
        with self._engine.begin() as conn:
            result = conn.execute(update(runs).where(runs.c.id == run_id).values(values))
        if result.rowcount == 0:
            raise NotFound(f"no run {run_id}")

    def acquire_run(
        self, run_id: int, owner: str, *, until: datetime, now: datetime, replacing: str | None
    ) -> str | None:
        """Take the run's lease for `owner`; returns None on success, else the holder.

        The lease is free when nobody holds it, when it has expired, or when its holder is
        `replacing` (a holder the caller has proven dead, e.g. a killed process on this host).
        One UPDATE decides, so two processes can never both succeed.
        """
        free = or_(
            runs.c.lease_owner.is_(None),
            runs.c.lease_expires < now,
            runs.c.lease_owner == owner,
        )
        if replacing is not None:
            free = or_(free, runs.c.lease_owner == replacing)
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
            raise NotFound(f"no run {run_id}")
        return str(holder.lease_owner)

    def run_lease(self, run_id: int) -> tuple[str | None, datetime | None]:
        """The run's lease holder and expiry, (None, None) when free."""
        with self._engine.connect() as conn:
            row = conn.execute(
                select(runs.c.lease_owner, runs.c.lease_expires).where(runs.c.id == run_id)
            ).first()
        if row is None:
            raise NotFound(f"no run {run_id}")
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

    def release_run(self, run_id: int, owner: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                update(runs)
                .where(runs.c.id == run_id, runs.c.lease_owner == owner)
                .values(lease_owner=None, lease_expires=None)
            )

    # -- deliveries -------------------------------------------------------------------

    def add_deliveries(
        self, run_id: int, deliveries_: Sequence[Delivery], columns: list[str]
    ) -> None:
        """Insert a batch and advance the run's total in the same transaction, so that
        after a crash `total` is exactly the number of stored deliveries and a resumed
        ingest skips that many input records. The total never moves backwards."""
        new_total = max((d.seq for d in deliveries_), default=-1) + 1
        bind_time = self._bind_time
        rows = [delivery_row(run_id, d, bind_time) for d in deliveries_]
        with self._engine.begin() as conn:
            # The run row first: it checks the run exists and, on PostgreSQL, serialises
            # concurrent ingests of one run on its row lock.
            result = conn.execute(
                update(runs)
                .where(runs.c.id == run_id)
                .values(
                    total=case((runs.c.total > new_total, runs.c.total), else_=new_total),
                    columns_json=dumps(columns),
                )
            )
            if result.rowcount == 0:
                raise NotFound(f"no run {run_id}")
            if rows:
                conn.exec_driver_sql(self._insert_delivery_sql, rows)

    def claim_pending(self, run_id: int, limit: int, now: datetime) -> list[Outgoing]:
        """Move the lowest-seq PENDING deliveries to POSTING and commit before returning:
        this is the "written before its POST" of the design, so a crash after this point
        leaves them POSTING (to reconcile), never PENDING (which would be sent again).

        One UPDATE ... RETURNING statement. On PostgreSQL the pick is a materialised CTE
        with FOR UPDATE SKIP LOCKED: concurrent workers skip each other's rows instead of
        waiting, and the CTE runs exactly once (as an IN-subquery the planner may rescan it,
        and a rescan skips the rows this very statement just locked and claims the next
        ones too: a LIMIT 3 claiming 5, seen in testing).
        """
        pick = (
            select(_D.seq)
            .where(_D.run_id == run_id, _D.stage == _PENDING)
            .order_by(_D.seq)
            .limit(limit)
        )
        if self._postgres:
            picked = (
                pick.with_for_update(skip_locked=True).cte("picked").prefix_with("MATERIALIZED")
            )
            where = [_D.run_id == run_id, _D.seq == picked.c.seq]
        else:  # SQLite runs one writer at a time; the plain subquery is evaluated once
            where = [_D.run_id == run_id, _D.stage == _PENDING, _D.seq.in_(pick)]
        stmt = (
            update(deliveries)
            .where(*where)
            .values(stage=_POSTING, claimed_at=now)
            .returning(_D.seq, _D.to_number, _D.body, _D.segments)
        )
        with self._engine.begin() as conn:
            rows = conn.execute(stmt).all()
        rows.sort(key=lambda r: r.seq)  # RETURNING order is unspecified
        # claimed_at is `now` for all of them: no need to read (and parse) it back.
        return [Outgoing(run_id, r.seq, r.to_number, r.body, r.segments, now) for r in rows]

    def save_progress(self, updates: Sequence[Progress]) -> None:
        """Write each delivery's whole mutable state in one executemany; DONE rows are
        skipped. A missing `updated_at` is stamped with the time of saving."""
        if not updates:
            return
        now = self._bind_time(datetime.now(UTC))
        bind_time = self._bind_time
        params = [
            (
                p.stage.value,
                p.status.value if p.status is not None else None,
                p.twilio_status,
                p.message_sid,
                p.error_code,
                p.error_message,
                p.polls,
                bind_time(p.updated_at) if p.updated_at is not None else now,
                p.run_id,
                p.seq,
            )
            for p in updates
        ]
        with self._engine.begin() as conn:
            conn.exec_driver_sql(self._save_progress_sql, params)

    def iter_deliveries(
        self,
        run_id: int,
        *,
        stages: Collection[Stage] | None = None,
        with_row: bool = True,
        batch: int = 1000,
    ) -> Iterator[Delivery]:
        """Stream a run's deliveries in seq order, `batch` at a time by keyset pagination.

        Each page is its own short query: no connection or transaction is held while the
        caller works through a page, so writers (and SQLite checkpoints) are never blocked
        by a slow consumer such as a results file being written.
        """
        if stages is not None and not stages:
            return
        columns = list(deliveries.c) if with_row else _SLIM_COLUMNS
        base = select(*columns).where(_D.run_id == run_id)
        if stages is not None:
            base = base.where(_D.stage.in_([s.value for s in stages]))
        last = -1
        while True:
            with self._engine.connect() as conn:
                rows = conn.execute(base.where(_D.seq > last).order_by(_D.seq).limit(batch)).all()
            for r in rows:
                yield to_delivery(r, with_row)
            if len(rows) < batch:
                return
            last = rows[-1].seq

    def totals(self, run_id: int) -> RunTotals:
        """Counts by stage and by result status, from one GROUP BY."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(_D.stage, _D.status, func.count())
                .where(_D.run_id == run_id)
                .group_by(_D.stage, _D.status)
            ).all()
        t = RunTotals()
        for stage, status, n in rows:
            t.total += n
            if stage in STAGES:  # counters are named after the stages
                setattr(t, stage, getattr(t, stage) + n)
            if status is not None:
                t.by_status[status] = t.by_status.get(status, 0) + n
        return t

    # -- opt-outs ---------------------------------------------------------------------

    def add_optout(self, o: OptOut) -> bool:
        """Remember that `o.phone` opted out of `o.sender`; True when this is news.

        Idempotent in one statement (INSERT ... ON CONFLICT DO NOTHING): two workers or two
        processes that both hear 21610 for the same pair neither fail nor race, and the
        first sighting (its time, run and message) is the one kept.
        """
        dialect_insert = pg_insert if self._postgres else sqlite_insert
        stmt = (
            dialect_insert(optouts)
            .values(
                sender=o.sender,
                phone=o.phone,
                created_at=o.created_at,
                run_id=o.run_id,
                source=o.source,
                message=o.message,
            )
            .on_conflict_do_nothing(index_elements=["sender", "phone"])
            # RETURNING, not rowcount: on PostgreSQL this insert reports a rowcount of -1.
            .returning(optouts.c.phone)
        )
        with self._engine.begin() as conn:
            return conn.execute(stmt).first() is not None

    def get_optout(self, sender: str, phone: str) -> OptOut | None:
        """The opt-out of `phone` from `sender`, or None when they have not opted out."""
        with self._engine.connect() as conn:
            row = conn.execute(
                select(optouts).where(optouts.c.sender == sender, optouts.c.phone == phone)
            ).first()
        return None if row is None else to_optout(row)

    def load_optouts(self, sender: str) -> dict[str, OptOut]:
        """Every opt-out from `sender`, by phone: loaded once when a run starts, so checking
        a recipient costs a dict lookup rather than a query per message."""
        with self._engine.connect() as conn:
            rows = conn.execute(select(optouts).where(optouts.c.sender == sender)).all()
        return {r.phone: to_optout(r) for r in rows}

    def list_optouts(self, sender: str | None = None) -> list[OptOut]:
        """Opt-outs by sender, oldest first within each; only `sender`'s when given."""
        stmt = select(optouts).order_by(optouts.c.sender, optouts.c.created_at, optouts.c.phone)
        if sender is not None:
            stmt = stmt.where(optouts.c.sender == sender)
        with self._engine.connect() as conn:
            return [to_optout(r) for r in conn.execute(stmt).all()]

    def remove_optouts(self, phone: str, sender: str | None = None) -> int:
        """Forget `phone`'s opt-out from `sender`, or from every sender when None (they
        replied START, or were recorded by mistake); returns how many were removed."""
        stmt = delete(optouts).where(optouts.c.phone == phone)
        if sender is not None:
            stmt = stmt.where(optouts.c.sender == sender)
        with self._engine.begin() as conn:
            return int(conn.execute(stmt).rowcount)

    # -- plumbing ---------------------------------------------------------------------

    def _exists(self, column: Any, value: object) -> bool:
        with self._engine.connect() as conn:
            return conn.execute(select(column).where(column == value)).first() is not None

    def _ensure_schema(self) -> None:
        """Create a fresh database, or upgrade an older one in place, and record the version.

        An up-to-date database costs one read. Otherwise the work happens under a lock held
        to the end of the transaction (SQLite: BEGIN IMMEDIATE; PostgreSQL: an advisory lock
        per schema), so when several processes open the database at once one upgrades it and
        the others then find it done. Each step also checks before it changes anything, so a
        database changed only part of the way (e.g. a column added by hand) is completed
        rather than failed on; any other loser of a race just tries again.
        """
        for attempt in range(3):
            try:
                with self._engine.begin() as conn:
                    if self._check_version(conn) == SCHEMA_VERSION:
                        return
                    self._lock_schema(conn)
                    found = self._check_version(conn)  # again: another process may have won
                    if found == SCHEMA_VERSION:
                        return
                    metadata.create_all(conn)  # a fresh database, or tables added since
                    _upgrade_columns(conn)
                    if found is None:
                        conn.execute(
                            insert(meta).values(key="schema_version", value=str(SCHEMA_VERSION))
                        )
                    else:
                        conn.execute(
                            update(meta)
                            .where(meta.c.key == "schema_version")
                            .values(value=str(SCHEMA_VERSION))
                        )
                return
            except DBAPIError:
                if attempt == 2:
                    raise

    def _check_version(self, conn: DBConnection) -> int | None:
        """The stored schema version (None for a database without one); SchemaTooNew when
        a newer smslink wrote it, which this one must not touch."""
        if not inspect(conn).has_table(meta.name):
            return None
        found = conn.execute(select(meta.c.value).where(meta.c.key == "schema_version")).scalar()
        if found is None:
            return None
        if int(found) > SCHEMA_VERSION:
            raise SchemaTooNew(
                f"the database has schema version {found}, this smslink knows "
                f"up to {SCHEMA_VERSION}: upgrade smslink"
            )
        return int(found)

    def _lock_schema(self, conn: DBConnection) -> None:
        """Hold the right to change the schema until this transaction ends."""
        if self._postgres:
            # Keyed by schema: tests and tenants with their own schemas do not wait on each
            # other. current_schema() is NULL when the search_path names no existing schema.
            conn.execute(text(_PG_SCHEMA_LOCK))
        else:
            # Python's sqlite3 runs DDL outside a transaction unless one is open; this opens
            # one that takes the write lock at once, so the upgrade is atomic and serialised.
            conn.exec_driver_sql("BEGIN IMMEDIATE")


#: Serialises run creation (its conflict checks) per PostgreSQL schema.
_PG_RUN_LOCK = (
    "SELECT pg_advisory_xact_lock(hashtext('smslink:runs:' || coalesce(current_schema(), '')))"
)

#: Serialises schema changes per PostgreSQL schema until the transaction ends.
_PG_SCHEMA_LOCK = (
    "SELECT pg_advisory_xact_lock(hashtext('smslink:' || coalesce(current_schema(), '')))"
)

#: Columns added after version 1, in the order they were added. A database that lacks one
#: gets it with exactly the definition CREATE TABLE would have given it.
_ADDED_COLUMNS = (
    connections.c.max_segments_per_second,  # version 2
    connections.c.request_timeout_s,  # version 2
)


def _upgrade_columns(conn: DBConnection) -> None:
    """Add every column an older schema lacks (ALTER TABLE ... ADD COLUMN, with the server
    default that fills existing rows). Checks first, so it is safe to run on any version."""
    inspector = inspect(conn)
    ddl = conn.dialect.ddl_compiler(conn.dialect, None)
    present: dict[str, set[str]] = {}
    for column in _ADDED_COLUMNS:
        table = column.table.name
        if table not in present:
            present[table] = {c["name"] for c in inspector.get_columns(table)}
        if column.name in present[table]:
            continue
        quoted = conn.dialect.identifier_preparer.format_table(column.table)
        conn.exec_driver_sql(
            f"ALTER TABLE {quoted} ADD COLUMN {ddl.get_column_specification(column)}"
        )


def _aware(moment: datetime) -> datetime:
    """Datetimes for psycopg: aware UTC (a naive one is taken to be UTC already)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _create_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        # pre_ping: a long-lived worker survives a PostgreSQL restart between batches.
        return create_engine(url, pool_pre_ping=True)
    _prepare_sqlite_file(parsed.database)
    engine = create_engine(
        url,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False},
    )
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: object) -> None:
    """Per connection: WAL lets readers (a progress page) run beside the writer;
    synchronous=NORMAL is durable across application crashes under WAL and skips an fsync
    per commit; SQLite leaves foreign keys off unless asked."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
    finally:
        cursor.close()


#: SQLite's side files: replayed into the database when it opens, so as trusted as it.
_SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def _prepare_sqlite_file(database: str | None) -> None:
    """Create the parent directory (owner-only if it is new), and the file itself
    owner-only: it holds phone numbers and message bodies (SQLite gives its -wal and -shm
    files the same mode). Refuse it, before SQLite opens it, if another user could have
    written it: a database of theirs could send the auth token to a base URL of theirs.
    """
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    _check_sqlite_folders(path)
    with contextlib.suppress(FileExistsError):  # O_EXCL: never follows a planted symlink
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    _check_sqlite_files(path)


#: SQLite's side files: replayed into the database when it opens, so as trusted as it.
_SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")
_SQLITE_WHAT = "the SQLite database"


def _check_sqlite_folders(path: Path) -> None:
    """ssh's rule (see `smslink.secrets`) for the database's folder: owned by this user or
    root, and writable by others only with the sticky bit (like /tmp), where they cannot
    swap the file. A symlinked database is judged in its link's folder and its real one."""
    check_folder(path.parent, _SQLITE_WHAT)
    real = path.resolve()
    if real.parent != path.parent.resolve():
        check_folder(real.parent, _SQLITE_WHAT)


def _check_sqlite_files(path: Path) -> None:
    """The database and its side files: owned by this user or root, writable by nobody
    else. Side files under both the given and the real name (SQLite may resolve links)."""
    check_private_file(path, _SQLITE_WHAT)
    for base in dict.fromkeys((path, path.resolve())):
        for suffix in _SQLITE_SIDE_FILES:
            side = base.with_name(base.name + suffix)
            if side.exists():
                check_private_file(side, f"the SQLite database's {suffix} file")
