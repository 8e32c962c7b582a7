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
time. Either way the more final state wins, whoever writes last.

A callback that changed its delivery writes the event of that change in the same
transaction (store/events.py), from the row as the UPDATE left it (RETURNING); one that
changed nothing writes none. So the final event of a delivery finished by a callback is
written once, and never by the tracker too: its write skips the DONE row.

The `I-Twilio-Idempotency-Token` of an applied callback is kept in the same transaction
as the update, so a callback Twilio delivers twice (a retry after an answer it did not
see) is applied once, and a failed update leaves no token behind to block its retry.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ColumnElement, case, delete, exists, literal, select, update

from smslink.domain.callbacks import StatusUpdate
from smslink.domain.models import (
    TWILIO_FINAL,
    TWILIO_RANKS,
    Stage,
    result_for_twilio_status,
    twilio_rank,
)
from smslink.store.database import Database
from smslink.store.events import EventWriter
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


class Applied(StrEnum):
    """What became of one status callback."""

    APPLIED = "applied"  # the delivery moved forward (to DONE when the status is final)
    STALE = "stale"  # the delivery is already as far (or finished): nothing changed
    UNKNOWN = "unknown"  # no delivery holds that sid (another tool's message, or not yet stored)
    DUPLICATE = "duplicate"  # this idempotency token was applied before


class CallbackStore:
    """Status callbacks: apply one, and forget the tokens of old ones."""

    def __init__(self, db: Database) -> None:
        self._engine = db.engine
        self._insert = db.dialect_insert
        self._bind_time = db.bind_time
        self._events = EventWriter(db)

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
        rank = twilio_rank(update_.status)
        if rank < 0:  # a status smslink does not know never wins over one it does
            return self._known(update_.sid)
        values: dict[str, object] = {"twilio_status": update_.status, "updated_at": received_at}
        if update_.status in TWILIO_FINAL:
            values |= {
                "stage": Stage.DONE.value,
                "status": result_for_twilio_status(update_.status).value,
                "error_code": update_.error_code,
                "error_message": update_.error_message,
            }
        statement = (
            update(deliveries)
            .where(
                _D.message_sid == update_.sid,
                _D.stage == Stage.TRACKING.value,
                rank > _RANK,
                *self._of_connection(connection),
            )
            .values(**values)
            .returning(*_CHANGED)
        )
        with self._engine.begin() as conn:
            if token is not None:
                taken = conn.execute(
                    self._insert(callback_tokens)
                    .values(token=token, received_at=received_at)
                    .on_conflict_do_nothing(index_elements=["token"])
                    # RETURNING, not rowcount: on PostgreSQL this reports -1.
                    .returning(callback_tokens.c.token)
                ).first()
                if taken is None:
                    return Applied.DUPLICATE
            changed = conn.execute(statement).all()
            if changed:
                at = self._bind_time(received_at)
                self._events.write(
                    conn,
                    [
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
                    ],
                )
                return Applied.APPLIED
            held = conn.execute(
                select(
                    exists().where(_D.message_sid == update_.sid, *self._of_connection(connection))
                )
            ).scalar()
        return Applied.STALE if held else Applied.UNKNOWN

    @staticmethod
    def _of_connection(connection: str | None) -> list[ColumnElement[bool]]:
        """The condition "a delivery of `connection`'s runs" (none for None)."""
        if connection is None:
            return []
        return [_D.run_id.in_(select(runs.c.id).where(runs.c.connection == connection))]

    def prune_tokens(self, before: datetime) -> int:
        """Forget the tokens of callbacks received before `before`; how many went."""
        with self._engine.begin() as conn:
            result = conn.execute(
                delete(callback_tokens).where(callback_tokens.c.received_at < before)
            )
        return max(0, result.rowcount)

    def _known(self, sid: str) -> Applied:
        with self._engine.connect() as conn:
            held = conn.execute(select(exists().where(_D.message_sid == sid))).scalar()
        return Applied.STALE if held else Applied.UNKNOWN
