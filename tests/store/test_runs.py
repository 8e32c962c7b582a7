"""Runs and their leases (store/runs.py), on a real SQLite file and a real PostgreSQL schema.
Conflicts at run creation (same output, repeated send) are in test_run_conflicts.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from smslink.domain.models import Progress, ResultStatus, RunSnapshot, RunState, Stage
from smslink.store import LeaseHolder, LeaseTaken, NotFound, Store
from tests.store.records import new_run

# The url, key and store fixtures are in conftest.py.


def test_a_run_reads_back_as_created_and_updates_only_the_fields_given(store: Store):
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


def test_a_missing_run_is_not_found_and_runs_list_newest_first(store: Store):
    with pytest.raises(NotFound):
        store.runs.get_run(999)
    with pytest.raises(NotFound):
        store.runs.update_run(999, state=RunState.SENDING)
    with pytest.raises(NotFound):
        store.runs.update_run(999)
    ids = [new_run(store) for _ in range(5)]
    assert [r.id for r in store.runs.list_runs()] == ids[::-1]
    assert [r.id for r in store.runs.list_runs(limit=2)] == ids[:-3:-1]


# -- run leases: one worker per run ------------------------------------------------------


def test_a_change_of_a_runs_state_in_its_holders_name_lands_only_while_nobody_took_it(
    store: Store,
):
    """`update_run` with a holder (a stop request cleared too): written while the run's lease
    names that process, even expired and unrenewed; refused with LeaseTaken and nothing
    changed once another process took the run over (its state is the successor's)."""
    now = datetime.now(UTC)
    run_id = new_run(store)
    runs = store.runs
    assert runs.acquire_run(run_id, "paused", until=now, now=now, replacing=None) is None
    paused = LeaseHolder(run_id, "paused")
    runs.request_stop(run_id, at=now)
    # Lapsed, not taken: written.
    runs.update_run(run_id, state=RunState.SENDING, stop_request_cleared=True, holder=paused)
    assert runs.get_run(run_id).state is RunState.SENDING
    assert not runs.stop_requested(run_id)
    later = now + timedelta(seconds=1)
    assert runs.acquire_run(run_id, "successor", until=later, now=later, replacing=None) is None
    runs.request_stop(run_id, at=later)  # the successor's user asks it to stop

    with pytest.raises(LeaseTaken):
        runs.update_run(run_id, state=RunState.INTERRUPTED, queued=True, holder=paused)
    with pytest.raises(LeaseTaken):
        runs.update_run(run_id, stop_request_cleared=True, holder=paused)

    run = runs.get_run(run_id)
    assert (run.state, run.queued) == (RunState.SENDING, False)
    assert runs.stop_requested(run_id)
    runs.update_run(run_id, state=RunState.STOPPED, holder=LeaseHolder(run_id, "successor"))
    assert runs.get_run(run_id).state is RunState.STOPPED
    with pytest.raises(NotFound):
        runs.update_run(999, state=RunState.SENDING, holder=paused)
    with pytest.raises(ValueError):  # a part's lease does not fence the run's row
        runs.update_run(run_id, state=RunState.SENDING, holder=LeaseHolder(run_id, "w", 1))


def test_run_lease_admits_one_holder_until_it_expires_or_is_released(store: Store):
    run_id = new_run(store)
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


def test_taking_a_run_back_from_the_workers_fences_the_lapsed_holders_of_its_parts(
    store: Store,
):
    """`runs resume` of a queued run: refused, changing nothing, while a worker's part
    lease runs; once every lease has lapsed, they all pass to the resuming process in the
    same transaction that unqueues the run, so a paused worker that wakes can neither
    renew its part nor write in its name."""
    run_id = new_run(store)
    runs = store.runs
    runs.update_run(run_id, queued=True)
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    for part, owner, until in [
        (0, "w0", now - timedelta(seconds=1)),
        (1, "w1", now + timedelta(seconds=5)),
    ]:
        assert (
            runs.acquire_part(
                run_id, part, owner, until=until, now=now - timedelta(minutes=1), replacing=None
            )
            is None
        )

    assert runs.take_back_parts(run_id, "resumer", now=now) == ["w1"]
    assert runs.get_run(run_id).queued is True
    assert runs.part_lease(run_id, 0)[0] == "w0"  # the refusal took nothing

    later = now + timedelta(seconds=10)  # w1's lease has lapsed too
    assert runs.take_back_parts(run_id, "resumer", now=later) == []
    assert runs.get_run(run_id).queued is False
    assert [runs.part_lease(run_id, p)[0] for p in (0, 1)] == ["resumer", "resumer"]
    assert not runs.renew_part(run_id, 0, "w0", until=later + timedelta(minutes=1))
    with pytest.raises(LeaseTaken):
        store.deliveries.save_progress(
            [Progress(run_id, 0, Stage.DONE, ResultStatus.ERROR, error_message="x")],
            holder=LeaseHolder(run_id, "w1", 1),
        )
    # Expired at once: a worker may take a part's lease, and then finds the run unqueued.
    assert (
        runs.acquire_part(
            run_id,
            0,
            "w2",
            until=later + timedelta(minutes=1),
            now=later + timedelta(seconds=1),
            replacing=None,
        )
        is None
    )
