"""What administrators and marketers configure: connections, touchpoints and opt-outs.

Kept apart from runs and deliveries because it changes at a human pace, is read once when a
run starts, and is the only part of the store that holds secrets: a connection's auth token
is encrypted with the `SecretBox` on the way in and decrypted on the way out, so nothing
else in the store ever sees it.

Every write is one short transaction that starts with a write statement, and constraint
checks (unique names, foreign keys) are left to the database, so there is no
check-then-write race between processes.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Row, Select, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from smslink.domain.errors import say
from smslink.domain.models import Connection, LastTest, OptOut, Touchpoint
from smslink.store.database import Database
from smslink.store.errors import AlreadyExists, InUse, NotFound
from smslink.store.rows import dumps, to_optout, to_touchpoint
from smslink.store.schema import connections, optout_removals, optouts, touchpoints
from smslink.store.secrets import SecretBox


class Catalogue:
    """Connections (with their encrypted tokens), touchpoints, and opt-outs per sender."""

    def __init__(self, db: Database, secret_box: SecretBox) -> None:
        self._db = db
        self._engine = db.engine
        self._box = secret_box

    # -- connections ------------------------------------------------------------------

    def add_connection(self, c: Connection) -> None:
        try:
            with self._engine.begin() as conn:
                conn.execute(insert(connections).values(self._connection_values(c)))
        except IntegrityError as e:
            raise AlreadyExists(
                say("a connection named %(name)s already exists", name=repr(c.name))
            ) from e

    def update_connection(self, c: Connection) -> None:
        with self._engine.begin() as conn:
            result = conn.execute(
                update(connections)
                .where(connections.c.name == c.name)
                .values(self._connection_values(c))
            )
        if result.rowcount == 0:
            raise NotFound(say("no connection named %(name)s", name=repr(c.name)))

    def get_connection(self, name: str) -> Connection:
        with self._engine.connect() as conn:
            row = conn.execute(select(connections).where(connections.c.name == name)).first()
        if row is None:
            raise NotFound(say("no connection named %(name)s", name=repr(name)))
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
                        say(
                            "connection %(name)s is used by touchpoint(s) %(touchpoints)s; "
                            "remove them or point them at another connection first",
                            name=repr(name),
                            touchpoints=", ".join(users),
                        )
                    ) from e
                continue
            if result.rowcount == 0:
                raise NotFound(say("no connection named %(name)s", name=repr(name)))
            return
        raise InUse(say("connection %(name)s is still referenced; try again", name=repr(name)))

    def record_test(self, name: str, result: LastTest) -> None:
        """Keep how the connection's Test just ended, for the connections page."""
        with self._engine.begin() as conn:
            conn.execute(
                update(connections)
                .where(connections.c.name == name)
                .values(
                    last_test_at=result.at,
                    last_test_ok=result.ok,
                    last_test_message=result.message,
                )
            )

    def last_tests(self) -> dict[str, LastTest]:
        """Each tested connection's last Test, by name."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(
                    connections.c.name,
                    connections.c.last_test_at,
                    connections.c.last_test_ok,
                    connections.c.last_test_message,
                ).where(connections.c.last_test_at.is_not(None))
            ).all()
        return {
            r.name: LastTest(r.last_test_at, bool(r.last_test_ok), r.last_test_message or "")
            for r in rows
        }

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
            "callback_base_url": c.callback_base_url,
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
            callback_base_url=r.callback_base_url,
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
            if not self._connection_exists(t.connection):
                raise NotFound(say("no connection named %(name)s", name=repr(t.connection))) from e
            raise AlreadyExists(
                say("a touchpoint named %(name)s already exists", name=repr(t.name))
            ) from e

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
            raise NotFound(say("no connection named %(name)s", name=repr(t.connection))) from e
        if result.rowcount == 0:
            raise NotFound(say("no touchpoint named %(name)s", name=repr(t.name)))

    def get_touchpoint(self, name: str) -> Touchpoint:
        with self._engine.connect() as conn:
            row = conn.execute(select(touchpoints).where(touchpoints.c.name == name)).first()
        if row is None:
            raise NotFound(say("no touchpoint named %(name)s", name=repr(name)))
        return to_touchpoint(row)

    def list_touchpoints(self) -> list[Touchpoint]:
        with self._engine.connect() as conn:
            rows = conn.execute(select(touchpoints).order_by(touchpoints.c.name)).all()
        return [to_touchpoint(r) for r in rows]

    def remove_touchpoint(self, name: str) -> None:
        with self._engine.begin() as conn:
            result = conn.execute(delete(touchpoints).where(touchpoints.c.name == name))
        if result.rowcount == 0:
            raise NotFound(say("no touchpoint named %(name)s", name=repr(name)))

    def _connection_exists(self, name: str) -> bool:
        column = connections.c.name
        with self._engine.connect() as conn:
            return conn.execute(select(column).where(column == name)).first() is not None

    # -- opt-outs ---------------------------------------------------------------------

    def add_optout(self, o: OptOut) -> bool:
        """Remember that `o.phone` opted out of `o.sender`; True when this is news.

        Idempotent in one statement (INSERT ... ON CONFLICT DO NOTHING): two workers or two
        processes that both hear 21610 for the same pair neither fail nor race, and the
        first sighting (its time, run and message) is the one kept.
        """
        dialect_insert = self._db.dialect_insert
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

    def optouts_among(self, sender: str, phones: Collection[str]) -> dict[str, OptOut]:
        """The opt-outs from `sender` of those of `phones` who opted out, by phone: one
        query for a journey's batch, however many opt-outs the sender has."""
        if not phones:
            return {}
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(optouts).where(
                    optouts.c.sender == sender, optouts.c.phone.in_(sorted(set(phones)))
                )
            ).all()
        return {r.phone: to_optout(r) for r in rows}

    def load_optouts(self, sender: str, *, since: datetime | None = None) -> dict[str, OptOut]:
        """Every opt-out from `sender` (recorded at or after `since`, when given), by phone:
        loaded when a run starts, so checking a recipient costs a dict lookup rather than a
        query per message, and topped up with `since` while it runs."""
        query = select(optouts).where(optouts.c.sender == sender)
        if since is not None:
            query = query.where(optouts.c.created_at >= since)
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return {r.phone: to_optout(r) for r in rows}

    def list_optouts(
        self, sender: str | None = None, *, phone: str | None = None, limit: int | None = None
    ) -> list[OptOut]:
        """Opt-outs by sender, oldest first within each; only `sender`'s and `phone`'s when
        given; the first `limit` when given."""
        stmt = _optouts_where(select(optouts), sender, phone).order_by(
            optouts.c.sender, optouts.c.created_at, optouts.c.phone
        )
        if limit is not None:
            stmt = stmt.limit(limit)
        with self._engine.connect() as conn:
            return [to_optout(r) for r in conn.execute(stmt).all()]

    def count_optouts(self, sender: str | None = None, *, phone: str | None = None) -> int:
        """How many opt-outs `list_optouts` would give without a limit."""
        stmt = _optouts_where(select(func.count()).select_from(optouts), sender, phone)
        with self._engine.connect() as conn:
            return int(conn.execute(stmt).scalar() or 0)

    def optout_senders(self) -> list[str]:
        """Every sender someone opted out of, in order."""
        stmt = select(optouts.c.sender).distinct().order_by(optouts.c.sender)
        with self._engine.connect() as conn:
            return [str(s) for s in conn.execute(stmt).scalars()]

    def remove_optouts(
        self,
        phone: str,
        sender: str | None = None,
        *,
        removed_by: str | None = None,
        reason: str | None = None,
        now: datetime | None = None,
    ) -> int:
        """Forget `phone`'s opt-out from `sender`, or from every sender when None (they
        replied START, or were recorded by mistake); returns how many were removed.

        Each removed opt-out is kept in `optout_removals` with who removed it, when and why,
        in the same transaction as the delete (DELETE ... RETURNING, so what is recorded is
        exactly what was removed, whatever another process did in between).
        """
        wanted = delete(optouts).where(optouts.c.phone == phone)
        if sender is not None:
            wanted = wanted.where(optouts.c.sender == sender)
        stmt = wanted.returning(
            optouts.c.sender, optouts.c.phone, optouts.c.created_at, optouts.c.run_id
        )
        removed_at = now or datetime.now(UTC)
        with self._engine.begin() as conn:
            removed = conn.execute(stmt).all()
            if removed:
                conn.execute(
                    insert(optout_removals),
                    [
                        {
                            "sender": r.sender,
                            "phone": r.phone,
                            "opted_out_at": r.created_at,
                            "run_id": r.run_id,
                            "removed_at": removed_at,
                            "removed_by": removed_by,
                            "reason": reason,
                        }
                        for r in removed
                    ],
                )
        return len(removed)

    def list_optout_removals(
        self, *, phone: str | None = None, sender: str | None = None, limit: int = 20
    ) -> list[RemovedOptOut]:
        """The latest removals first, only `phone`'s and `sender`'s when given."""
        stmt = select(optout_removals)
        if phone is not None:
            stmt = stmt.where(optout_removals.c.phone == phone)
        if sender is not None:
            stmt = stmt.where(optout_removals.c.sender == sender)
        stmt = stmt.order_by(optout_removals.c.removed_at.desc(), optout_removals.c.id.desc())
        with self._engine.connect() as conn:
            rows = conn.execute(stmt.limit(limit)).all()
        return [
            RemovedOptOut(
                id=r.id,
                sender=r.sender,
                phone=r.phone,
                opted_out_at=r.opted_out_at,
                run_id=r.run_id,
                removed_at=r.removed_at,
                removed_by=r.removed_by,
                reason=r.reason,
            )
            for r in rows
        ]


@dataclass(frozen=True, slots=True)
class RemovedOptOut:
    """An opt-out someone removed: what it was, and who removed it, when and why."""

    id: int
    sender: str
    phone: str
    opted_out_at: datetime  # when the recipient had opted out (first seen)
    run_id: int | None  # the run that learned it, when one did
    removed_at: datetime
    removed_by: str | None  # the user's name; None: the command line
    reason: str | None


_Select = TypeVar("_Select", bound=Select[Any])


def _optouts_where(stmt: _Select, sender: str | None, phone: str | None) -> _Select:
    if sender is not None:
        stmt = stmt.where(optouts.c.sender == sender)
    if phone is not None:
        stmt = stmt.where(optouts.c.phone == phone)
    return stmt
