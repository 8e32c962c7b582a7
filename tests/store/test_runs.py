"""Runs and their leases (store/runs.py), on a real SQLite file and a real PostgreSQL schema.
Conflicts at run creation (same output, repeated send) are in test_run_conflicts.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from smslink.domain.models import RunSnapshot, RunState
from smslink.store import NotFound, Store
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
