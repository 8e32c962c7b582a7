"""The results file written ahead while a run is tracked: only finished rows, in input
order, nothing at the output path before the end, and in the end the same file as one
written all at once. Real SQLite, real files."""

from __future__ import annotations

import asyncio
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from smslink.domain.models import Progress, ResultStatus, Stage
from smslink.engine.results import ResultsAhead, export_results, write_results
from smslink.engine.start import redirect_results
from smslink.store import Store
from tests.engine.campaign import started_run, store_audience

RECORDS = 1_200


def _claimed_run(store: Store, tmp_path: Path) -> int:
    """A run whose RECORDS deliveries are all stored and claimed (POSTING)."""
    run_id = started_run(store, tmp_path, RECORDS)
    store_audience(store, run_id)
    store.deliveries.claim_pending(run_id, RECORDS, datetime.now(UTC))
    return run_id


def _finish(store: Store, run_id: int, seqs: range) -> None:
    store.deliveries.save_progress(
        [
            Progress(
                run_id,
                seq,
                Stage.DONE,
                status=ResultStatus.DELIVERED if seq % 3 else ResultStatus.UNDELIVERED,
                twilio_status="delivered" if seq % 3 else "undelivered",
                message_sid=f"SM{seq:032x}",
                error_code=None if seq % 3 else 30003,
                error_message=None if seq % 3 else "Unreachable destination handset",
            )
            for seq in seqs
        ]
    )


def _temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_rows_are_written_ahead_in_order_and_the_file_equals_one_written_at_once(
    store: Store, tmp_path: Path
) -> None:
    run_id = _claimed_run(store, tmp_path)
    ahead = ResultsAhead(store, run_id, chunk=100)
    _finish(store, run_id, range(0, 700))
    _finish(store, run_id, range(701, 900))  # seq 700 is not final yet: it holds the rest

    asyncio.run(ahead.catch_up())

    output = tmp_path / "results.csv"
    assert not output.exists()  # nothing at the output path until the end
    assert len(_temporaries(tmp_path)) == 1
    assert ahead.rows_written == 700  # rows 0-699: seq 700 holds the rest back

    _finish(store, run_id, range(700, 701))
    _finish(store, run_id, range(900, RECORDS))
    write_results(store, store.runs.get_run(run_id), ahead)

    at_once = tmp_path / "at-once.csv"
    export_results(store, store.runs.get_run(run_id), at_once)  # the same rows at once
    assert output.read_bytes() == at_once.read_bytes()
    lines = output.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1 + RECORDS
    assert lines[1].startswith("N0,") and lines[-1].startswith(f"N{RECORDS - 1},")
    assert _temporaries(tmp_path) == []


def test_a_run_that_stops_leaves_no_file_and_no_temporary(store: Store, tmp_path: Path) -> None:
    run_id = _claimed_run(store, tmp_path)
    ahead = ResultsAhead(store, run_id)
    _finish(store, run_id, range(0, 300))
    asyncio.run(ahead.catch_up())
    assert len(_temporaries(tmp_path)) == 1

    ahead.abort()

    assert _temporaries(tmp_path) == []
    assert not (tmp_path / "results.csv").exists()


def test_nothing_is_written_ahead_before_the_audience_is_read(store: Store, tmp_path: Path) -> None:
    run_id = _claimed_run(store, tmp_path)
    store.runs.update_run(run_id, audience_complete=False)
    _finish(store, run_id, range(0, 300))
    ahead = ResultsAhead(store, run_id)

    asyncio.run(ahead.catch_up())

    assert _temporaries(tmp_path) == []
    assert (
        ahead.finish(store.runs.get_run(run_id)) is False
    )  # no head start: write_results writes it all


def test_a_refused_output_path_leaves_the_whole_file_to_the_end(
    store: Store, tmp_path: Path
) -> None:
    run_id = _claimed_run(store, tmp_path)
    (tmp_path / "results.csv").write_text("someone's notes\n", encoding="utf-8")
    _finish(store, run_id, range(RECORDS))
    ahead = ResultsAhead(store, run_id)

    asyncio.run(ahead.catch_up())  # refused: not a results file of ours

    assert _temporaries(tmp_path) == []
    assert ahead.finish(store.runs.get_run(run_id)) is False
    with pytest.raises(Exception, match="results"):
        write_results(store, store.runs.get_run(run_id), ahead)
    assert (tmp_path / "results.csv").read_text(encoding="utf-8") == "someone's notes\n"


def test_a_head_start_for_an_output_redirected_meanwhile_is_dropped(
    store: Store, tmp_path: Path
) -> None:
    run_id = _claimed_run(store, tmp_path)
    ahead = ResultsAhead(store, run_id)
    _finish(store, run_id, range(0, 300))
    asyncio.run(ahead.catch_up())
    elsewhere = tmp_path / "elsewhere.jsonl"
    redirect_results(store, run_id, elsewhere)  # `runs resume --output` from another shell
    _finish(store, run_id, range(300, RECORDS))

    write_results(store, store.runs.get_run(run_id), ahead)

    assert not (tmp_path / "results.csv").exists()
    assert len(elsewhere.read_text(encoding="utf-8").splitlines()) == RECORDS
    assert _temporaries(tmp_path) == []


def test_temporaries_of_killed_processes_are_removed_and_live_ones_kept(
    store: Store, tmp_path: Path
) -> None:
    run_id = _claimed_run(store, tmp_path)
    finished = subprocess.Popen(["true"])
    finished.wait()  # a pid that no process has now
    killed = tmp_path / f".results.csv.{finished.pid}.0badc0de.tmp"
    alive = tmp_path / f".results.csv.{os.getppid()}.0badc0de.tmp"
    other = tmp_path / f".notes.csv.{finished.pid}.0badc0de.tmp"
    for leftover in (killed, alive, other):
        leftover.write_text("phone\n+12125550000\n", encoding="utf-8")
    _finish(store, run_id, range(10))

    asyncio.run(ResultsAhead(store, run_id).catch_up())

    assert not killed.exists()  # its process is gone: nobody will finish or remove it
    assert alive.exists() and other.exists()  # a live process's, another file's
