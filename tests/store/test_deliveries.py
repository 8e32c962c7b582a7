"""A run's deliveries (store/deliveries.py): ingest with the run's total, claim before the
POST, forward-only progress, streaming back in order, counting; on a real SQLite file and a
real PostgreSQL schema."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError, OperationalError

from smslink.domain.models import Delivery, Progress, ResultStatus, Stage
from smslink.domain.parts import part_of
from smslink.store import LeaseHolder, LeaseTaken, NotFound, Store, open_store
from smslink.store.deliveries import UNFINISHED
from smslink.store.runs import holds_lease
from smslink.store.schema import deliveries as deliveries_table
from smslink.store.secrets import SecretBox
from tests.pg import PG_URL
from tests.store.records import NOW, deliveries, new_run

# The url, key and store fixtures are in conftest.py.


# -- add_deliveries ------------------------------------------------------------------------


def test_add_deliveries_round_trips_and_sets_total(store: Store):
    run_id = new_run(store)
    batch = deliveries(run_id, range(3))
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
    run_id = new_run(store)
    store.deliveries.add_deliveries(run_id, deliveries(run_id, range(10)), ["mobile"])
    # seq 9 is stored already: the whole batch fails, and the total stays with it.
    with pytest.raises(IntegrityError):
        store.deliveries.add_deliveries(run_id, deliveries(run_id, range(9, 20)), ["mobile"])
    assert store.runs.get_run(run_id).total == 10
    assert store.deliveries.totals(run_id).total == 10
    store.deliveries.add_deliveries(run_id, deliveries(run_id, range(10, 20)), ["mobile"])
    assert store.runs.get_run(run_id).total == 20 == store.deliveries.totals(run_id).total


#: What COPY's text format and array literals must escape: tabs, newlines, backslashes,
#: its NULL marker, quotes, braces and commas, and text beyond ASCII.
HOSTILE_TEXT = 'a\tb\nc\\d \\N "q" {x,y} NULL \r Zoë 😀'


def test_hostile_text_is_stored_and_updated_exactly(store: Store):
    """Values go in by COPY and are updated over arrays on PostgreSQL (executemany on
    SQLite): every character a field can hold comes back as it went in, an empty string
    stays empty and the text NULL or \\N stays text, in text and varchar columns alike."""
    run_id = new_run(store)
    batch = deliveries(run_id, range(3))
    batch[0].row = {"mobile": HOSTILE_TEXT, "first_name": "\\N"}
    batch[0].body = HOSTILE_TEXT
    batch[1].identity = {"id": HOSTILE_TEXT}
    batch[2].body = ""
    batch[2].to = "\\N"  # varchar
    store.deliveries.add_deliveries(run_id, batch, ["mobile"])
    assert list(store.deliveries.iter_deliveries(run_id)) == batch
    store.deliveries.claim_pending(run_id, 3, NOW)
    sid = 'SM\t\\N,{x}"NULL'  # no sid Twilio gives, in a varchar column
    store.deliveries.save_progress(
        [
            Progress(run_id, 0, Stage.DONE, ResultStatus.FAILED, "failed", sid, 30008,
                     HOSTILE_TEXT, polls=2, updated_at=NOW),
            Progress(run_id, 1, Stage.TRACKING, twilio_status="sent", message_sid=None,
                     error_message=""),
            Progress(run_id, 2, Stage.TRACKING, twilio_status="queued", message_sid="NULL",
                     error_message="NULL"),
        ]
    )  # fmt: skip
    d0, d1, d2 = store.deliveries.iter_deliveries(run_id)
    assert (d0.stage, d0.status, d0.twilio_status, d0.message_sid, d0.polls) == (
        Stage.DONE,
        ResultStatus.FAILED,
        "failed",
        sid,
        2,
    )
    assert (d0.error_message, d0.error_code, d0.updated_at, d0.body, d0.row) == (
        HOSTILE_TEXT,
        30008,
        NOW,
        HOSTILE_TEXT,
        batch[0].row,
    )
    assert (d1.stage, d1.twilio_status, d1.message_sid, d1.error_code, d1.error_message) == (
        Stage.TRACKING,
        "sent",
        None,
        None,
        "",
    )
    assert d1.identity == {"id": HOSTILE_TEXT}
    assert (d2.to, d2.body, d2.message_sid, d2.error_message) == ("\\N", "", "NULL", "NULL")


def test_a_server_lost_mid_insert_fails_the_batch_and_the_next_one_goes_in(
    store: Store, url: str, monkeypatch: pytest.MonkeyPatch
):
    """The server drops the connection while a batch is being inserted (on PostgreSQL,
    just before its COPY): the batch fails as a database error naming that cause, the
    total stays, and the next attempt gets a working connection and stores it."""
    if not url.startswith("postgresql"):
        pytest.skip("COPY, and a server to lose, are PostgreSQL's")
    run_id = new_run(store)
    copy_rows = store.deliveries._copy_rows

    def server_lost_first(conn, *args):  # type: ignore[no-untyped-def]
        pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        other = create_engine(PG_URL)
        with other.connect() as killer:
            killer.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)})")
        other.dispose()
        monkeypatch.setattr(store.deliveries, "_copy_rows", copy_rows)  # once
        copy_rows(conn, *args)

    monkeypatch.setattr(store.deliveries, "_copy_rows", server_lost_first)
    with pytest.raises(OperationalError) as lost:
        store.deliveries.add_deliveries(run_id, deliveries(run_id, range(3)), ["mobile"])
    assert lost.value.connection_invalidated
    assert "terminating connection" in str(lost.value.orig)
    assert store.runs.get_run(run_id).total == 0
    store.deliveries.add_deliveries(run_id, deliveries(run_id, range(3)), ["mobile"])
    assert store.runs.get_run(run_id).total == 3 == store.deliveries.totals(run_id).total


def test_add_deliveries_to_a_missing_run(store: Store):
    with pytest.raises(NotFound):
        store.deliveries.add_deliveries(42, deliveries(42, range(2)), [])


# -- claim_pending -------------------------------------------------------------------------


def test_claim_pending_takes_lowest_seq_pending_and_commits(store: Store, url: str, key: bytes):
    run_id = new_run(store)
    rows = deliveries(run_id, range(10))
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


def test_a_claim_of_one_part_takes_only_that_part_in_seq_order(store: Store):
    run_id = new_run(store)
    rows = deliveries(run_id, range(40))
    store.deliveries.add_deliveries(run_id, rows, ["mobile"])
    part = part_of(rows[0].to)
    of_part = [d.seq for d in rows if part_of(d.to) == part]
    assert 1 < len(of_part) < len(rows)  # the phones fall into more than one part

    claimed = store.deliveries.claim_pending(run_id, 100, NOW, part=part)

    assert [o.seq for o in claimed] == of_part
    assert all(o.claimed_at == NOW for o in claimed)
    posting = store.deliveries.iter_deliveries(run_id, stages={Stage.POSTING})
    assert [d.seq for d in posting] == of_part  # committed, and nothing of the other parts
    assert store.deliveries.claim_pending(run_id, 100, NOW, part=part) == []


def test_holds_sid_answers_for_sids_stored_in_this_run_only(store: Store):
    run_id, other_run = new_run(store), new_run(store)
    for run in (run_id, other_run):
        store.deliveries.add_deliveries(run, deliveries(run, range(2)), ["mobile"])
        store.deliveries.claim_pending(run, 2, NOW)
    written = store.deliveries.save_progress(
        [Progress(run_id, 0, Stage.TRACKING, twilio_status="queued", message_sid="SM0")]
    )

    assert written == ["SM0"]
    assert store.deliveries.holds_sid(run_id, "SM0")
    assert not store.deliveries.holds_sid(other_run, "SM0")
    assert not store.deliveries.holds_sid(run_id, "SM1")


def test_concurrent_claims_never_overlap(url: str, key: bytes):
    stores = [open_store(url, secret_box=SecretBox(key)) for _ in range(3)]
    run_id = new_run(stores[0])
    stores[0].deliveries.add_deliveries(run_id, deliveries(run_id, range(300)), ["mobile"])
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


def test_deliveries_are_indexed_for_claims_and_callbacks():
    names = {ix.name: [c.name for c in ix.columns] for ix in deliveries_table.indexes}
    assert names["ix_deliveries_run_stage_seq"] == ["run_id", "stage", "seq"]
    assert names["ix_deliveries_message_sid"] == ["message_sid"]
    # Workers claim by part, on PostgreSQL only (version 11: SQLite has no workers).
    assert names["ix_deliveries_run_part_stage_seq"] == ["run_id", "part", "stage", "seq"]


# -- save_progress -------------------------------------------------------------------------


def test_save_progress_writes_fields_but_never_touches_done(store: Store):
    run_id = new_run(store)
    store.deliveries.add_deliveries(run_id, deliveries(run_id, range(3)), ["mobile"])
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


def test_a_batch_stored_in_a_lease_holders_name_lands_only_while_no_other_process_took_it(
    store: Store,
):
    """Reading the audience in the run's lease holder's name: stored while the lease names
    that process, even after it expired unrenewed; refused whole, with LeaseTaken and the
    total unmoved, once another process took the run over (it reads on from the total)."""
    run_id = new_run(store)
    runs = store.runs
    assert (
        runs.acquire_run(
            run_id, "paused", until=NOW - timedelta(seconds=1), now=NOW, replacing=None
        )
        is None
    )
    paused = LeaseHolder(run_id, "paused")
    store.deliveries.add_deliveries(run_id, deliveries(run_id, range(3)), ["mobile"], holder=paused)
    until = NOW + timedelta(minutes=1)
    assert runs.acquire_run(run_id, "successor", until=until, now=NOW, replacing=None) is None

    with pytest.raises(LeaseTaken):
        store.deliveries.add_deliveries(
            run_id, deliveries(run_id, range(3, 6)), ["mobile"], holder=paused
        )

    assert runs.get_run(run_id).total == 3
    assert store.deliveries.totals(run_id).total == 3
    successor = LeaseHolder(run_id, "successor")
    store.deliveries.add_deliveries(
        run_id, deliveries(run_id, range(3, 6)), ["mobile"], holder=successor
    )
    assert runs.get_run(run_id).total == 6


@pytest.mark.parametrize("part", [None, 3])
def test_a_write_fenced_by_a_lease_lands_only_while_no_other_process_took_it(
    store: Store, part: int | None
):
    """A write in the name of a run's (or part's) lease holder: written while the lease
    names that process, even after it expired unrenewed (nobody took it); refused whole,
    with LeaseTaken, once another process holds it."""
    run_id = new_run(store)
    store.deliveries.add_deliveries(run_id, deliveries(run_id, range(3)), ["mobile"])
    store.deliveries.claim_pending(run_id, 3, NOW)
    runs = store.runs

    def acquire(owner: str, until: datetime, replacing: str | None = None) -> str | None:
        if part is None:
            return runs.acquire_run(run_id, owner, until=until, now=NOW, replacing=replacing)
        return runs.acquire_part(run_id, part, owner, until=until, now=NOW, replacing=replacing)

    def done(seq: int) -> Progress:
        return Progress(run_id, seq, Stage.DONE, ResultStatus.ERROR, error_message="x")

    assert acquire("paused", until=NOW - timedelta(seconds=1)) is None  # expired already
    paused = LeaseHolder(run_id, "paused", part)
    store.deliveries.save_progress([done(0)], holder=paused)  # lapsed, not taken: written
    assert acquire("successor", until=NOW + timedelta(minutes=1)) is None
    with pytest.raises(LeaseTaken):
        store.deliveries.save_progress([done(1), done(2)], holder=paused)
    store.deliveries.save_progress([done(2)], holder=LeaseHolder(run_id, "successor", part))
    stages = [d.stage for d in store.deliveries.iter_deliveries(run_id, with_row=False)]
    assert stages == [Stage.DONE, Stage.POSTING, Stage.DONE]
    # The successor's lease of this row fences nothing of another row (the run's own
    # lease, or another part's), which it does not hold.
    other_part = None if part is not None else 5
    with pytest.raises(LeaseTaken):
        store.deliveries.save_progress(
            [done(1)], holder=LeaseHolder(run_id, "successor", other_part)
        )


_WAITING_ON_A_LOCK = (
    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
    "AND query LIKE 'UPDATE runs SET lease_owner%'"
)


def test_a_process_taking_a_lease_over_waits_for_the_fenced_write_in_progress(
    store: Store, url: str
):
    """PostgreSQL: the fence locks the lease's row FOR SHARE, so a successor's takeover
    waits until the old holder's write commits (and then settles what it wrote), never
    slips in between the check and the write."""
    if not url.startswith("postgresql"):
        pytest.skip("SQLite writes one transaction at a time: nothing can slip in")
    run_id = new_run(store)
    assert store.runs.acquire_run(run_id, "old", until=NOW, now=NOW, replacing=None) is None
    took_over = threading.Event()

    def successor() -> None:
        later = NOW + timedelta(minutes=5)
        store.runs.acquire_run(run_id, "new", until=later, now=later, replacing=None)
        took_over.set()

    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            assert holds_lease(conn, LeaseHolder(run_id, "old"), postgres=True)
            thread = threading.Thread(target=successor)
            thread.start()
            with engine.connect() as watcher:  # the successor is seen waiting on a lock
                deadline = time.monotonic() + 10
                while not watcher.execute(text(_WAITING_ON_A_LOCK)).scalar():
                    assert time.monotonic() < deadline, "the takeover never waited"
                    time.sleep(0.05)
            assert not took_over.is_set()
        assert took_over.wait(10)
        thread.join()
    finally:
        engine.dispose()
    assert store.runs.run_lease(run_id)[0] == "new"


def test_updates_of_one_delivery_in_a_batch_leave_the_last_state_and_every_event(store: Store):
    """Accepted and final in one batch: one row written with the final state, an event
    for each change on the way; a stale status later in the batch does not move the
    stored one backwards, and nothing after the final is applied."""
    run_id = new_run(store)
    store.deliveries.add_deliveries(run_id, deliveries(run_id, range(2)), ["mobile"])
    store.deliveries.claim_pending(run_id, 2, NOW)
    store.deliveries.save_progress(
        [
            Progress(run_id, 0, Stage.TRACKING, twilio_status="queued", message_sid="SM0"),
            Progress(run_id, 1, Stage.TRACKING, twilio_status="sent", message_sid="SM1"),
            Progress(run_id, 1, Stage.TRACKING, twilio_status="sending", message_sid="SM1"),
            Progress(run_id, 0, Stage.DONE, ResultStatus.DELIVERED, "delivered", "SM0", polls=1),
            Progress(run_id, 0, Stage.TRACKING, twilio_status="sent", message_sid="SM0"),
        ]
    )
    d0, d1 = store.deliveries.iter_deliveries(run_id)
    assert (d0.stage, d0.status, d0.twilio_status, d0.message_sid, d0.polls) == (
        Stage.DONE,
        ResultStatus.DELIVERED,
        "delivered",
        "SM0",
        1,
    )
    assert (d1.stage, d1.twilio_status, d1.message_sid) == (Stage.TRACKING, "sent", "SM1")
    events = [(e.seq, e.twilio_status, e.status) for e in store.events.after(0, 10)]
    assert events == [
        (0, "queued", None),
        (1, "sent", None),
        (0, "delivered", ResultStatus.DELIVERED),
    ]


def test_a_later_status_keeps_the_stored_sid_and_a_new_sid_replaces_it(store: Store):
    """SQLite writes rows whose sid is already stored without SETting it (the sid index is
    left alone); whichever statement a row takes, what is stored and found by sid is the
    same as writing every column."""
    run_id = new_run(store)
    store.deliveries.add_deliveries(run_id, deliveries(run_id, range(4)), ["mobile"])
    store.deliveries.claim_pending(run_id, 4, NOW)
    store.deliveries.save_progress(
        [
            Progress(run_id, 0, Stage.TRACKING, twilio_status="queued", message_sid="SM0"),
            Progress(run_id, 1, Stage.TRACKING, twilio_status="queued", message_sid="SM1"),
            Progress(run_id, 3, Stage.TRACKING, twilio_status="queued", message_sid="SM3"),
        ]
    )
    written = store.deliveries.save_progress(
        [
            Progress(run_id, 0, Stage.DONE, ResultStatus.DELIVERED, "delivered", "SM0", polls=2),
            # The same delivery twice in one batch, both times with a sid not stored yet.
            Progress(run_id, 1, Stage.TRACKING, twilio_status="sending", message_sid="SM1b"),
            Progress(run_id, 1, Stage.TRACKING, twilio_status="sent", message_sid="SM1b"),
            Progress(run_id, 2, Stage.TRACKING, twilio_status="queued", message_sid="SM2"),
            Progress(run_id, 3, Stage.TRACKING, twilio_status="sent", message_sid="SM3", polls=1),
        ]
    )

    assert sorted(written) == ["SM0", "SM1b", "SM2", "SM3"]
    d0, d1, d2, d3 = store.deliveries.iter_deliveries(run_id)
    assert (d0.stage, d0.status, d0.twilio_status, d0.message_sid, d0.polls) == (
        Stage.DONE,
        ResultStatus.DELIVERED,
        "delivered",
        "SM0",
        2,
    )
    assert (d1.twilio_status, d1.message_sid) == ("sent", "SM1b")
    assert (d2.twilio_status, d2.message_sid) == ("queued", "SM2")
    assert (d3.stage, d3.twilio_status, d3.message_sid, d3.polls) == (
        Stage.TRACKING,
        "sent",
        "SM3",
        1,
    )
    for sid in ("SM0", "SM1b", "SM2", "SM3"):
        assert store.deliveries.holds_sid(run_id, sid), sid
    assert not store.deliveries.holds_sid(run_id, "SM1")


# -- iter_deliveries -----------------------------------------------------------------------


def test_iter_deliveries_streams_in_order_across_batches(store: Store):
    run_id = new_run(store)
    other_run = new_run(store)
    for start in range(0, 50, 10):  # several ingest batches
        store.deliveries.add_deliveries(
            run_id, deliveries(run_id, range(start, start + 10)), ["mobile"]
        )
    store.deliveries.add_deliveries(other_run, deliveries(other_run, range(5)), ["mobile"])
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
    run_id = new_run(store)
    store.deliveries.add_deliveries(run_id, deliveries(run_id, range(20)), ["mobile"])
    stream = store.deliveries.iter_deliveries(run_id, stages=[Stage.PENDING], batch=5)
    first = [next(stream).seq for _ in range(5)]
    store.deliveries.claim_pending(run_id, 10, NOW)  # 0..9 leave PENDING while we are mid-stream
    assert first + [d.seq for d in stream] == [0, 1, 2, 3, 4, *range(10, 20)]


def test_iter_results_reads_each_outcome_as_iter_deliveries_does(store: Store):
    """The results file's own read (driver SQL, no claim, body or identity) gives every
    delivery's row and outcome exactly as the general read does, in order, page by page,
    and only of its run: pending, tracking, final and refused alike."""
    run_id = new_run(store)
    other_run = new_run(store)
    store.deliveries.add_deliveries(run_id, deliveries(run_id, range(12)), ["mobile"])
    store.deliveries.add_deliveries(other_run, deliveries(other_run, range(3)), ["mobile"])
    store.deliveries.claim_pending(run_id, 8, NOW)
    later = NOW + timedelta(seconds=5, microseconds=123456)
    store.deliveries.save_progress(
        [
            Progress(run_id, 0, Stage.TRACKING, twilio_status="sent", message_sid="SM0"),
            Progress(
                run_id,
                1,
                Stage.DONE,
                ResultStatus.FAILED,
                "failed",
                "SM1",
                30008,
                "Unknown error",
                polls=2,
                updated_at=later,
            ),
            Progress(run_id, 2, Stage.DONE, ResultStatus.ERROR, error_message="refused"),
            Progress(run_id, 3, Stage.DONE, ResultStatus.DELIVERED, "delivered", "SM3"),
        ]
    )
    fields = ("seq", "row", "to", "segments", "stage", "status", "twilio_status")
    fields += ("message_sid", "error_code", "error_message", "updated_at")

    def outcome(d: Delivery) -> tuple[object, ...]:
        return tuple(getattr(d, f) for f in fields)

    expected = [outcome(d) for d in store.deliveries.iter_deliveries(run_id)]
    for batch in (1, 5, 12, 1000):
        got = [outcome(d) for d in store.deliveries.iter_results(run_id, batch=batch)]
        assert got == expected
    assert expected[1][-1] == later and later.tzinfo is UTC
    assert [d.seq for d in store.deliveries.iter_results(other_run)] == [0, 1, 2]


# -- totals --------------------------------------------------------------------------------


def test_totals_count_by_stage_and_by_result_status(store: Store):
    run_id = new_run(store)
    store.deliveries.add_deliveries(run_id, deliveries(run_id, range(10)), ["mobile"])
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


# -- page, count, final_over_time: the run page's table and chart ----------------------------


def _finished(store: Store, run_id: int, n: int) -> None:
    """`n` deliveries: every 3rd delivered, every 3rd+1 failed with an error message, the
    rest left PENDING; each finished one a second after the one before."""
    store.deliveries.add_deliveries(run_id, deliveries(run_id, range(n)), ["mobile"])
    store.deliveries.claim_pending(run_id, n, NOW)
    store.deliveries.save_progress(
        [
            Progress(
                run_id,
                i,
                Stage.DONE,
                ResultStatus.DELIVERED if i % 3 == 0 else ResultStatus.FAILED,
                error_message=None if i % 3 == 0 else f"Carrier said no_{i}%",
                updated_at=NOW + timedelta(seconds=i),
            )
            for i in range(n)
            if i % 3 != 2
        ]
    )


def test_page_filters_by_status_and_text_and_pages_by_offset_or_key(store: Store):
    run_id = new_run(store)
    _finished(store, run_id, 30)
    other = new_run(store)
    _finished(store, other, 5)

    first = store.deliveries.page(run_id, limit=4)
    second = store.deliveries.page(run_id, offset=4, limit=4)
    after = store.deliveries.page(run_id, after_seq=27, limit=10)
    failed = store.deliveries.page(run_id, statuses=["failed"], limit=100)
    unfinished = store.deliveries.page(run_id, statuses=[UNFINISHED], limit=100)
    either = store.deliveries.page(run_id, statuses=["delivered", UNFINISHED], limit=100)

    assert [d.seq for d in first] == [0, 1, 2, 3] and first[0].row["first_name"] == "Zoë 0"
    assert [d.seq for d in second] == [4, 5, 6, 7]
    assert [d.seq for d in after] == [28, 29]
    assert [d.seq for d in failed] == [i for i in range(30) if i % 3 == 1]
    assert {d.stage for d in unfinished} == {Stage.POSTING} and len(unfinished) == 10
    assert len(either) == 20
    assert store.deliveries.page(run_id, statuses=[]) == []
    assert store.deliveries.count(run_id) == 30
    assert store.deliveries.count(run_id, statuses=["failed"]) == 10
    assert store.deliveries.count(run_id, statuses=[]) == 0


def test_text_matches_phone_row_and_error_ignoring_case_and_wildcards(store: Store):
    run_id = new_run(store)
    _finished(store, run_id, 30)

    by_phone = store.deliveries.page(run_id, text="+15550000012")
    by_row = store.deliveries.page(run_id, text="ZOë 2")  # ASCII letters fold on both
    by_error = store.deliveries.page(run_id, text="CARRIER SAID NO_1")
    literal = store.deliveries.count(run_id, text="no_4%")

    assert [d.seq for d in by_phone] == [12]
    assert [d.seq for d in by_row] == [2, *range(20, 30)]
    assert [d.seq for d in by_error] == [1, 10, 13, 16, 19]
    assert literal == 1  # "%" and "_" are plain characters, not wildcards
    assert store.deliveries.count(run_id, text="no_%") == 0
    assert store.deliveries.count(run_id, statuses=["failed"], text="no_1") == 5


def test_final_over_time_counts_by_bucket_and_status(store: Store):
    run_id = new_run(store)
    _finished(store, run_id, 12)  # final at NOW + i seconds, i not 2, 5, 8, 11

    buckets = store.deliveries.final_over_time(run_id, start=NOW, width_s=4)
    late_start = store.deliveries.final_over_time(
        run_id, start=NOW + timedelta(seconds=6), width_s=100
    )

    assert buckets == [
        (0, "delivered", 2),  # 0, 3
        (0, "failed", 1),  # 1
        (1, "delivered", 1),  # 6
        (1, "failed", 2),  # 4, 7
        (2, "delivered", 1),  # 9
        (2, "failed", 1),  # 10
    ]
    assert late_start == [(0, "delivered", 4), (0, "failed", 4)]  # earlier ones in bucket 0


def test_a_release_gives_back_only_its_own_claim(store: Store):
    """A process that lost its lease (paused while another took its work over) releases
    a delivery claimed again since: the release is refused, so the new claim's POST is
    the only one. Releasing its own claim works, read back from the store or as claimed;
    a delivery past its POST is never released."""
    run_id = new_run(store)
    store.deliveries.add_deliveries(run_id, deliveries(run_id, range(4)), ["mobile"])
    stale = store.deliveries.claim_pending(run_id, 4, NOW)  # the paused process's claims
    again = NOW + timedelta(seconds=30)
    # The new holder settled 0 and 1 (proven absent) and claimed them again.
    store.deliveries.save_progress(
        [Progress(run_id, o.seq, Stage.PENDING, claimed_at=o.claimed_at) for o in stale[:2]]
    )
    assert [o.seq for o in store.deliveries.claim_pending(run_id, 2, again)] == [0, 1]
    store.deliveries.save_progress([Progress(run_id, 2, Stage.TRACKING, message_sid="SM2")])

    # The paused process wakes and releases all four of its claims.
    store.deliveries.save_progress(
        [Progress(run_id, o.seq, Stage.PENDING, claimed_at=o.claimed_at) for o in stale]
    )
    stages = {d.seq: d.stage for d in store.deliveries.iter_deliveries(run_id)}
    assert stages == {0: Stage.POSTING, 1: Stage.POSTING, 2: Stage.TRACKING, 3: Stage.PENDING}
    # Its own claim, as read back from the store (how a resumed run settles), releases.
    [posting] = [d for d in store.deliveries.iter_deliveries(run_id) if d.seq == 0]
    store.deliveries.save_progress(
        [Progress(run_id, 0, Stage.PENDING, claimed_at=posting.claimed_at)]
    )
    assert {d.seq: d.stage for d in store.deliveries.iter_deliveries(run_id)}[0] is Stage.PENDING
