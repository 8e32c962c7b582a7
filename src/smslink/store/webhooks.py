"""Webhook subscriptions: where delivery events are posted, with each one's cursor.

A subscription's secret is encrypted with the `SecretBox` on the way in and decrypted only
for the dispatcher (`due`), never for a listing. `last_event_id` is the cursor over
events.id: the dispatcher posts the events after it one at a time and moves it forward
(`delivered`) only after the subscriber accepted one, so events go out in order and a
restart resumes where the store says. The move is conditional (only forward), so a late
write never takes a cursor back.
"""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, delete, func, insert, or_, select, update

from smslink.domain.errors import say
from smslink.domain.events import DeliveryEvent
from smslink.domain.webhooks import WebhookSubscription
from smslink.store.database import Database
from smslink.store.errors import NotFound
from smslink.store.events import event_of, events_with_touchpoint
from smslink.store.schema import events, runs, webhook_subscriptions
from smslink.store.secrets import SecretBox

_W = webhook_subscriptions.c
_E = events.c


class WebhookStore:
    """Subscriptions: added, listed, removed, enabled again; and the dispatcher's reads and
    writes (who is due, their next events, a delivery done or failed)."""

    def __init__(self, db: Database, secret_box: SecretBox) -> None:
        self._engine = db.engine
        self._box = secret_box

    def add(
        self,
        *,
        url: str,
        touchpoint: str | None,
        secret: str,
        created_by: str | None,
        now: datetime,
    ) -> WebhookSubscription:
        """A new subscription whose cursor is the newest event: it gets what happens from
        now on, not the history."""
        newest = select(func.coalesce(func.max(_E.id), 0)).scalar_subquery()
        with self._engine.begin() as conn:
            new_id = conn.execute(
                insert(webhook_subscriptions)
                .values(
                    url=url,
                    touchpoint=touchpoint,
                    secret_encrypted=self._box.encrypt(secret),
                    created_at=now,
                    created_by=created_by,
                    last_event_id=newest,
                    attempts=0,
                )
                .returning(_W.id)
            ).scalar_one()
        return self.get(int(new_id))

    def get(self, subscription_id: int) -> WebhookSubscription:
        with self._engine.connect() as conn:
            found = conn.execute(select(webhook_subscriptions).where(_W.id == subscription_id))
            row = found.first()
        if row is None:
            raise NotFound(say("no webhook subscription %(id)s", id=str(subscription_id)))
        return _subscription(row)

    def list(self) -> list[WebhookSubscription]:
        with self._engine.connect() as conn:
            rows = conn.execute(select(webhook_subscriptions).order_by(_W.id))
            return [_subscription(r) for r in rows]

    def remove(self, subscription_id: int) -> None:
        with self._engine.begin() as conn:
            result = conn.execute(delete(webhook_subscriptions).where(_W.id == subscription_id))
        if result.rowcount == 0:
            raise NotFound(say("no webhook subscription %(id)s", id=str(subscription_id)))

    def enable(self, subscription_id: int) -> WebhookSubscription:
        """Enabled again, as if it had never failed (its last error stays, for the record)."""
        with self._engine.begin() as conn:
            result = conn.execute(
                update(webhook_subscriptions)
                .where(_W.id == subscription_id)
                .values(
                    disabled_at=None,
                    disabled_reason=None,
                    attempts=0,
                    next_attempt_at=None,
                    failing_since=None,
                )
            )
        if result.rowcount == 0:
            raise NotFound(say("no webhook subscription %(id)s", id=str(subscription_id)))
        return self.get(subscription_id)

    # -- the dispatcher ---------------------------------------------------------------

    def due(self, now: datetime) -> builtins.list[tuple[WebhookSubscription, str]]:
        """Enabled subscriptions with events after their cursor and no retry to wait for,
        each with its secret. One statement, cheap when nothing happens."""
        newest = select(func.coalesce(func.max(_E.id), 0)).scalar_subquery()
        query = (
            select(webhook_subscriptions)
            .where(
                _W.disabled_at.is_(None),
                or_(_W.next_attempt_at.is_(None), _W.next_attempt_at <= now),
                _W.last_event_id < newest,
            )
            .order_by(_W.id)
        )
        with self._engine.connect() as conn:
            rows = list(conn.execute(query))
        return [(_subscription(r), self._box.decrypt(r.secret_encrypted)) for r in rows]

    def next_events(
        self, after: int, touchpoint: str | None, limit: int
    ) -> tuple[builtins.list[DeliveryEvent], int]:
        """Up to `limit` events after `after` (of `touchpoint` only, when given), in id
        order, and how far they cover: the last one's id when `limit` were found, else the
        newest event's id read before them (every event up to it was looked at: those not
        returned are not this subscription's, so its cursor may move past them)."""
        query = events_with_touchpoint().order_by(_E.id).limit(max(1, limit))
        with self._engine.connect() as conn:
            newest = int(conn.execute(select(func.coalesce(func.max(_E.id), 0))).scalar_one())
            where = and_(_E.id > after, _E.id <= newest)
            if touchpoint is not None:
                where = and_(where, runs.c.touchpoint == touchpoint)
            found = [event_of(r) for r in conn.execute(query.where(where))]
        covered = found[-1].id if len(found) >= limit else max(after, newest)
        return found, covered

    def delivered(self, subscription_id: int, event_id: int) -> bool:
        """Move the cursor forward to `event_id` and clear the failure count; False when
        the cursor was there already (or the subscription is gone)."""
        with self._engine.begin() as conn:
            result = conn.execute(
                update(webhook_subscriptions)
                .where(_W.id == subscription_id, _W.last_event_id < event_id)
                .values(
                    last_event_id=event_id,
                    attempts=0,
                    next_attempt_at=None,
                    failing_since=None,
                    last_error=None,
                )
            )
        return bool(result.rowcount)

    def failed(
        self,
        subscription_id: int,
        *,
        error: str,
        attempts: int,
        failing_since: datetime,
        next_attempt_at: datetime | None,
        disabled_at: datetime | None = None,
        disabled_reason: str | None = None,
    ) -> None:
        """A delivery failed: the failure count, when to try again, and, when it has been
        failing too long, disabled with its reason."""
        values: dict[str, Any] = {
            "last_error": error,
            "attempts": attempts,
            "failing_since": failing_since,
            "next_attempt_at": next_attempt_at,
        }
        if disabled_at is not None:
            values.update(disabled_at=disabled_at, disabled_reason=disabled_reason)
        with self._engine.begin() as conn:
            conn.execute(
                update(webhook_subscriptions)
                .where(_W.id == subscription_id, _W.disabled_at.is_(None))
                .values(values)
            )


def _subscription(r: Row[Any]) -> WebhookSubscription:
    return WebhookSubscription(
        id=r.id,
        url=r.url,
        touchpoint=r.touchpoint,
        created_at=r.created_at,
        created_by=r.created_by,
        last_event_id=r.last_event_id,
        attempts=r.attempts,
        next_attempt_at=r.next_attempt_at,
        failing_since=r.failing_since,
        disabled_at=r.disabled_at,
        disabled_reason=r.disabled_reason,
        last_error=r.last_error,
    )
