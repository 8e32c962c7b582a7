"""The store, against a real SQLite file and a real PostgreSQL (each test in a fresh schema)."""

from __future__ import annotations

import itertools
import stat
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from smslink.domain.models import (
    Connection,
    Delivery,
    Progress,
    ResultStatus,
    RunSnapshot,
    RunState,
    Stage,
    Touchpoint,
)
from smslink.store import AlreadyExists, InUse, NotFound, SchemaTooNew, Store, open_store
from smslink.store.schema import SCHEMA_VERSION, connections, deliveries, meta
from smslink.store.secrets import SecretBox, SecretError

TOKEN = "9d2c5e1f0a7b4c3d8e6f1a2b3c4d5e6f"
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


# The url, key and store fixtures are in conftest.py.


def _connection(name: str = "main", **overrides: object) -> Connection:
    fields: dict[str, object] = {
        "name": name,
        "account_sid": "AC" + "0" * 32,
        "auth_token": TOKEN,
        "from_number": "+15005550006",
    }
    fields.update(overrides)
    return Connection(**fields)  # type: ignore[arg-type]


def _touchpoint(name: str = "welcome", connection: str = "main") -> Touchpoint:
    return Touchpoint(
        name=name,
        connection=connection,
        message="Hi <FirstName>",
        phone_column="mobile",
        mapping={"FirstName": "first_name"},
    )


def _run(store: Store, output_path: str | None = None) -> int:
    return store.runs.create_run(
        touchpoint="welcome",
        connection="main",
        input_path="in.csv",
        output_path=output_path or f"out-{next(_OUTPUTS)}.csv",  # unfinished runs: one each
        snapshot=RunSnapshot("Hi <FirstName>", "mobile"),
    ).id


_OUTPUTS = itertools.count()


def _deliveries(run_id: int, seqs: range, **overrides: object) -> list[Delivery]:
    return [
        Delivery(
            run_id=run_id,
            seq=i,
            row={"mobile": f"+1555000{i:04d}", "first_name": f"Zoë {i}"},
            to=f"+1555000{i:04d}",
            body=f"Hi Zoë {i}",
            segments=1,
            **overrides,  # type: ignore[arg-type]
        )
        for i in seqs
    ]


# -- connections ---------------------------------------------------------------------------


def test_connection_round_trip(store: Store):
    c = _connection(messaging_service_sid="MG1", api_key_sid="SK1", poll_attempts=3)
    store.catalogue.add_connection(c)
    assert store.catalogue.get_connection("main") == c
    assert (c.max_segments_per_second, c.request_timeout_s) == (None, 30.0)  # the defaults
    c.auth_token = "rotated-token"
    c.poll_interval_ms = 500
    c.max_segments_per_second = 0.5  # fractions too: one segment every two seconds
    c.request_timeout_s = 12.5
    store.catalogue.update_connection(c)
    assert store.catalogue.get_connection("main") == c
    c.max_segments_per_second = None  # the cap can be taken away again
    store.catalogue.update_connection(c)
    assert store.catalogue.get_connection("main").max_segments_per_second is None
    store.catalogue.add_connection(_connection("b-second"))
    assert [x.name for x in store.catalogue.list_connections()] == ["b-second", "main"]


def test_connection_errors(store: Store):
    store.catalogue.add_connection(_connection())
    with pytest.raises(AlreadyExists, match="main"):
        store.catalogue.add_connection(_connection())
    with pytest.raises(NotFound):
        store.catalogue.get_connection("nope")
    with pytest.raises(NotFound):
        store.catalogue.update_connection(_connection("nope"))
    with pytest.raises(NotFound):
        store.catalogue.remove_connection("nope")
    store.catalogue.remove_connection("main")
    assert store.catalogue.list_connections() == []


