"""Rows to typed values and back: the only place that knows how a model is laid out in
the tables (JSON text for dicts and lists, enum values as strings)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row

from smslink.domain.models import (
    Delivery,
    OptOut,
    ResultStatus,
    Run,
    RunSnapshot,
    RunState,
    Stage,
    Touchpoint,
)
from smslink.domain.parts import part_of

# The JSON columns: compact, non-ASCII kept as is (rows are mostly names, and \u escapes
# would make a "Zoë" row larger for no reader's benefit); `loads` also reads what an older
# smslink's json module wrote.
from smslink.fastjson import dumps as dumps
from smslink.fastjson import loads as loads

#: Enum members by stored value: a dict lookup is several times cheaper than calling the
#: enum, which shows when streaming a 100,000-row run into a results file.
STAGES = {s.value: s for s in Stage}
STATUSES = {s.value: s for s in ResultStatus}


def sqlite_datetime_text(moment: datetime) -> str:
    """A datetime as SQLAlchemy's SQLite DateTime type stores it (UTC, naive, microseconds),
    for the statements that bypass SQLAlchemy's type processing; reads parse it back.

    Several run for every message (its row, its claim, its progress and events), so the
    common case, a UTC datetime, is one C call: its isoformat without the "+00:00"."""
    zone = moment.tzinfo
    if zone is UTC:
        return moment.isoformat(" ", "microseconds")[:-6]
    utc = moment.astimezone(UTC).replace(tzinfo=None) if zone is not None else moment
    return utc.isoformat(" ", "microseconds")


def sqlite_datetime_of(stored: str | None) -> datetime | None:
    """The aware UTC datetime of what `sqlite_datetime_text` (or SQLAlchemy's SQLite
    DateTime) stored, for driver-level reads: one C call, where SQLAlchemy's result
    processing costs several microseconds a value. Parsing the text with a UTC offset
    appended is ~6x cheaper than parsing it and then replacing its tzinfo."""
    if stored is None:
        return None
    try:
        parsed = datetime.fromisoformat(stored + "+00:00")
    except ValueError:  # not the stored form: a text with an offset of its own, say
        parsed = datetime.fromisoformat(stored)
    # Naive only when a date without a time dropped the appended offset.
    return parsed if parsed.tzinfo is UTC else as_utc(parsed)


def as_utc(moment: datetime) -> datetime:
    """`moment` as an aware UTC datetime; a naive one is taken to be UTC already, as
    everything the store writes is. How every datetime the store reads comes back."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def utc_or_none(moment: datetime | None) -> datetime | None:
    """`as_utc` for a column that may be NULL."""
    return None if moment is None else as_utc(moment)


def column_arrays(rows: Iterable[Sequence[object]]) -> tuple[list[object], ...]:
    """Rows as one list per column: the parameters of a PostgreSQL statement over
    `unnest` arrays, which binds a batch far cheaper than psycopg's executemany."""
    return tuple(list(column) for column in zip(*rows, strict=True))


def delivery_row(
    run_id: int, d: Delivery, bind_time: Callable[[datetime], object]
) -> tuple[object, ...]:
    """A delivery as a driver-level row, in the order of the insert's column list."""
    if d.run_id != run_id:
        raise ValueError(f"delivery seq {d.seq} belongs to run {d.run_id}, not run {run_id}")
    return (
        run_id,
        d.seq,
        dumps(d.row),
        d.to,
        d.body,
        d.segments,
        d.stage.value,
        d.status.value if d.status is not None else None,
        d.twilio_status,
        d.message_sid,
        d.error_code,
        d.error_message,
        d.polls,
        bind_time(d.claimed_at) if d.claimed_at is not None else None,
        bind_time(d.updated_at) if d.updated_at is not None else None,
        dumps(d.identity) if d.identity is not None else None,
        part_of(d.to),
    )


def to_delivery(r: Row[Any], with_row: bool) -> Delivery:
    return Delivery(
        run_id=r.run_id,
        seq=r.seq,
        row=loads(r.row_json) if with_row else {},
        to=r.to_number,
        body=r.body,
        segments=r.segments,
        stage=STAGES[r.stage],
        status=STATUSES[r.status] if r.status is not None else None,
        twilio_status=r.twilio_status,
        message_sid=r.message_sid,
        error_code=r.error_code,
        error_message=r.error_message,
        polls=r.polls,
        claimed_at=r.claimed_at,
        updated_at=r.updated_at,
        identity=loads(r.identity_json) if r.identity_json is not None else None,
    )


def to_touchpoint(r: Row[Any]) -> Touchpoint:
    return Touchpoint(
        name=r.name,
        connection=r.connection,
        message=r.message,
        phone_column=r.phone_column,
        mapping=loads(r.mapping_json),
    )


def to_run(r: Row[Any]) -> Run:
    return Run(
        id=r.id,
        touchpoint=r.touchpoint,
        connection=r.connection,
        input_path=r.input_path,
        output_path=r.output_path,
        state=RunState(r.state),
        created_at=r.created_at,
        columns=loads(r.columns_json),
        total=r.total,
        error=r.error,
        finished_at=r.finished_at,
        snapshot=RunSnapshot.from_json(loads(r.settings_json)),
        audience_complete=bool(r.audience_complete),
        origin=r.origin,
        queued=bool(r.queued),
    )


def to_optout(r: Row[Any]) -> OptOut:
    return OptOut(
        sender=r.sender,
        phone=r.phone,
        created_at=r.created_at,
        run_id=r.run_id,
        source=r.source,
        message=r.message,
    )
