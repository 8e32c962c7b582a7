"""Journeys: records handed over one at a time as customers reach a step.

`accept` is the one function a journey face calls per request: the REST API today, a
message-broker consumer (Kafka topics, as Unica Journey uses) later, which would read a
record from its topic, call `accept`, and publish the events that follow (`Events`). Each
record is checked and prepared like an audience record, stored in the touchpoint's
standing run in one transaction with the request's keys, and only then answered: a
journey that got an answer can rely on it, and one that did not may simply send the same
request again (see `smslink.domain.journeys` for the answer, `smslink.engine.intake` for
the standing run).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from smslink.domain.journeys import check_idempotency_key, read_request, request_sha256
from smslink.engine.intake import INTAKE_KEY_HOURS, Intake, accept_records
from smslink.store import Store

__all__ = ["INTAKE_KEY_HOURS", "Intake", "Journeys"]


class Journeys:
    """The front door for journey records."""

    def __init__(
        self, store: Store, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._store = store
        self._clock = clock

    def accept(self, touchpoint: str, body: object, idempotency_key: str | None = None) -> Intake:
        """Store the request's records for sending with `touchpoint`; their answers.

        `body` is the request as parsed JSON: one record or `{"records": [...]}`. With an
        `idempotency_key` the request is answered once: a repeat gets the first answer
        (`Intake.replayed`); without one, each record's identity within the touchpoint
        plays that part. Raises InvalidInput (the envelope, the key, or a touchpoint or
        connection that cannot be used: nothing stored), NotFound (no such touchpoint),
        KeyReused (the key came before with other records)."""
        records = read_request(body)
        key = check_idempotency_key(idempotency_key) if idempotency_key is not None else None
        return accept_records(
            self._store,
            touchpoint,
            records,
            request_key=key,
            request_sha256=request_sha256(records) if key is not None else None,
            now=self._clock(),
        )
