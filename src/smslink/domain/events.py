"""What happened to a delivery, as the outside world reads it: its events and its public id.

Every status change of a delivery is stored as an event in the same transaction as the
change itself (see `smslink.store.events`), so the events of a delivery are its history
in order, and its final status is one event, exactly once.

A delivery's public id is `"<run>-<record>"`: the run's id and the record's number in
the audience, counted from 1 (the store's `seq` plus one), e.g. `"12-1"` for the first
record of run 12. A journey's records are those of its touchpoint's standing run, so
their ids have the same form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

#: The largest run id and record number a public id may name (the store's integers).
MAX_ID_PART = 2**31 - 1
_PUBLIC_ID = re.compile(r"([1-9][0-9]{0,9})-([1-9][0-9]{0,9})")


@dataclass(frozen=True, slots=True)
class DeliveryEvent:
    """One status change of one delivery. `status` is the product's result (delivered,
    undelivered, failed, sent, error) on the delivery's one final event, None before."""

    id: int  # the global order, and the position a reader resumes after
    run_id: int
    seq: int
    created_at: datetime
    status: str | None
    twilio_status: str | None
    error_code: int | None
    error_message: str | None
    segments: int
    message_sid: str | None
    touchpoint: str | None = None  # the run's touchpoint, when read with it
    #: The identity fields a journey gave with the record; None for a campaign's record.
    identity: dict[str, str] | None = None

    @property
    def delivery_id(self) -> str:
        return delivery_id(self.run_id, self.seq)


def delivery_id(run_id: int, seq: int) -> str:
    """The public id of a run's delivery: `"<run>-<record from 1>"`."""
    return f"{run_id}-{seq + 1}"


def parse_delivery_id(public_id: str) -> tuple[int, int] | None:
    """`(run_id, seq)` of a public id, or None when it cannot name a delivery."""
    found = _PUBLIC_ID.fullmatch(public_id)
    if found is None:
        return None
    run_id, record = int(found.group(1)), int(found.group(2))
    if run_id > MAX_ID_PART or record > MAX_ID_PART:
        return None
    return run_id, record - 1
