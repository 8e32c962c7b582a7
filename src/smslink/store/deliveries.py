"""A run's deliveries: the hot paths every message passes through.

One row per audience record, written in batches: stored at ingest, claimed before its POST,
its progress saved as it is posted and tracked, and read back for the results file. Kept
apart from the run rows (`store.runs`) because here throughput is the concern: batch
statements over plain tuples, driver-level SQL where SQLAlchemy's per-row work cost more
than the database's, and reads that page by key instead of holding a cursor open.

The guarantees live here too: a delivery is claimed (committed as POSTING) before its POST,
so the store always knows which messages may have reached Twilio; and a DONE row is never
overwritten, so a final status never changes. Each status change is reported by an event
written in the same transaction (store/events.py): a delivery stored already final, and
each row whose Twilio status or final result a progress write changes.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    and_,
    case,
    cast,
    func,
    literal,
    or_,
    select,
    update,
)

from smslink.domain.errors import say
from smslink.domain.models import (
    TWILIO_RANKS,
    Delivery,
    Outgoing,
    Progress,
    ResultStatus,
    RunTotals,
    Stage,
    twilio_rank,
)
from smslink.store.database import Database
from smslink.store.errors import LeaseTaken, NotFound
from smslink.store.events import EventRow, EventWriter
from smslink.store.rows import (
    STAGES,
    STATUSES,
    column_arrays,
    delivery_row,
    dumps,
    loads,
    to_delivery,
)
from smslink.store.runs import LeaseHolder, holds_lease
from smslink.store.schema import deliveries, runs

_PENDING = Stage.PENDING.value
_POSTING = Stage.POSTING.value
_DONE = Stage.DONE.value
_D = deliveries.c

#: One delivery's progress written by (run_id, seq); DONE rows are left alone so a final
#: status never changes, whatever order the send and track loops flush in. Written as
#: driver SQL: these two statements run for every message, and SQLAlchemy's per-row
#: parameter processing cost more than the database work (measured ~3x on SQLite).
#:
#: Status callbacks (store/callbacks.py) write the same rows from another process, so the
#: stored Twilio status is kept when it is further on than the one written (a callback said
#: `sent` while this process last read `sending`): a status never moves backwards, whichever
#: of the two writers commits last. The rank is computed in SQL from the stored value, so
#: the check and the write are one statement (a row lock on PostgreSQL, the write lock on
#: SQLite) and no read-then-write gap exists for a callback to slip into.
TWILIO_RANK_SQL = (
    "CASE twilio_status "
    + " ".join(f"WHEN '{status}' THEN {rank}" for status, rank in TWILIO_RANKS.items())
    + " ELSE -1 END"
)
_SAVE_PROGRESS_SQL = (
    "UPDATE deliveries SET stage = {p}, status = {p}, "
    f"twilio_status = CASE WHEN {TWILIO_RANK_SQL} > {{p}} THEN twilio_status ELSE {{p}} END, "
    "message_sid = {p}, error_code = {p}, error_message = {p}, polls = {p}, updated_at = {p} "
    "WHERE run_id = {p} AND seq = {p} AND stage != 'done'"
)
#: The same for rows whose stored sid stays (a later status of a message already stored
#: with its sid), parameters in the same order less the sid. SQLite rewrites an index entry
#: whenever its column is SET, even to the value it holds: Twilio's sids are random, so each
#: such write dirtied a random page of the sid index (at 100,000 deliveries, 500 rows wrote
#: 1.8 MB to the WAL instead of 0.13 MB, and cost ~10 us a row more: RESULTS section 19).
_SAVE_PROGRESS_KEEP_SID_SQL = _SAVE_PROGRESS_SQL.replace("message_sid = {p}, ", "")
#: The same on PostgreSQL as one statement over column arrays (parameters in the same
#: order, each a list): ~20 us a row against ~33 for psycopg's executemany of the statement
#: above (bench/RESULTS.md section 18).
_SAVE_PROGRESS_POSTGRES_SQL = (
    "UPDATE deliveries SET stage = v.new_stage, status = v.new_status, "
    f"twilio_status = CASE WHEN {TWILIO_RANK_SQL} > v.new_rank "
    "THEN twilio_status ELSE v.new_twilio_status END, "
    "message_sid = v.new_sid, error_code = v.new_code, error_message = v.new_error, "
    "polls = v.new_polls, updated_at = v.new_at "
    "FROM unnest(%s::varchar[], %s::varchar[], %s::integer[], %s::varchar[], %s::varchar[], "
    "%s::integer[], %s::text[], %s::integer[], %s::timestamptz[], %s::integer[], "
    "%s::integer[]) AS v(new_stage, new_status, new_rank, new_twilio_status, new_sid, "
    "new_code, new_error, new_polls, new_at, new_run_id, new_seq) "
    "WHERE deliveries.run_id = v.new_run_id AND deliveries.seq = v.new_seq "
    "AND deliveries.stage != 'done'"
)
_INSERT_DELIVERY_COLUMNS = (
    "run_id", "seq", "row_json", "to_number", "body", "segments", "stage", "status",
    "twilio_status", "message_sid", "error_code", "error_message", "polls", "claimed_at",
    "updated_at", "identity_json", "part",
)  # fmt: skip
_INSERT_DELIVERY_SQL = (
    f"INSERT INTO deliveries ({', '.join(_INSERT_DELIVERY_COLUMNS)}) "
    f"VALUES ({', '.join(['{p}'] * len(_INSERT_DELIVERY_COLUMNS))})"
)

_HELD_COLUMNS = "seq, stage, twilio_status, segments, claimed_at"
_HELD_SQL = f"SELECT {_HELD_COLUMNS}, message_sid FROM deliveries"
#: PostgreSQL needs no stored sid (`_update_sqlite` is SQLite's): a NULL in its place costs
#: psycopg nothing to read, where the sid's text cost ~1.5 us a row (callgrind).
_HELD_POSTGRES_SQL = f"SELECT {_HELD_COLUMNS}, NULL FROM deliveries"
#: Where the message sid sits among a `_SAVE_PROGRESS_SQL` row's parameters.
_SID_PARAM = 4

#: Claiming the next PENDING deliveries (`claim_pending`), in driver SQL like the two
#: statements above: it runs once per claim batch, and building it with SQLAlchemy's Core
#: each time cost more than the database's work. `{part}` is empty or a filter on `part`.
_PICK_SQL = (
    f"SELECT seq FROM deliveries WHERE run_id = {{p}} AND stage = '{_PENDING}'{{part}} "
    "ORDER BY seq LIMIT {p}"
)
_CLAIM_SQLITE_SQL = (
    f"UPDATE deliveries SET stage = '{_POSTING}', claimed_at = {{p}} "
    f"WHERE run_id = {{p}} AND stage = '{_PENDING}' AND seq IN ({_PICK_SQL}) "
    "RETURNING seq, to_number, body, segments"
)
_CLAIM_POSTGRES_SQL = (
    f"WITH picked AS MATERIALIZED ({_PICK_SQL} FOR UPDATE SKIP LOCKED) "
    f"UPDATE deliveries SET stage = '{_POSTING}', claimed_at = {{p}} FROM picked "
    "WHERE deliveries.run_id = {p} AND deliveries.seq = picked.seq "
    "RETURNING deliveries.seq, deliveries.to_number, deliveries.body, deliveries.segments"
)

_RESULTS_SQL = (
    "SELECT seq, row_json, to_number, segments, stage, status, twilio_status, message_sid, "
    "error_code, error_message, updated_at FROM deliveries"
)

#: Everything but the input row, which is often most of a delivery's bytes.
_SLIM_COLUMNS = [c for c in deliveries.c if c.name != "row_json"]

#: In a `statuses` filter: deliveries whose result is not final yet (any stage but DONE).
UNFINISHED = "unfinished"


class DeliveryStore:
    """Deliveries of runs: ingest, claim, progress, reading back, counting."""

    def __init__(self, db: Database) -> None:
        self._engine = db.engine
        self._postgres = db.postgres
        self._bind_time = db.bind_time
        self._db_read_time = db.read_time
        self._placeholder = db.placeholder
        self._save_progress_sql = _SAVE_PROGRESS_SQL.format(p=db.placeholder)
        self._save_progress_keep_sid_sql = _SAVE_PROGRESS_KEEP_SID_SQL.format(p=db.placeholder)
        self._insert_delivery_sql = _INSERT_DELIVERY_SQL.format(p=db.placeholder)
        self._holds_sid_sql = (
            f"SELECT 1 FROM deliveries WHERE message_sid = {db.placeholder} "
            f"AND run_id = {db.placeholder} LIMIT 1"
        )
        claim = _CLAIM_POSTGRES_SQL if db.postgres else _CLAIM_SQLITE_SQL
        #: The claim statement for the whole run, and for one part.
        self._claim_sql = (
            claim.format(p=db.placeholder, part=""),
            claim.format(p=db.placeholder, part=f" AND part = {db.placeholder}"),
        )
        self._events = EventWriter(db)
        self._copy_rows = db.copy_rows

    def add_deliveries(
        self,
        run_id: int,
        deliveries_: Sequence[Delivery],
        columns: list[str],
        *,
        holder: LeaseHolder | None = None,
    ) -> None:
        """Insert a batch and advance the run's total in the same transaction, so that
        after a crash `total` is exactly the number of stored deliveries and a resumed
        ingest skips that many input records. The total never moves backwards.

        With `holder`, only while that process still holds the run's lease (checked
        under the run row's lock the UPDATE takes): LeaseTaken, and nothing stored, once
        another process took the run over and reads on from the total itself (a paused
        reader's late batch would collide with its successor's)."""
        new_total = max((d.seq for d in deliveries_), default=-1) + 1
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
                raise NotFound(say("no run %(run)s", run=str(run_id)))
            if holder is not None and not holds_lease(conn, holder, postgres=self._postgres):
                # Caught by the pipeline, never shown: not a translated message.
                raise LeaseTaken(f"run {run_id} is another process's now: not stored")
            self.insert_in(conn, run_id, deliveries_)

    def insert_in(self, conn: Connection, run_id: int, deliveries_: Sequence[Delivery]) -> None:
        """Insert deliveries inside the caller's transaction (which holds the run's row),
        with the one event of each delivery stored already final (a bad phone, an
        opt-out)."""
        bind_time = self._bind_time
        rows = [delivery_row(run_id, d, bind_time) for d in deliveries_]
        now = bind_time(datetime.now(UTC))
        finished: list[EventRow] = [
            (
                run_id,
                d.seq,
                bind_time(d.updated_at) if d.updated_at is not None else now,
                d.status.value if d.status is not None else None,
                d.twilio_status,
                d.error_code,
                d.error_message,
                d.segments,
                d.message_sid,
            )
            for d in deliveries_
            if d.stage is Stage.DONE
        ]
        if rows and self._postgres:
            self._copy_rows(conn, "deliveries", _INSERT_DELIVERY_COLUMNS, rows)
        elif rows:
            conn.exec_driver_sql(self._insert_delivery_sql, rows)
        self._events.write(conn, finished)

    def settled_on_arrival(
        self, run_id: int, from_seq: int, to_seq: int
    ) -> dict[ResultStatus, int]:
        """Results of the deliveries `from_seq` <= seq < `to_seq` that were stored already
        final (never claimed: a bad phone, an opt-out), counted by result."""
        query = (
            select(_D.status, func.count())
            .where(
                _D.run_id == run_id,
                _D.stage == _DONE,
                _D.seq >= from_seq,
                _D.seq < to_seq,
                _D.claimed_at.is_(None),
            )
            .group_by(_D.status)
        )
        with self._engine.connect() as conn:
            return {ResultStatus(r[0]): int(r[1]) for r in conn.execute(query) if r[0]}

    def claim_pending(
        self, run_id: int, limit: int, now: datetime, *, part: int | None = None
    ) -> list[Outgoing]:
        """Move the lowest-seq PENDING deliveries (of one `part` when given) to POSTING and
        commit before returning:
        this is the "written before its POST" of the design, so a crash after this point
        leaves them POSTING (to reconcile), never PENDING (which would be sent again).

        One UPDATE ... RETURNING statement. On PostgreSQL the pick is a materialised CTE
        with FOR UPDATE SKIP LOCKED: concurrent workers skip each other's rows instead of
        waiting, and the CTE runs exactly once (as an IN-subquery the planner may rescan it,
        and a rescan skips the rows this very statement just locked and claims the next
        ones too: a LIMIT 3 claiming 5, seen in testing).
        """
        pick: tuple[object, ...] = (run_id, limit) if part is None else (run_id, part, limit)
        claimed_at = self._bind_time(now)
        if self._postgres:
            sql, params = self._claim_sql[part is not None], (*pick, claimed_at, run_id)
        else:  # SQLite runs one writer at a time; the plain subquery is evaluated once
            sql, params = self._claim_sql[part is not None], (claimed_at, run_id, *pick)
        with self._engine.begin() as conn:
            rows = sorted(conn.exec_driver_sql(sql, params).all())  # RETURNING: any order
        # claimed_at is `now` for all of them: no need to read (and parse) it back.
        return [Outgoing(run_id, seq, to, body, parts, now) for seq, to, body, parts in rows]

    def save_progress(
        self, updates: Sequence[Progress], *, holder: LeaseHolder | None = None
    ) -> list[str]:
        """Write each delivery's whole mutable state in one executemany; DONE rows are
        skipped. A missing `updated_at` is stamped with the time of saving. Returns the
        message sids now stored: those of the rows written (each row's last state).

        With `holder`, only while that process still holds the run's (or part's) lease,
        checked in the same transaction: LeaseTaken, and nothing written, once another
        process has taken it (a paused process must not undo what its successor settled).

        In the same transaction, one event for each row whose Twilio status or final
        result this changes. The rows are read first, under the write (SQLite's write
        lock, taken at once; PostgreSQL's row locks, FOR UPDATE), so what is compared is
        what is overwritten: no status callback can commit in between.

        Several updates of one delivery in a batch (accepted, then final) are applied in
        order but written as one row: the last one's state, with the Twilio status the
        sequence leaves (never backwards), and an event for each change on the way.
        """
        if not updates:
            return []
        now = self._bind_time(datetime.now(UTC))
        bind_time = self._bind_time
        with self._engine.begin() as conn:
            if not self._postgres:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            if holder is not None and not holds_lease(conn, holder, postgres=self._postgres):
                # Caught by the progress writer, never shown: not a translated message.
                raise LeaseTaken(f"run {holder.run_id} is another process's now: not written")
            held = self._held(conn, updates)
            params: dict[tuple[int, int], tuple[object, ...]] = {}
            changes: list[EventRow] = []
            for p in updates:
                key = (p.run_id, p.seq)
                row = held.get(key)
                if row is None or row[0] == _DONE:
                    continue  # no such delivery, or final already: never written again
                if p.stage is Stage.PENDING and not _releasable(row, p, bind_time):
                    continue  # claimed again since (or past its POST): not this writer's
                _, twilio_status, segments, claimed, stored_sid = row
                at = bind_time(p.updated_at) if p.updated_at is not None else now
                status = p.status.value if p.status is not None else None
                # As the UPDATE's CASE does: a stored status further on than this one stays.
                kept = twilio_status
                if twilio_rank(twilio_status) <= twilio_rank(p.twilio_status):
                    kept = p.twilio_status
                params[key] = (  # a later update of the same delivery replaces this one
                    p.stage.value,
                    status,
                    twilio_rank(kept),
                    kept,
                    p.message_sid,
                    p.error_code,
                    p.error_message,
                    p.polls,
                    at,
                    p.run_id,
                    p.seq,
                )
                final = p.stage is Stage.DONE
                if final or kept != twilio_status:
                    changes.append(
                        (
                            p.run_id,
                            p.seq,
                            at,
                            status if final else None,
                            kept,
                            p.error_code,
                            p.error_message,
                            segments,
                            p.message_sid,
                        )
                    )
                # For a later update of the batch; the sid is still the one stored.
                held[key] = (p.stage.value, kept, segments, claimed, stored_sid)
            if params and self._postgres:
                # PostgreSQL compares the values itself: no second statement to spare it.
                conn.exec_driver_sql(_SAVE_PROGRESS_POSTGRES_SQL, column_arrays(params.values()))
            elif params:
                self._update_sqlite(conn, params, held)
            self._events.write(conn, changes)
        return [sid for row in params.values() if isinstance(sid := row[_SID_PARAM], str)]

    def _update_sqlite(
        self,
        conn: Connection,
        params: dict[tuple[int, int], tuple[object, ...]],
        held: dict[tuple[int, int], HeldRow],
    ) -> None:
        """Write `save_progress`'s rows on SQLite: those whose sid is the one stored
        without SETting the sid, so the sid index is left alone (`_SAVE_PROGRESS_KEEP_SID_SQL`)."""
        new_sid: list[tuple[object, ...]] = []
        kept_sid: list[tuple[object, ...]] = []
        for key, row in params.items():
            if row[_SID_PARAM] == held[key][4]:
                kept_sid.append(row[:_SID_PARAM] + row[_SID_PARAM + 1 :])
            else:
                new_sid.append(row)
        if new_sid:
            conn.exec_driver_sql(self._save_progress_sql, new_sid)
        if kept_sid:
            conn.exec_driver_sql(self._save_progress_keep_sid_sql, kept_sid)

    def holds_sid(self, run_id: int, sid: str) -> bool:
        """Whether a delivery of the run has stored this message sid (by the sid's index):
        how a lost answer's look-up knows a message the run already owns."""
        with self._engine.connect() as conn:
            found = conn.exec_driver_sql(self._holds_sid_sql, (sid, run_id)).first()
        return found is not None

    def _held(
        self, conn: Connection, updates: Sequence[Progress], *, batch: int = 500
    ) -> dict[tuple[int, int], HeldRow]:
        """(stage, twilio_status, segments, claimed_at, message_sid) of the updated rows as
        stored, by (run, seq);
        locked FOR UPDATE on PostgreSQL, in seq order (the tracker's and the callbacks'
        writes lock rows one way only). Driver SQL, `batch` seqs a statement."""
        by_run: dict[int, set[int]] = {}
        for p in updates:
            by_run.setdefault(p.run_id, set()).add(p.seq)
        lock = " ORDER BY seq FOR UPDATE" if self._postgres else ""
        found: dict[tuple[int, int], HeldRow] = {}
        for run_id, seqs in by_run.items():
            ordered = sorted(seqs)
            for start in range(0, len(ordered), batch):
                chunk = ordered[start : start + batch]
                if self._postgres:  # one array parameter: cheaper to bind than 500
                    sql = f"{_HELD_POSTGRES_SQL} WHERE run_id = %s AND seq = ANY(%s){lock}"
                    params: tuple[object, ...] = (run_id, chunk)
                else:
                    sql = f"{_HELD_SQL} WHERE run_id = ? AND seq IN ({', '.join('?' * len(chunk))})"
                    params = (run_id, *chunk)
                # all(): one fetch, where iterating the result fetches row by row.
                rows = conn.exec_driver_sql(sql, params).all()
                for seq, stage, twilio_status, segments, claimed, sid in rows:
                    found[(run_id, seq)] = (stage, twilio_status, segments, claimed, sid)
        return found

    def finished_among(
        self, run_id: int, seqs: Collection[int], *, batch: int = 500
    ) -> dict[int, ResultStatus]:
        """Which of these deliveries are DONE already, with their result: those a status
        callback finished while this process was tracking them. Asked `batch` at a time
        over the (run_id, stage, seq) index, so a long list costs short queries."""
        ordered = sorted(seqs)
        found: dict[int, ResultStatus] = {}
        for start in range(0, len(ordered), batch):
            chunk = ordered[start : start + batch]
            query = select(_D.seq, _D.status).where(
                _D.run_id == run_id, _D.stage == Stage.DONE.value, _D.seq.in_(chunk)
            )
            with self._engine.connect() as conn:
                for seq, status in conn.execute(query):
                    found[seq] = ResultStatus(status)
        return found

    def iter_deliveries(
        self,
        run_id: int,
        *,
        stages: Collection[Stage] | None = None,
        with_row: bool = True,
        batch: int = 1000,
        part: int | None = None,
    ) -> Iterator[Delivery]:
        """Stream a run's deliveries in seq order, `batch` at a time by keyset pagination.

        Each page is its own short query: no connection or transaction is held while the
        caller works through a page, so writers (and SQLite checkpoints) are never blocked
        by a slow consumer such as a results file being written.
        """
        if stages is not None and not stages:
            return
        columns = list(deliveries.c) if with_row else _SLIM_COLUMNS
        base = select(*columns).where(_D.run_id == run_id, *_in_part(part))
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

    def iter_results(
        self, run_id: int, *, after_seq: int = -1, batch: int = 1000
    ) -> Iterator[Delivery]:
        """Stream a run's deliveries in seq order as a results file needs them: the input
        row and the outcome (no body, claim or identity), a page of `batch` at a time.

        Driver SQL over the primary key: a results file reads every row of the run, and
        SQLAlchemy's per-row processing cost more than the rest of writing it (measured
        ~14 of ~28 us a row on SQLite). Each page is its own short query, as in
        `iter_deliveries`. Starts after `after_seq`.
        """
        p = self._placeholder
        sql = f"{_RESULTS_SQL} WHERE run_id = {p} AND seq > {p} ORDER BY seq LIMIT {p}"
        read_time = self._db_read_time
        last = after_seq
        while True:
            with self._engine.connect() as conn:
                rows = conn.exec_driver_sql(sql, (run_id, last, batch)).all()
            for seq, row_json, to, segments, stage, status, twilio, sid, code, error, at in rows:
                yield Delivery(
                    run_id=run_id,
                    seq=seq,
                    row=loads(row_json),
                    to=to,
                    segments=segments,
                    stage=STAGES[stage],
                    status=STATUSES[status] if status is not None else None,
                    twilio_status=twilio,
                    message_sid=sid,
                    error_code=code,
                    error_message=error,
                    updated_at=read_time(at),
                )
            if len(rows) < batch:
                return
            last = rows[-1][0]

    def parts_to_send(self, run_id: int) -> list[int]:
        """The parts of the run that hold deliveries not sent yet (PENDING) or whose POST
        may have reached Twilio (POSTING): the parts workers still have to send."""
        query = (
            select(_D.part)
            .where(_D.run_id == run_id, _D.stage.in_([_PENDING, _POSTING]))
            .group_by(_D.part)
            .order_by(_D.part)
        )
        with self._engine.connect() as conn:
            return [int(part) for part in conn.execute(query).scalars()]

    def unsent(self, run_id: int) -> int:
        """Deliveries of the run not past their POST yet (PENDING or POSTING)."""
        query = select(func.count()).where(_D.run_id == run_id, _D.stage.in_([_PENDING, _POSTING]))
        with self._engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def one(self, run_id: int, seq: int) -> tuple[str, Delivery] | None:
        """A delivery without its input row, with its run's touchpoint; None: none such."""
        found = self.across(run_id=run_id, after=(run_id, seq - 1), limit=1)
        return found[0] if found and found[0][1].seq == seq else None

    def across(
        self,
        *,
        run_id: int | None = None,
        statuses: Collection[str] | None = None,
        after: tuple[int, int] | None = None,
        limit: int = 50,
    ) -> list[tuple[str, Delivery]]:
        """Deliveries of every run (or of `run_id`) in (run, seq) order without their
        input rows, each with its run's touchpoint: those after `after` (a (run, seq)
        key: keyset pagination), with a result in `statuses` (`UNFINISHED` as in `page`)."""
        if statuses is not None and not statuses:
            return []
        query = select(*_SLIM_COLUMNS, runs.c.touchpoint).select_from(
            deliveries.join(runs, runs.c.id == _D.run_id)
        )
        if run_id is not None:
            query = query.where(*self._matching(run_id, statuses, None))
        elif statuses is not None:
            query = query.where(*self._matching(None, statuses, None))
        if after is not None:
            query = query.where(
                or_(_D.run_id > after[0], and_(_D.run_id == after[0], _D.seq > after[1]))
            )
        query = query.order_by(_D.run_id, _D.seq).limit(max(0, limit))
        with self._engine.connect() as conn:
            rows: list[Any] = list(conn.execute(query).all())
        return [(r.touchpoint, to_delivery(r, False)) for r in rows]

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

    def page(
        self,
        run_id: int,
        *,
        statuses: Collection[str] | None = None,
        text: str | None = None,
        offset: int = 0,
        after_seq: int | None = None,
        limit: int = 50,
    ) -> list[Delivery]:
        """One page of a run's deliveries in seq order, input rows included, for a table
        or a selection.

        `statuses`: only deliveries whose result status is one of these (`UNFINISHED`
        stands for those not final yet). `text`: only those whose phone, input row or
        error message contains it, ignoring case (ASCII letters; no wildcards: `%` and `_`
        are plain characters). Paged by `offset` (page numbers) or by `after_seq` (keyset,
        for reading a whole selection page by page). Each page is one short query over the
        run's rows in key order; nothing is held open between pages.
        """
        if statuses is not None and not statuses:
            return []
        query = select(deliveries).where(*self._matching(run_id, statuses, text))
        if after_seq is not None:
            query = query.where(_D.seq > after_seq)
        query = query.order_by(_D.seq).limit(max(0, limit)).offset(max(0, offset))
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return [to_delivery(r, True) for r in rows]

    def count(
        self, run_id: int, *, statuses: Collection[str] | None = None, text: str | None = None
    ) -> int:
        """How many of a run's deliveries `page` would list over all its pages."""
        if statuses is not None and not statuses:
            return 0
        query = select(func.count()).select_from(deliveries)
        with self._engine.connect() as conn:
            return int(
                conn.execute(query.where(*self._matching(run_id, statuses, text))).scalar_one()
            )

    def final_over_time(
        self, run_id: int, *, start: datetime, width_s: int
    ) -> list[tuple[int, str, int]]:
        """Final results by time: `(bucket, status, count)` for every bucket of `width_s`
        seconds from `start` (bucket 0) in which deliveries became final, by the time of
        their last change. Buckets before `start` are counted in bucket 0. One GROUP BY."""
        width_s = max(1, int(width_s))
        epoch = self._epoch(_D.updated_at)
        offset = epoch - literal(int(start.timestamp()))
        bucket = case((offset < 0, 0), else_=offset // width_s)
        query = (
            select(bucket.label("bucket"), _D.status, func.count())
            .where(_D.run_id == run_id, _D.stage == Stage.DONE.value, _D.updated_at.is_not(None))
            .group_by(bucket, _D.status)
        )
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return sorted((int(b), str(status), int(n)) for b, status, n in rows)

    def _epoch(self, column: ColumnElement[datetime]) -> ColumnElement[int]:
        """Whole seconds since 1970 of a stored time, in the database's own dialect."""
        if self._postgres:
            return cast(func.floor(func.extract("epoch", column)), Integer)
        return cast(func.strftime("%s", column), Integer)  # SQLite keeps UTC text

    def _matching(
        self, run_id: int | None, statuses: Collection[str] | None, text: str | None
    ) -> list[ColumnElement[bool]]:
        where: list[ColumnElement[bool]] = [] if run_id is None else [_D.run_id == run_id]
        if statuses is not None:
            results = [s for s in statuses if s != UNFINISHED]
            either: list[ColumnElement[bool]] = []
            if results:
                either.append(_D.status.in_(results))
            if UNFINISHED in statuses:
                either.append(_D.stage != Stage.DONE.value)
            where.append(or_(*either))
        if text:
            pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            # SQLite's LIKE ignores the case of ASCII letters by itself, and is several
            # times faster than ILIKE's lower() on both sides; PostgreSQL needs ILIKE.
            columns = (_D.to_number, _D.row_json, _D.error_message)
            if self._postgres:
                where.append(or_(*(c.ilike(pattern, escape="\\") for c in columns)))
            else:
                where.append(or_(*(c.like(pattern, escape="\\") for c in columns)))
        return where


#: A delivery's row as save_progress reads it under the write lock: stage, Twilio status,
#: segments, claimed_at (as the driver returns it) and message sid.
HeldRow = tuple[str, str | None, int, object, str | None]


def _releasable(row: HeldRow, p: Progress, bind_time: Callable[[datetime], object]) -> bool:
    """True when a release to PENDING gives back the claim it names: the delivery is
    still POSTING under that claim (same claimed_at as stored). A release without a
    claim (a bare writer) needs the delivery POSTING."""
    if row[0] != _POSTING:
        return False
    return p.claimed_at is None or row[3] == bind_time(p.claimed_at)


def _in_part(part: int | None) -> list[ColumnElement[bool]]:
    """The filter on a delivery's part: none when `part` is None (the whole run)."""
    return [] if part is None else [_D.part == part]
