"""Journey intake: each record prepared like an audience's, then appended to its
touchpoint's standing run in one transaction.

A touchpoint has one standing journey run at a time (origin "journey", no audience or
results file): its records arrive through the journey API and its sender, woken by each
arrival, sends them like a campaign's. When the touchpoint or its connection is edited,
the next request seals that run (it finishes what it holds, with the settings it was
accepted under) and opens a new one, so a record is always sent as it was promised.

A record is prepared exactly as an audience record is (`prepare`): the same phone rules,
the same empty-placeholder and length checks, the same result texts. An opted-out
recipient is settled at once with Twilio's 21610, as the sender would settle it.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

from smslink.audience.readers import AudienceRecord
from smslink.domain.connection_rules import stored_connection_problem
from smslink.domain.journeys import ERROR, QUEUED, JourneyRecord, RecordAnswer, Replay
from smslink.domain.models import (
    Connection,
    Delivery,
    ResultStatus,
    Run,
    RunSnapshot,
    Stage,
    Touchpoint,
)
from smslink.engine.optouts import OPTED_OUT, skipped_message
from smslink.engine.prepare import Recipe, prepare
from smslink.engine.start import InputError, recipe_for
from smslink.store import Incoming, RunSealed, Store

#: How long a request's Idempotency-Key, and a record's identity, are remembered: a
#: journey's retry within this time gets the first answer; after it, the same identity is
#: a new record (the customer reached the step again).
INTAKE_KEY_HOURS = 24
#: How often appending is tried when the standing run is sealed under it.
_SEALED_RETRIES = 3


@dataclass(frozen=True, slots=True)
class Intake:
    """What one request became: the standing run, an answer per record in order, and
    whether it was a replay of an earlier request with the same Idempotency-Key."""

    run: Run
    answers: list[RecordAnswer]
    replayed: bool = False


def accept_records(
    store: Store,
    touchpoint_name: str,
    records: list[JourneyRecord | RecordAnswer],
    *,
    request_key: str | None,
    request_sha256: str | None,
    now: datetime,
) -> Intake:
    """Prepare and store a request's records in the touchpoint's standing run.

    Raises NotFound (no such touchpoint), InputError (its connection or message cannot be
    used: nothing is stored, and the journey may retry once it is fixed) or KeyReused.
    """
    touchpoint = store.catalogue.get_touchpoint(touchpoint_name)
    connection = store.catalogue.get_connection(touchpoint.connection)
    problem = stored_connection_problem(connection)
    if problem:
        raise InputError(problem)
    recipe = recipe_for(touchpoint, connection.region)
    items = _prepared(store, records, recipe, connection, keyed=request_key is None)
    snapshot = _snapshot(touchpoint, recipe, connection, store.derived_key("journey-settings"))
    remember_since = now - timedelta(hours=INTAKE_KEY_HOURS)
    for _ in range(_SEALED_RETRIES):
        run = store.intake.standing_run(touchpoint.name, connection.name, snapshot, now)
        try:
            answers = store.intake.append(
                run.id,
                touchpoint.name,
                items,
                request_key=request_key,
                request_sha256=request_sha256,
                now=now,
                remember_since=remember_since,
            )
        except RunSealed:
            continue  # sealed between choosing and appending: the next one is open
        if isinstance(answers, Replay):
            return Intake(run, answers.answers, replayed=True)
        return Intake(run, answers)
    raise RunSealed(f"touchpoint '{touchpoint.name}' keeps changing; try again")


def _prepared(
    store: Store,
    records: list[JourneyRecord | RecordAnswer],
    recipe: Recipe,
    connection: Connection,
    *,
    keyed: bool,
) -> list[Incoming]:
    deliveries: list[tuple[JourneyRecord, Delivery] | RecordAnswer] = []
    for number, record in enumerate(records, start=1):
        if isinstance(record, RecordAnswer):
            deliveries.append(record)
            continue
        delivery = prepare(0, 0, AudienceRecord(number, 0, record.values), recipe)
        delivery.identity = record.identity
        deliveries.append((record, delivery))
    phones = [
        found[1].to
        for found in deliveries
        if isinstance(found, tuple) and found[1].stage is Stage.PENDING and found[1].to
    ]
    opted_out = store.catalogue.optouts_among(connection.sender, phones)
    items: list[Incoming] = []
    for found in deliveries:
        if isinstance(found, RecordAnswer):
            items.append(Incoming(None, None, found))
            continue
        record, delivery = found
        optout = opted_out.get(delivery.to or "") if delivery.stage is Stage.PENDING else None
        if optout is not None:
            delivery.stage, delivery.status = Stage.DONE, ResultStatus.ERROR
            delivery.error_code, delivery.error_message = OPTED_OUT, skipped_message(optout)
        answer = (
            RecordAnswer(QUEUED)
            if delivery.stage is Stage.PENDING
            else RecordAnswer(
                ERROR, error_code=delivery.error_code, errormessage=delivery.error_message
            )
        )
        items.append(Incoming(record.identity_key if keyed else None, delivery, answer))
    return items


def _snapshot(
    touchpoint: Touchpoint, recipe: Recipe, connection: Connection, key: bytes
) -> RunSnapshot:
    """What the standing run keeps using; its fingerprint changes with any setting of the
    connection, the auth token included, so editing it opens a new standing run (see the
    module docstring). An HMAC under the store's key, never a bare hash of the token."""
    settings = f"{connection!r}\n{connection.auth_token}".encode()
    return RunSnapshot(
        message=touchpoint.message,
        phone_column=recipe.phone_column,
        mapping=dict(recipe.mapping),
        region=connection.region,
        fingerprint="journey\n" + hmac.new(key, settings, hashlib.sha256).hexdigest(),
    )
