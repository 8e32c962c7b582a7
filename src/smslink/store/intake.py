"""Journey intake: records appended to a touchpoint's standing run, each request once.

A journey hands smslink records one at a time (or a few hundred) as customers reach a step,
and retries a request whose answer it did not get. So appending is one transaction that
does everything or nothing: it takes the standing run's row (PostgreSQL's row lock,
SQLite's write lock), looks up what this touchpoint was already asked (by the request's
Idempotency-Key, or each record's identity), numbers the new records after the run's last,
inserts them with the events of those already final, advances the run's total, and
remembers the keys with their answers. A retry then finds its key and gets the first
answer back; nothing is stored or sent twice, and a crash leaves either all of it or none.

Keys older than `remember_since` are treated as never seen and pruned on the way.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, and_, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from smslink.domain.errors import Problem, say
from smslink.domain.events import delivery_id
from smslink.domain.journeys import RecordAnswer, Replay
from smslink.domain.models import JOURNEY, Delivery, Run, RunSnapshot, RunState
from smslink.store.database import Database
from smslink.store.deliveries import DeliveryStore
from smslink.store.errors import KeyReused, NotFound, RunSealed
from smslink.store.rows import dumps, to_run
from smslink.store.schema import intake_keys, runs

_K = intake_keys.c
#: Serialises the choice of a touchpoint's standing run (shared with run creation).
_RUN_CREATION_LOCK = "smslink:runs:"
#: Identity keys looked up per statement (SQLite allows 32,766 parameters).
_LOOKUP_CHUNK = 500


@dataclass(slots=True)
class Incoming:
    """One record of a request, ready to store: its identity key (None when the request's
    key covers it) and its prepared delivery, or the answer it gets without being stored."""

    identity_key: str | None
    delivery: Delivery | None
    answer: RecordAnswer


class IntakeStore:
    """Standing runs of touchpoints and the records journeys append to them."""

    def __init__(self, db: Database, deliveries: DeliveryStore) -> None:
        self._db = db
        self._engine = db.engine
        self._deliveries = deliveries

    def standing_run(
        self, touchpoint: str, connection: str, snapshot: RunSnapshot, now: datetime
    ) -> Run:
        """The touchpoint's open journey run with exactly this snapshot and connection; if
        the open one was made with other settings it is sealed (it finishes what it holds)
        and a new one is created, under the run-creation lock, so two first requests at
        once share one run."""
        settings_json = dumps(snapshot.to_json())

        def same_settings(found: Sequence[Row[Any]]) -> Run | None:
            for row in found:
                if row.settings_json == settings_json and row.connection == connection:
                    return to_run(row)
            return None

        open_runs = (
            select(runs)
            .where(
                runs.c.touchpoint == touchpoint,
                runs.c.origin == JOURNEY,
                runs.c.audience_complete.is_(False),
            )
            .order_by(runs.c.id.desc())
        )
        # Nearly always the run is there: found by a read, without the write lock (were
        # it sealed meanwhile, `append` says so and the caller asks again).
        with self._engine.connect() as conn:
            standing = same_settings(conn.execute(open_runs).all())
        if standing is not None:
            return standing
        with self._engine.begin() as conn:
            self._db.hold_write_lock(conn, _RUN_CREATION_LOCK)
            found = conn.execute(open_runs).all()
            standing = same_settings(found)
            if standing is not None:
                return standing
            if found:
                conn.execute(
                    update(runs)
                    .where(runs.c.id.in_([r.id for r in found]))
                    .values(audience_complete=True)
                )
            result = conn.execute(
                insert(runs).values(
                    touchpoint=touchpoint,
                    connection=connection,
                    input_path="",
                    output_path="",
                    state=RunState.CREATED.value,
                    created_at=now,
                    columns_json="[]",
                    total=0,
                    audience_complete=False,
                    settings_json=settings_json,
                    origin=JOURNEY,
                )
            )
            key = result.inserted_primary_key
            assert key is not None  # an INSERT of one row always has one
            created = conn.execute(select(runs).where(runs.c.id == key[0])).one()
        return to_run(created)

    def append(
        self,
        run_id: int,
        touchpoint: str,
        items: Sequence[Incoming],
        *,
        request_key: str | None,
        request_sha256: str | None,
        now: datetime,
        remember_since: datetime,
    ) -> list[RecordAnswer] | Replay:
        """Store the records of one request in run `run_id`; their answers, in order.

        A Replay (the first answer) when `request_key` was used before for this
        touchpoint; a record whose identity key was seen before gets its first answer
        marked `repeated`, and is not stored again. Raises RunSealed, KeyReused, NotFound.
        """
        args = (run_id, touchpoint, items, request_key, request_sha256, now, remember_since)
        try:
            return self._append(*args)
        except IntegrityError:
            # Another process stored the same key between our look-up and our insert (only
            # possible across standing runs, one sealed meanwhile): asking again finds it.
            return self._append(*args)

    def _append(
        self,
        run_id: int,
        touchpoint: str,
        items: Sequence[Incoming],
        request_key: str | None,
        request_sha256: str | None,
        now: datetime,
        remember_since: datetime,
    ) -> list[RecordAnswer] | Replay:
        with self._engine.begin() as conn:
            total = self._hold_run(conn, run_id)
            conn.execute(delete(intake_keys).where(_K.created_at < remember_since))
            if request_key is not None:
                replay = self._replay(conn, touchpoint, request_key, request_sha256)
                if replay is not None:
                    return replay
            seen = self._answers_for(
                conn, touchpoint, [i.identity_key for i in items if i.identity_key]
            )
            answers: list[RecordAnswer] = []
            to_store: list[Delivery] = []
            new_keys: list[dict[str, object]] = []
            seq = total
            for item in items:
                earlier = seen.get(item.identity_key) if item.identity_key else None
                if earlier is not None:
                    answers.append(earlier.repeated_answer())
                    continue
                answer = item.answer
                if item.delivery is not None:
                    item.delivery.run_id, item.delivery.seq = run_id, seq
                    answer = answer.stored_as(delivery_id(run_id, seq))
                    to_store.append(item.delivery)
                    seq += 1
                answers.append(answer)
                if item.identity_key and answer.id is not None:
                    seen[item.identity_key] = answer
                    new_keys.append(
                        _key_row(touchpoint, item.identity_key, now, None, answer.to_json())
                    )
            if to_store:
                self._deliveries.insert_in(conn, run_id, to_store)
                conn.execute(update(runs).where(runs.c.id == run_id).values(total=seq))
            if request_key is not None:
                every = [a.to_json() for a in answers]
                new_keys.append(_key_row(touchpoint, request_key, now, request_sha256, every))
            if new_keys:
                conn.execute(insert(intake_keys), new_keys)
        return answers

    def _hold_run(self, conn: Connection, run_id: int) -> int:
        """Lock the run row for this transaction; its total. RunSealed, NotFound."""
        if not self._db.postgres:
            self._db.hold_write_lock(conn, "")  # SQLite: the write lock, taken at once
        query = select(runs.c.total, runs.c.audience_complete).where(runs.c.id == run_id)
        if self._db.postgres:
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None:
            raise NotFound(say("no run %(run)s", run=str(run_id)))
        if row.audience_complete:
            raise RunSealed(say("run %(run)s takes no more records", run=str(run_id)))
        return int(row.total)

    def _replay(
        self, conn: Connection, touchpoint: str, key: str, sha256: str | None
    ) -> Replay | None:
        found = conn.execute(
            select(_K.request_sha256, _K.answer_json).where(
                _K.touchpoint == touchpoint, _K.key == key
            )
        ).first()
        if found is None:
            return None
        if found.request_sha256 != sha256:
            message = say(
                "this Idempotency-Key was used before with another request: use a new key "
                "for new records, or repeat the first request exactly"
            )
            raise KeyReused(problems=[Problem("Idempotency-Key", message)])
        return Replay([RecordAnswer.from_json(a) for a in json.loads(found.answer_json)])

    def _answers_for(
        self, conn: Connection, touchpoint: str, keys: list[str]
    ) -> dict[str, RecordAnswer]:
        found: dict[str, RecordAnswer] = {}
        unique = sorted(set(keys))
        for start in range(0, len(unique), _LOOKUP_CHUNK):
            chunk = unique[start : start + _LOOKUP_CHUNK]
            rows = conn.execute(
                select(_K.key, _K.answer_json).where(
                    and_(_K.touchpoint == touchpoint, _K.key.in_(chunk))
                )
            )
            for row in rows:
                found[row.key] = RecordAnswer.from_json(json.loads(row.answer_json))
        return found


def _key_row(
    touchpoint: str, key: str, now: datetime, sha256: str | None, answer: object
) -> dict[str, object]:
    return {
        "touchpoint": touchpoint,
        "key": key,
        "created_at": now,
        "request_sha256": sha256,
        "answer_json": dumps(answer),
    }