def test_auth_token_is_never_stored_in_clear(store: Store, url: str):
    store.catalogue.add_connection(_connection())
    engine = create_engine(url)
    with engine.connect() as conn:
        raw = conn.execute(select(connections)).one()
    engine.dispose()
    assert all(TOKEN not in str(value) for value in raw)
    assert raw.auth_token_encrypted
    if url.startswith("sqlite"):  # nor anywhere in the database's files
        store.close()
        db = Path(make_url(url).database or "")
        for path in db.parent.iterdir():
            assert TOKEN.encode() not in path.read_bytes(), path


def test_wrong_key_gives_secret_error(store: Store, url: str):
    store.catalogue.add_connection(_connection())
    other = open_store(url, secret_box=SecretBox(Fernet.generate_key()))
    try:
        with pytest.raises(SecretError, match=r"was SMSLINK_SECRET_KEY or secret\.key changed"):
            other.catalogue.get_connection("main")
    finally:
        other.close()


def test_removing_a_used_connection_names_its_touchpoints(store: Store):
    store.catalogue.add_connection(_connection())
    store.catalogue.add_touchpoint(_touchpoint("welcome"))
    store.catalogue.add_touchpoint(_touchpoint("reminder"))
    with pytest.raises(InUse, match="reminder, welcome"):
        store.catalogue.remove_connection("main")
    assert store.catalogue.get_connection("main").name == "main"
    store.catalogue.remove_touchpoint("welcome")
    store.catalogue.remove_touchpoint("reminder")
    store.catalogue.remove_connection("main")


# -- touchpoints ---------------------------------------------------------------------------


def test_touchpoint_round_trip_and_errors(store: Store):
    with pytest.raises(NotFound, match="no connection named 'main'"):
        store.catalogue.add_touchpoint(_touchpoint())
    store.catalogue.add_connection(_connection())
    t = _touchpoint()
    store.catalogue.add_touchpoint(t)
    assert store.catalogue.get_touchpoint("welcome") == t
    with pytest.raises(AlreadyExists):
        store.catalogue.add_touchpoint(t)
    store.catalogue.add_touchpoint(_touchpoint("another"))
    assert [x.name for x in store.catalogue.list_touchpoints()] == ["another", "welcome"]
    store.catalogue.remove_touchpoint("welcome")
    with pytest.raises(NotFound):
        store.catalogue.get_touchpoint("welcome")
    with pytest.raises(NotFound):
        store.catalogue.remove_touchpoint("welcome")


# -- runs ----------------------------------------------------------------------------------


def test_run_lifecycle(store: Store):
    before = datetime.now(UTC)
    run = store.runs.create_run(
        touchpoint="welcome",
        connection="main",
        input_path="in.csv",
        output_path="out.csv",
        snapshot=RunSnapshot("Hi", "mobile", {"A": "a"}, "DE", overwrite=True),
    )
    assert run.state is RunState.CREATED
    assert run.created_at.tzinfo is UTC and run.created_at >= before
    assert store.runs.get_run(run.id) == run

    store.runs.update_run(run.id, state=RunState.STOPPED, error="bad token", columns=["a", "b"])
    got = store.runs.get_run(run.id)
    assert (got.state, got.error, got.columns) == (RunState.STOPPED, "bad token", ["a", "b"])

    store.runs.update_run(run.id, state=RunState.SENDING)  # error untouched when not given
    assert store.runs.get_run(run.id).error == "bad token"
    store.runs.update_run(run.id, error=None)  # ... and cleared when given as None
    assert store.runs.get_run(run.id).error is None

    # An aware non-UTC time comes back as the same instant, in UTC.
    cest = datetime(2024, 5, 1, 14, 30, tzinfo=timezone(timedelta(hours=2)))
    store.runs.update_run(run.id, state=RunState.COMPLETED, finished_at=cest)
    finished = store.runs.get_run(run.id).finished_at
    assert finished == cest and finished is not None and finished.tzinfo is UTC


