"""Deliveries and their events, for whoever follows them from outside (the events API).

Every status change of a delivery is an event, stored in the transaction of the change
(`smslink.store.events`): read in id order they are each delivery's history in order,
with its final status exactly once. A reader keeps the id of the last event it handled
and asks for those after it (`events_after`), so it resumes without a gap or a repeat.

A delivery is named by its public id `"<run>-<record>"` (`smslink.domain.events`): the
run's id and the record's number in the audience from 1, e.g. `"12-1"`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from smslink.app.runs import _statuses
from smslink.domain.errors import InvalidInput, Problem, say
from smslink.domain.events import DeliveryEvent, delivery_id, parse_delivery_id
from smslink.domain.models import Delivery
from smslink.store import NotFound, Store

#: The most deliveries or events one call returns.
MAX_PAGE = 1000


@dataclass(frozen=True, slots=True)
class DeliveryNow:
    """A delivery as it is now, with its run's touchpoint (and its events, when asked)."""

    id: str
    touchpoint: str
    delivery: Delivery
    events: list[DeliveryEvent] = field(default_factory=list)


class Events:
    """The front door to deliveries across runs and to their events."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def delivery(self, public_id: str) -> DeliveryNow:
        """The delivery `public_id` names, with its events in order; NotFound when it
        names none (or is not a delivery id at all)."""
        key = parse_delivery_id(public_id)
        found = self._store.deliveries.one(*key) if key is not None else None
        if found is None:
            raise NotFound(say("no delivery %(delivery)s", delivery=public_id[:40]))
        touchpoint, d = found
        events = self._store.events.of_delivery(d.run_id, d.seq)
        return DeliveryNow(delivery_id(d.run_id, d.seq), touchpoint, d, events)

    def deliveries(
        self,
        *,
        run: int | None = None,
        status: str = "",
        after: str | None = None,
        limit: int = 50,
    ) -> list[DeliveryNow]:
        """Deliveries in (run, record) order: of `run` only (None: every run), with
        `status` (as the run's table filters: delivered, ..., unfinished, problems; "" for
        all), after the delivery `after` names (keyset pagination: pass the last id of a
        page), at most `limit` (up to MAX_PAGE). InvalidInput (field "status" or "after")
        for an unknown status or an `after` that is not a delivery id."""
        statuses = _statuses(status)
        key = None
        if after:
            key = parse_delivery_id(after)
            if key is None:
                message = say("no delivery %(delivery)s", delivery=after[:40])
                raise InvalidInput(problems=[Problem("after", message)])
        found = self._store.deliveries.across(
            run_id=run, statuses=statuses, after=key, limit=min(max(1, limit), MAX_PAGE)
        )
        return [DeliveryNow(delivery_id(d.run_id, d.seq), tp, d) for tp, d in found]

    def events_after(self, event_id: int, limit: int = 100) -> list[DeliveryEvent]:
        """Up to `limit` (at most MAX_PAGE) events after `event_id` (0: from the first),
        in order: resume with the last one's id."""
        return self._store.events.after(max(0, event_id), min(max(1, limit), MAX_PAGE))

    def last_event_id(self) -> int:
        """The newest event's id (0: none yet): where a reader of new events only starts."""
        return self._store.events.last_id()
