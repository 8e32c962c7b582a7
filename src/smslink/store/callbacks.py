"""Twilio status callbacks applied to deliveries: once each, forward only, in one statement.

A callback names its message by sid only; the delivery holding that sid (index
ix_deliveries_message_sid) takes the new status when, and only when, it moves the message
forward. The tracker of the run writes the same row (DeliveryStore.save_progress),
perhaps at the same moment from another process, so neither may trust what it read
before: each writes with one conditional UPDATE whose WHERE (and, for the tracker, whose
CASE) compares against the row as it is when the write happens.

- Here: `WHERE message_sid = :sid AND stage = 'tracking' AND rank(twilio_status) < :rank`.
  A DONE row is never touched (a final status never changes), nor one that is already as
  far as the callback (a late `sent` after `delivered`, a second `failed` with another
  error code: the first one stays).
- The tracker: `WHERE stage != 'done'` and the stored status kept when it ranks higher.
  So a callback's final status is never overwritten by a poll read before it, and a
  tracker's final status is never overwritten by a callback that arrives after it.

On PostgreSQL two UPDATEs of one row queue on its row lock and the second re-checks its
WHERE against the row the first committed (READ COMMITTED); SQLite runs one writer at a
time. Either way the more final state wins, whoever writes last. Callbacks are applied in
batches (one transaction for those that arrived together), so on PostgreSQL a batch first
locks all its rows in (run, seq) order, as the tracker locks its own, and takes its tokens
in sorted order: two writers never each hold a row the other waits for.

A callback that changed its delivery writes the event of that change in the same
transaction (store/events.py), from the row as the UPDATE left it (RETURNING); one that
changed nothing writes none. So the final event of a delivery finished by a callback is
written once, and never by the tracker too: its write skips the DONE row.

The `I-Twilio-Idempotency-Token` of an applied callback is kept in the same transaction
as the update, so a callback Twilio delivers twice (a retry after an answer it did not
see) is applied once, and a failed update leaves no token behind to block its retry. Nor
does a callback for a sid no delivery holds: it may have come before the create's answer
was stored, and is tried again (`app/callbacks.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    ColumnElement,
    Connection,
    bindparam,
    case,
    delete,
    exists,
    literal,
    select,
    update,
)
from sqlalchemy.sql.dml import ReturningUpdate

from smslink.domain.callbacks import StatusUpdate
from smslink.domain.models import (
    TWILIO_FINAL,
    TWILIO_RANKS,
    Stage,
    result_for_twilio_status,
    twilio_rank,
)
from smslink.store.database import Database
from smslink.store.events import EventRow, EventWriter
from smslink.store.schema import callback_tokens, deliveries, runs

_D = deliveries.c
_RANK = case(
    *((_D.twilio_status == status, literal(rank)) for status, rank in TWILIO_RANKS.items()),
    else_=literal(-1),
)


#: What a callback's event is written from: the row as its UPDATE left it.
_CHANGED = (
    _D.run_id, _D.seq, _D.stage, _D.status, _D.twilio_status, _D.error_code, _D.error_message,
    _D.segments, _D.message_sid,
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class CallbackWrite:
    """One callback to apply: its update, its idempotency token (None: none usable) and
    the connection that signed it (None: any delivery holding the sid)."""

    update: StatusUpdate
    token: str | None = None
    connection: str | None = None


class Applied(StrEnum):
    """What became of one status callback."""

    APPLIED = "applied"  # the delivery moved forward (to DONE when the status is final)
    STALE = "stale"  # the delivery is already as far (or finished): nothing changed
    UNKNOWN = "unknown"  # no delivery holds that sid (another tool's message, or not yet stored)
    DUPLICATE = "duplicate"  # this idempotency token was applied before


class CallbackStore:
    """Status callbacks: apply one, and forget the tokens of old ones.

    Twilio posts three callbacks a message, so the statements are built once, with bound
    parameters, rather than per callback: building them cost more CPU than SQLite's work
    (bench/RESULTS.md section 16)."""

    def __init__(self, db: Database) -> None:
        self._engine = db.engine
        self._bind_time = db.bind_time
        self._events = EventWriter(db)
        self._take_token = (
            db.dialect_insert(callback_tokens)
            .values(token=bindparam("token"), received_at=bindparam("received_at"))
            .on_conflict_do_nothing(index_elements=["token"])
            # RETURNING, not rowcount: on PostgreSQL this reports -1.
            .returning(callback_tokens.c.token)
        )
        self._postgres = db.postgres
        self._lock_rows = (
            select(_D.run_id)
            .where(_D.message_sid.in_(bindparam("sids", expanding=True)))
            .order_by(_D.run_id, _D.seq)
            .with_for_update()
        )
        self._drop_token = delete(callback_tokens).where(
            callback_tokens.c.token == bindparam("token")
        )
        self._forward = {
            (final, scoped): _forward_statement(final=final, of_connection=scoped)
            for final in (False, True)
            for scoped in (False, True)
        }
        self._held = {
            scoped: select(exists().where(_D.message_sid == bindparam("sid"), *_scope(scoped)))
            for scoped in (False, True)
        }

    def apply_status_by_sid(
        self,
        update_: StatusUpdate,
        *,
        received_at: datetime,
        token: str | None = None,
        connection: str | None = None,
    ) -> Applied:
        """Move the delivery holding `update_.sid` forward to its status, at most once per
        `token`; a final status makes it DONE with the result polling would have given.
        With `connection`, only a delivery of that connection's runs: a callback signed with
        one connection's token never touches another connection's messages."""
        [applied] = self.apply_statuses(
            [CallbackWrite(update_, token, connection)], received_at=received_at
        )
        return applied

    def apply_statuses(
        self, writes: Sequence[CallbackWrite], *, received_at: datetime
    ) -> list[Applied]:
        """`apply_status_by_sid` for each of `writes`, in their order, in one transaction:
        what each became, in the same order. A token repeated within `writes` is applied
        once, as across transactions; the events of the changes are written last, in the
        order of the changes. Nothing is kept when anything fails."""
        outcomes: list[Applied] = []
        events: list[EventRow] = []
        at = self._bind_time(received_at)
        with self._engine.begin() as conn:
            if self._postgres:
                # The rows first, all at once in (run, seq) order, as the tracker locks
                # its own: updated one by one in the callbacks' order, two writers could
                # each wait for a row the other holds.
                sids = sorted({w.update.sid for w in writes})
                conn.execute(self._lock_rows, {"sids": sids}).all()
            tokens = self._take_tokens(conn, writes, received_at)
            for write in writes:
                outcomes.append(self._apply(conn, write, tokens, received_at, at, events))
            self._events.write(conn, events)
        return outcomes

    def _take_tokens(
        self, conn: Connection, writes: Sequence[CallbackWrite], received_at: datetime
    ) -> set[str]:
        """Keep the idempotency tokens of `writes` (of statuses smslink knows), in sorted
        order; those that were not kept before, which these writes may spend."""
        wanted = sorted(
            {w.token for w in writes if w.token is not None and twilio_rank(w.update.status) >= 0}
        )
        if not wanted:
            return set()
        rows = conn.execute(
            self._take_token, [{"token": t, "received_at": received_at} for t in wanted]
        )
        return {row.token for row in rows}

    def _apply(
        self,
        conn: Connection,
        write: CallbackWrite,
        tokens: set[str],
        received_at: datetime,
        at: object,
        events: list[EventRow],
    ) -> Applied:
        """One write of a batch; `tokens` are the batch's unspent tokens (a write takes
        its own out: the same token later in the batch is a duplicate)."""
        update_ = write.update
        scoped = write.connection is not None
        rank = twilio_rank(update_.status)
        if rank >= 0:  # a status smslink does not know never wins over one it does
            if write.token is not None:
                if write.token not in tokens:
                    return Applied.DUPLICATE
                tokens.discard(write.token)
            final = update_.status in TWILIO_FINAL
            parameters: dict[str, object] = {
                "sid": update_.sid,
                "rank": rank,
                "new_twilio_status": update_.status,
                "at": received_at,
                "connection": write.connection,
            }
            if final:
                parameters |= {
                    "new_status": result_for_twilio_status(update_.status).value,
                    "new_error_code": update_.error_code,
                    "new_error_message": update_.error_message,
                }
            changed = conn.execute(self._forward[final, scoped], parameters).all()
            if changed:
                events.extend(
                    (
                        r.run_id,
                        r.seq,
                        at,
                        r.status if r.stage == Stage.DONE.value else None,
                        r.twilio_status,
                        r.error_code,
                        r.error_message,
                        r.segments,
                        r.message_sid,
                    )
                    for r in sorted(changed, key=lambda r: (r.run_id, r.seq))
                )
                return Applied.APPLIED
        held = conn.execute(
            self._held[scoped], {"sid": update_.sid, "connection": write.connection}
        ).scalar()
        if held:
            return Applied.STALE
        if write.token is not None and rank >= 0:
            # No delivery holds the sid (yet: the create's answer may still be on its way
            # to the store): the token is not spent, so the same callback, tried again
            # once the sid is stored, applies.
            conn.execute(self._drop_token, {"token": write.token})
        return Applied.UNKNOWN

    def prune_tokens(self, before: datetime) -> int:
        """Forget the tokens of callbacks received before `before`; how many went."""
        with self._engine.begin() as conn:
            result = conn.execute(
                delete(callback_tokens).where(callback_tokens.c.received_at < before)
            )
        return max(0, result.rowcount)


def _scope(of_connection: bool) -> list[ColumnElement[bool]]:
    """The condition "a delivery of the runs of the connection bound as `connection`"
    (none when not `of_connection`)."""
    if not of_connection:
        return []
    return [_D.run_id.in_(select(runs.c.id).where(runs.c.connection == bindparam("connection")))]


def _forward_statement(*, final: bool, of_connection: bool) -> ReturningUpdate:
    """The conditional UPDATE of the module's docstring, with everything bound: `sid`,
    `rank`, `new_twilio_status`, `at` (and `connection`; and for a final status
    `new_status`, `new_error_code`, `new_error_message`). The SET's parameters are not
    named after their columns: SQLAlchemy keeps those names for its own."""
    values: dict[str, object] = {
        "twilio_status": bindparam("new_twilio_status"),
        "updated_at": bindparam("at", type_=_D.updated_at.type),
    }
    if final:
        values |= {
            "stage": Stage.DONE.value,
            "status": bindparam("new_status"),
            "error_code": bindparam("new_error_code", type_=_D.error_code.type),
            "error_message": bindparam("new_error_message", type_=_D.error_message.type),
        }
    return (
        update(deliveries)
        .where(
            _D.message_sid == bindparam("sid"),
            _D.stage == Stage.TRACKING.value,
            bindparam("rank") > _RANK,
            *_scope(of_connection),
        )
        .values(**values)
        .returning(*_CHANGED)
    )