def test_run_errors_and_listing(store: Store):
    with pytest.raises(NotFound):
        store.runs.get_run(999)
    with pytest.raises(NotFound):
        store.runs.update_run(999, state=RunState.SENDING)
    with pytest.raises(NotFound):
        store.runs.update_run(999)
    ids = [_run(store) for _ in range(5)]
    assert [r.id for r in store.runs.list_runs()] == ids[::-1]
    assert [r.id for r in store.runs.list_runs(limit=2)] == ids[:-3:-1]


# -- deliveries ----------------------------------------------------------------------------


def test_add_deliveries_round_trips_and_sets_total(store: Store):
    run_id = _run(store)
    batch = _deliveries(run_id, range(3))
    batch[2] = Delivery(
        run_id=run_id,
        seq=2,
        row={"mobile": "nope"},
        stage=Stage.DONE,
        status=ResultStatus.ERROR,
        error_message="row 3: mobile 'nope' is not a phone number",
        updated_at=NOW,
    )
    store.deliveries.add_deliveries(run_id, batch, ["mobile", "first_name"])
    assert list(store.deliveries.iter_deliveries(run_id)) == batch
    run = store.runs.get_run(run_id)
    assert (run.total, run.columns) == (3, ["mobile", "first_name"])


def test_add_deliveries_is_atomic_with_the_total(store: Store):
    run_id = _run(store)
    store.deliveries.add_deliveries(run_id, _deliveries(run_id, range(10)), ["mobile"])
    # seq 9 is stored already: the whole batch fails, and the total stays with it.
    with pytest.raises(IntegrityError):
        store.deliveries.add_deliveries(run_id, _deliveries(run_id, range(9, 20)), ["mobile"])
    assert store.runs.get_run(run_id).total == 10
    assert store.deliveries.totals(run_id).total == 10
    store.deliveries.add_deliveries(run_id, _deliveries(run_id, range(10, 20)), ["mobile"])
    assert store.runs.get_run(run_id).total == 20 == store.deliveries.totals(run_id).total


def test_add_deliveries_to_a_missing_run(store: Store):
    with pytest.raises(NotFound):
        store.deliveries.add_deliveries(42, _deliveries(42, range(2)), [])


def test_claim_pending_takes_lowest_seq_pending_and_commits(store: Store, url: str, key: bytes):
    run_id = _run(store)
    rows = _deliveries(run_id, range(10))
    rows[1].stage = Stage.DONE  # e.g. a row rejected at ingest
    rows[1].status = ResultStatus.ERROR
    store.deliveries.add_deliveries(run_id, rows, ["mobile"])

    claimed = store.deliveries.claim_pending(run_id, 4, NOW)
    assert [o.seq for o in claimed] == [0, 2, 3, 4]
    first = claimed[0]
    assert (first.run_id, first.to, first.body, first.segments) == (
        run_id,
        "+15550000000",
        "Hi Zoë 0",
        1,
    )
    assert first.claimed_at == NOW

    # Another process (here: a second Store on the same database) sees them POSTING.
    other = open_store(url, secret_box=SecretBox(key))
    try:
        seen = {d.seq: d for d in other.deliveries.iter_deliveries(run_id, stages={Stage.POSTING})}
        assert sorted(seen) == [0, 2, 3, 4]
        assert seen[0].claimed_at == NOW
        assert [o.seq for o in other.deliveries.claim_pending(run_id, 100, NOW)] == [5, 6, 7, 8, 9]
    finally:
        other.close()
    assert store.deliveries.claim_pending(run_id, 4, NOW) == []


def test_concurrent_claims_never_overlap(url: str, key: bytes):
    stores = [open_store(url, secret_box=SecretBox(key)) for _ in range(3)]
    run_id = _run(stores[0])
    stores[0].deliveries.add_deliveries(run_id, _deliveries(run_id, range(300)), ["mobile"])
    claimed: list[list[int]] = [[] for _ in stores]

    def worker(i: int) -> None:
        while batch := stores[i].deliveries.claim_pending(run_id, 7, NOW):
            claimed[i].extend(o.seq for o in batch)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in stores:
        s.close()
    every = [seq for seqs in claimed for seq in seqs]
    assert sorted(every) == list(range(300))


