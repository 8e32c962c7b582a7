"""A run's results file (engine/results.py): one row per audience record, in input order,
read back from the store; records not final yet say `unfinished` and why, records of an
unfinished run not read yet say so; never written over the audience; written the way the
audience was (its delimiter, a BOM for Excel). Real SQLite store and files."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import pytest

from smslink.audience.readers import AudienceError, open_audience
from smslink.domain.models import Progress, ResultStatus, RunState, Stage
from smslink.engine import UNFINISHED, RunRequest, export_results, start_run
from smslink.engine.counters import RunCounters
from smslink.engine.ingest import ingest_batches
from smslink.engine.prepare import Recipe
from smslink.engine.results import write_results
from smslink.store import Store
from tests.engine.campaign import TOUCHPOINT, add_touchpoint, phone, started_run, write_audience

RECIPE = Recipe.from_touchpoint(TOUCHPOINT, "US")
WHEN = datetime(2026, 3, 1, 9, 30, 15, tzinfo=UTC)


def _ingest(store: Store, run_id: int, *, batches: int | None = None, size: int = 250) -> None:
    """Store the audience (or only its first `batches` batches, as a stopped run has)."""
    run = store.runs.get_run(run_id)
    with open_audience(Path(run.input_path)) as reader:
        stored = ingest_batches(store, run_id, reader, RECIPE, RunCounters(), batch_size=size)
        for n, _ in enumerate(stored, start=1):
            if n == batches:
                stored.close()
                return
    store.runs.update_run(run_id, audience_complete=True)


def _sid(seq: int) -> str:
    return f"SM{seq:032x}"


def _finish(store: Store, run_id: int, seqs: list[int], status: ResultStatus) -> None:
    store.deliveries.save_progress(
        [
            Progress(run_id, seq, Stage.DONE, status, str(status), _sid(seq), updated_at=WHEN)
            for seq in seqs
        ]
    )


def _rows(path: Path, delimiter: str = ",") -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as file:
        return list(csv.DictReader(file, delimiter=delimiter))


def test_a_completed_run_exports_one_row_per_record_in_input_order(
    store: Store, tmp_path: Path
) -> None:
    run_id = started_run(store, tmp_path, 6)
    _ingest(store, run_id)
    store.deliveries.claim_pending(run_id, 100, WHEN)
    # Results come back in any order (the slow ones last); the file is in the audience's.
    _finish(store, run_id, [5, 3, 1], ResultStatus.DELIVERED)
    _finish(store, run_id, [4, 0], ResultStatus.UNDELIVERED)
    _finish(store, run_id, [2], ResultStatus.SENT)
    store.runs.update_run(run_id, state=RunState.COMPLETED)
    target = tmp_path / "export.csv"

    summary = export_results(store, store.runs.get_run(run_id), target)

    assert (summary.path, summary.rows, summary.unfinished) == (target, 6, 0)
    rows = _rows(target)
    assert [(r["name"], r["phone"], r["to"]) for r in rows] == [
        (f"N{i}", phone(i), phone(i)) for i in range(6)
    ]
    assert [r["status"] for r in rows] == [
        "undelivered",
        "delivered",
        "sent",
        "delivered",
        "undelivered",
        "delivered",
    ]
    assert [r["message_sid"] for r in rows] == [_sid(i) for i in range(6)]
    assert {r["timestamp"] for r in rows} == {"2026-03-01T09:30:15Z"}
    assert {r["segments"] for r in rows} == {"1"}


def test_deliveries_not_done_export_as_unfinished_saying_where_they_are(
    store: Store, tmp_path: Path
) -> None:
    run_id = started_run(store, tmp_path, 4)
    _ingest(store, run_id)
    store.deliveries.claim_pending(run_id, 3, WHEN)  # 0..2 posting, 3 still pending
    store.deliveries.save_progress(
        [Progress(run_id, 1, Stage.TRACKING, twilio_status="sent", message_sid=_sid(1))]
    )
    _finish(store, run_id, [2], ResultStatus.DELIVERED)
    target = tmp_path / "so-far.csv"

    summary = export_results(store, store.runs.get_run(run_id), target)

    assert (summary.rows, summary.unfinished) == (4, 3)
    assert [(r["name"], r["status"], r["error_message"]) for r in _rows(target)] == [
        ("N0", UNFINISHED, "not final yet (posting)"),
        ("N1", UNFINISHED, "not final yet (tracking, Twilio status sent)"),
        ("N2", "delivered", ""),
        ("N3", UNFINISHED, "not final yet (pending)"),
    ]


def test_records_an_unfinished_run_has_not_read_yet_export_as_not_read_yet(
    store: Store, tmp_path: Path
) -> None:
    run_id = started_run(store, tmp_path, 7)
    _ingest(store, run_id, batches=1, size=3)  # stopped after reading 3 of 7
    target = tmp_path / "so-far.csv"

    summary = export_results(store, store.runs.get_run(run_id), target)

    assert (summary.rows, summary.unfinished) == (7, 7)
    rows = _rows(target)
    assert [(r["name"], r["phone"]) for r in rows] == [(f"N{i}", phone(i)) for i in range(7)]
    assert [r["error_message"] for r in rows] == ["not final yet (pending)"] * 3 + [
        "not read yet"
    ] * 4
    assert {r["status"] for r in rows} == {UNFINISHED}
    assert [r["to"] for r in rows[3:]] == [""] * 4  # not prepared: no phone checked yet


def test_unread_records_of_a_changed_audience_cannot_be_told(store: Store, tmp_path: Path) -> None:
    run_id = started_run(store, tmp_path, 7)
    _ingest(store, run_id, batches=1, size=3)
    run = store.runs.get_run(run_id)
    Path(run.input_path).write_text("name,phone\nSomeone,+12125559999\n", encoding="utf-8")
    target = tmp_path / "so-far.csv"

    with pytest.raises(AudienceError, match=f"run {run_id} has read only 3 records"):
        export_results(store, run, target)

    assert not target.exists()  # nothing half-written


def test_results_are_never_exported_over_the_audience(store: Store, tmp_path: Path) -> None:
    run_id = started_run(store, tmp_path, 3)
    _ingest(store, run_id)
    run = store.runs.get_run(run_id)
    audience = Path(run.input_path)
    before = audience.read_bytes()

    for overwrite in (False, True):  # allowing overwrites does not lift it
        with pytest.raises(AudienceError, match="is the audience file itself"):
            export_results(store, run, audience, overwrite=overwrite)

    assert audience.read_bytes() == before


@pytest.mark.parametrize(
    ("delimiter", "bom"),
    [(",", False), (";", True), ("\t", True), (";", False)],
    ids=["comma", "semicolon-excel", "tab-excel", "semicolon-plain"],
)
def test_results_are_written_with_the_audiences_delimiter_and_a_bom_for_excel(
    store: Store, tmp_path: Path, delimiter: str, bom: bool
) -> None:
    add_touchpoint(store)
    audience = write_audience(tmp_path / "audience.csv", 2, delimiter=delimiter, bom=bom)
    run_id = start_run(store, RunRequest("t", audience, tmp_path / "results.csv"))
    facts = store.runs.get_run(run_id).snapshot.audience
    assert facts is not None and (facts.delimiter, facts.excel) == (delimiter, bom)
    _ingest(store, run_id)
    store.deliveries.claim_pending(run_id, 10, WHEN)
    _finish(store, run_id, [0, 1], ResultStatus.DELIVERED)

    path = write_results(store, store.runs.get_run(run_id))

    assert path == tmp_path / "results.csv"
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") is bom
    header = raw.decode("utf-8-sig").splitlines()[0]
    assert header.split(delimiter) == [
        "name",
        "phone",
        "to",
        "status",
        "error_code",
        "error_message",
        "message_sid",
        "segments",
        "timestamp",
    ]
    assert [(r["name"], r["status"]) for r in _rows(path, delimiter)] == [
        ("N0", "delivered"),
        ("N1", "delivered"),
    ]
