"""How the hot paths write and read datetimes on SQLite without SQLAlchemy's type
processing (store/rows.py): held to SQLAlchemy's own SQLite DATETIME, which writes and
reads every other datetime of the store, so the two kinds of statement always agree."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import example, given
from hypothesis import strategies as st
from sqlalchemy.dialects import sqlite

from smslink.store.rows import sqlite_datetime_of, sqlite_datetime_text

_DIALECT = sqlite.dialect()
_SA_WRITE = sqlite.DATETIME().bind_processor(_DIALECT)
_SA_READ = sqlite.DATETIME().result_processor(_DIALECT, None)

#: Offsets a datetime may carry: UTC itself (the common case, its own fast path), whole
#: and odd offsets either side, and none (naive: taken as UTC already).
_ZONES = st.one_of(
    st.just(UTC),
    st.none(),
    st.integers(min_value=-23 * 60, max_value=23 * 60).map(
        lambda minutes: timezone(timedelta(minutes=minutes))
    ),
)
# Far enough from the ends of the calendar that any offset stays within it.
_MOMENTS = st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31))


def _as_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@given(_MOMENTS, _ZONES)
@example(datetime(2026, 11, 30, 10, 0, 0, 0), UTC)  # no microseconds: still written out
@example(datetime(2026, 11, 30, 23, 30), timezone(timedelta(hours=-5)))  # the next day in UTC
def test_the_text_is_what_sqlalchemy_writes_and_reads_back_the_same_moment(
    moment: datetime, zone: timezone | None
) -> None:
    moment = moment.replace(tzinfo=zone)
    utc = _as_utc(moment)
    text = sqlite_datetime_text(moment)

    assert text == _SA_WRITE(utc.replace(tzinfo=None))
    assert sqlite_datetime_of(text) == utc
    assert sqlite_datetime_of(text).tzinfo is UTC
    assert sqlite_datetime_of(text) == _SA_READ(text).replace(tzinfo=UTC)


def test_other_stored_forms_are_read_as_utc_and_none_stays_none() -> None:
    # What the hot paths never write, but an older smslink or a hand edit might have.
    assert sqlite_datetime_of("2026-11-30") == datetime(2026, 11, 30, tzinfo=UTC)
    assert sqlite_datetime_of("2026-11-30 10:00:00") == datetime(2026, 11, 30, 10, tzinfo=UTC)
    assert sqlite_datetime_of("2026-11-30T10:00:00.5") == datetime(
        2026, 11, 30, 10, 0, 0, 500000, tzinfo=UTC
    )
    # An offset of its own is converted, as the store's UTCDateTime converts it on read.
    assert sqlite_datetime_of("2026-11-30 10:00:00+05:00") == datetime(2026, 11, 30, 5, tzinfo=UTC)
    assert sqlite_datetime_of(None) is None