def test_save_progress_writes_fields_but_never_touches_done(store: Store):
    run_id = _run(store)
    store.deliveries.add_deliveries(run_id, _deliveries(run_id, range(3)), ["mobile"])
    store.deliveries.claim_pending(run_id, 3, NOW)
    later = NOW + timedelta(seconds=5)
    store.deliveries.save_progress(
        [
            Progress(run_id, 0, Stage.TRACKING, twilio_status="queued", message_sid="SM0"),
            Progress(
                run_id,
                1,
                Stage.DONE,
                ResultStatus.UNDELIVERED,
                "undelivered",
                "SM1",
                30003,
                "Unreachable destination handset",
                polls=4,
                updated_at=later,
            ),
        ]
    )
    # A late, stale write for the finished delivery must not reopen it.
    store.deliveries.save_progress(
        [
            Progress(run_id, 1, Stage.TRACKING, twilio_status="sent", message_sid="SM1"),
            Progress(run_id, 2, Stage.DONE, ResultStatus.ERROR, error_message="timeout"),
        ]
    )
    d0, d1, d2 = store.deliveries.iter_deliveries(run_id)
    assert (d0.stage, d0.twilio_status, d0.message_sid) == (Stage.TRACKING, "queued", "SM0")
    assert d0.updated_at is not None and d0.updated_at.tzinfo is UTC  # stamped on save
    assert (d1.stage, d1.status, d1.twilio_status, d1.error_code, d1.polls, d1.updated_at) == (
        Stage.DONE,
        ResultStatus.UNDELIVERED,
        "undelivered",
        30003,
        4,
        later,
    )
    assert d1.error_message == "Unreachable destination handset"
    assert (d2.stage, d2.status, d2.error_message) == (Stage.DONE, ResultStatus.ERROR, "timeout")
    assert d2.row["first_name"] == "Zoë 2"  # the input row is never rewritten


def test_iter_deliveries_streams_in_order_across_batches(store: Store):
    run_id = _run(store)
    other_run = _run(store)
    for start in range(0, 50, 10):  # several ingest batches
        store.deliveries.add_deliveries(
            run_id, _deliveries(run_id, range(start, start + 10)), ["mobile"]
        )
    store.deliveries.add_deliveries(other_run, _deliveries(other_run, range(5)), ["mobile"])
    store.deliveries.claim_pending(run_id, 12, NOW)

    assert [d.seq for d in store.deliveries.iter_deliveries(run_id, batch=7)] == list(range(50))
    for batch in (1, 5, 12, 13, 1000):
        posting = store.deliveries.iter_deliveries(run_id, stages=[Stage.POSTING], batch=batch)
        assert [d.seq for d in posting] == list(range(12))
    both = store.deliveries.iter_deliveries(run_id, stages={Stage.PENDING, Stage.POSTING}, batch=4)
    assert [d.seq for d in both] == list(range(50))
    assert list(store.deliveries.iter_deliveries(run_id, stages=[])) == []
    slim = list(store.deliveries.iter_deliveries(run_id, with_row=False, batch=9))
    assert len(slim) == 50 and all(d.row == {} and d.to for d in slim)


def test_iter_deliveries_is_lazy_and_survives_writes_between_pages(store: Store):
    run_id = _run(store)
    store.deliveries.add_deliveries(run_id, _deliveries(run_id, range(20)), ["mobile"])
    stream = store.deliveries.iter_deliveries(run_id, stages=[Stage.PENDING], batch=5)
    first = [next(stream).seq for _ in range(5)]
    store.deliveries.claim_pending(run_id, 10, NOW)  # 0..9 leave PENDING while we are mid-stream
    assert first + [d.seq for d in stream] == [
        0,
        1,
        2,
        3,
        4,
        10,
        11,
        12,
        13,
        14,
        15,
        16,
        17,
        18,
        19,
    ]


