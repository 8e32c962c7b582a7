"""Creating a run refuses what would go wrong later: a second send of the same audience
(by fingerprint) and two unfinished runs writing one results file, checked and inserted
under one lock on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from smslink.domain.models import RunSnapshot, RunState
from smslink.store import RunConflict, Store

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(hours=24)


def _create(store: Store, output: str, fingerprint: str | None, now: datetime = NOW) -> int:
    return store.runs.create_run(
        touchpoint="t",
        connection="c",
        input_path="in.csv",
        output_path=output,
        snapshot=RunSnapshot("Hi", "phone", fingerprint=fingerprint),
        fingerprint=fingerprint,
        repeat_since=now - DAY,
        now=now,
    ).id


def test_an_unfinished_run_keeps_its_results_file_to_itself(store: Store) -> None:
    first = _create(store, "out.csv", None)

    with pytest.raises(RunConflict) as conflict:
        _create(store, "out.csv", None)

    assert (conflict.value.run.id, conflict.value.reason) == (first, "output")
    store.runs.update_run(first, state=RunState.COMPLETED)
    _create(store, "out.csv", None)  # a finished run's file may be written again


def test_the_same_fingerprint_is_refused_while_unfinished_or_within_the_window(
    store: Store,
) -> None:
    first = _create(store, "1.csv", "t\nabc")

    with pytest.raises(RunConflict) as unfinished:
        _create(store, "2.csv", "t\nabc", now=NOW + 30 * DAY)  # unfinished: at any age
    store.runs.update_run(first, state=RunState.COMPLETED)
    with pytest.raises(RunConflict) as recent:
        _create(store, "2.csv", "t\nabc", now=NOW + DAY - timedelta(minutes=1))

    assert unfinished.value.reason == recent.value.reason == "repeat"
    assert recent.value.run.id == first
    _create(store, "2.csv", "t\nabc", now=NOW + DAY + timedelta(minutes=1))  # past the window
    _create(store, "3.csv", "t\nother", now=NOW + DAY)  # another audience
    _create(store, "4.csv", None, now=NOW + DAY)  # asked for again: no fingerprint given


def test_sends_started_at_the_same_instant_create_one_run(store: Store) -> None:
    start = threading.Barrier(6)
    created: list[int] = []
    refused: list[RunConflict] = []

    def send(n: int) -> None:
        start.wait()
        try:
            created.append(_create(store, f"{n}.csv", "t\nsame"))
        except RunConflict as conflict:
            refused.append(conflict)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(created) == 1 and len(refused) == 5
    assert {c.run.id for c in refused} == set(created)