def test_totals(store: Store):
    run_id = _run(store)
    store.deliveries.add_deliveries(run_id, _deliveries(run_id, range(10)), ["mobile"])
    assert store.deliveries.totals(run_id).pending == 10
    store.deliveries.claim_pending(run_id, 6, NOW)
    store.deliveries.save_progress(
        [
            Progress(run_id, 0, Stage.DONE, ResultStatus.DELIVERED),
            Progress(run_id, 1, Stage.DONE, ResultStatus.DELIVERED),
            Progress(run_id, 2, Stage.DONE, ResultStatus.FAILED),
            Progress(run_id, 3, Stage.TRACKING, message_sid="SM3"),
        ]
    )
    t = store.deliveries.totals(run_id)
    assert (t.total, t.pending, t.posting, t.tracking, t.done) == (10, 4, 2, 1, 3)
    assert t.by_status == {"delivered": 2, "failed": 1}
    assert store.deliveries.totals(run_id + 1).total == 0


# -- opening -------------------------------------------------------------------------------


def test_reopening_keeps_data_and_records_schema_version(store: Store, url: str, key: bytes):
    store.catalogue.add_connection(_connection())
    store.close()
    again = open_store(url, secret_box=SecretBox(key))
    try:
        assert again.catalogue.get_connection("main").auth_token == TOKEN
    finally:
        again.close()
    engine = create_engine(url)
    with engine.connect() as conn:
        version = conn.execute(select(meta.c.value).where(meta.c.key == "schema_version"))
        assert version.scalar() == str(SCHEMA_VERSION)
    with engine.begin() as conn:
        conn.execute(update(meta).values(value="999"))
    engine.dispose()
    with pytest.raises(SchemaTooNew, match="upgrade smslink"):
        open_store(url, secret_box=SecretBox(key))


def test_sqlite_file_is_private_and_tuned(tmp_path: Path, key: bytes):
    db = tmp_path / "deep" / "er" / "smslink.db"
    store = open_store(f"sqlite:///{db}", secret_box=SecretBox(key))
    try:
        assert stat.S_IMODE(db.stat().st_mode) == 0o600
        with store._engine.connect() as conn:  # the pragmas are what the docstring promises
            pragma = {
                name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
            }
        assert pragma == {
            "journal_mode": "wal",
            "synchronous": 1,
            "foreign_keys": 1,
            "busy_timeout": 30000,
        }
    finally:
        store.close()


def test_deliveries_are_indexed_for_claims_and_callbacks():
    names = {ix.name: [c.name for c in ix.columns] for ix in deliveries.indexes}
    assert names["ix_deliveries_run_stage_seq"] == ["run_id", "stage", "seq"]
    assert names["ix_deliveries_message_sid"] == ["message_sid"]


# -- run leases: one worker per run ------------------------------------------------------


def test_run_lease_admits_one_holder_until_it_expires_or_is_released(store: Store):
    run_id = _run(store)
    now = datetime.now(UTC)
    later = now + timedelta(seconds=60)
    assert store.runs.acquire_run(run_id, "a", until=later, now=now, replacing=None) is None
    assert store.runs.acquire_run(run_id, "b", until=later, now=now, replacing=None) == "a"
    assert store.runs.acquire_run(run_id, "a", until=later, now=now, replacing=None) is None
    assert store.runs.renew_run(run_id, "a", until=later) is True
    assert store.runs.renew_run(run_id, "b", until=later) is False
    assert store.runs.run_lease(run_id)[0] == "a"
    # Expired: anyone may take it.
    assert (
        store.runs.acquire_run(run_id, "b", until=later, now=later + timedelta(1), replacing=None)
        is None
    )
    # A holder proven dead may be replaced before expiry.
    assert store.runs.acquire_run(run_id, "c", until=later, now=now, replacing="b") is None
    store.runs.release_run(run_id, "c")
    assert store.runs.run_lease(run_id) == (None, None)
    assert store.runs.acquire_run(run_id, "d", until=later, now=now, replacing=None) is None
