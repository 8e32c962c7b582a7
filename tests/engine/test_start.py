"""Starting a run (engine/start.py): everything is checked first and a refusal stores
nothing; a started run keeps a snapshot of its touchpoint and its audience's facts; a repeat
of the same send is refused with the earlier run and a remedy, unless asked for again; a
run's results can be sent elsewhere, checked like a new run's. Real SQLite store and files."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from smslink.audience.readers import AudienceError
from smslink.domain.errors import Action, InvalidInput
from smslink.domain.models import AudienceFacts, RunSnapshot, RunState
from smslink.engine import InputError, RepeatedSend, RunRequest, Timings, start_run
from smslink.engine.start import redirect_results
from smslink.store import Store
from tests.engine.campaign import add_touchpoint, started_run, write_audience

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def audience(store: Store, tmp_path: Path) -> Path:
    add_touchpoint(store)
    return write_audience(tmp_path / "audience.csv", 3)


def test_a_missing_mapped_column_is_refused_and_nothing_is_stored(
    store: Store, tmp_path: Path
) -> None:
    add_touchpoint(store)
    audience = tmp_path / "audience.csv"
    audience.write_text("first,phone\nAnn,+12125550101\n", encoding="utf-8")

    with pytest.raises(InputError) as refused:
        start_run(store, RunRequest("t", audience, tmp_path / "results.csv"))

    assert str(refused.value) == (
        "audience.csv has no column 'name' (touchpoint 't' maps to it); "
        "its columns are: first, phone"
    )
    assert store.runs.list_runs() == []


def test_an_audience_with_only_a_header_is_refused_and_nothing_is_stored(
    store: Store, tmp_path: Path
) -> None:
    add_touchpoint(store)
    audience = write_audience(tmp_path / "audience.csv", 0)

    with pytest.raises(InputError, match=r"audience\.csv has no records"):
        start_run(store, RunRequest("t", audience, tmp_path / "results.csv"))

    assert store.runs.list_runs() == []


def test_results_onto_the_audience_itself_are_refused_and_nothing_is_stored(
    store: Store, audience: Path
) -> None:
    before = audience.read_bytes()

    with pytest.raises(AudienceError, match="is the audience file itself") as refused:
        start_run(store, RunRequest("t", audience, audience, overwrite=True))

    assert isinstance(refused.value, InvalidInput)  # "change what you gave"
    assert store.runs.list_runs() == []
    assert audience.read_bytes() == before


def test_a_started_run_keeps_its_touchpoint_and_audience_facts(
    store: Store, tmp_path: Path
) -> None:
    add_touchpoint(store)
    audience = write_audience(tmp_path / "audience.csv", 3, delimiter=";")
    content = audience.read_bytes()

    run_id = start_run(store, RunRequest("t", audience, tmp_path / "results.csv", encoding="utf-8"))

    run = store.runs.get_run(run_id)
    sha256 = hashlib.sha256(content).hexdigest()
    assert run.snapshot == RunSnapshot(
        message="Hi <Name>",
        phone_column="phone",
        mapping={"Name": "name"},
        region="US",
        encoding="utf-8",
        overwrite=False,
        fingerprint=f"t\n{sha256}",
        audience=AudienceFacts(
            size=len(content), sha256=sha256, records=3, delimiter=";", excel=False
        ),
    )
    assert (run.state, run.total, run.columns) == (RunState.CREATED, 0, ["name", "phone"])
    assert (run.input_path, run.output_path) == (
        str(audience.resolve()),
        str((tmp_path / "results.csv").resolve()),
    )
    assert store.deliveries.totals(run_id).total == 0  # nothing read or sent yet


def test_a_repeated_send_is_refused_with_the_earlier_run_and_a_remedy(
    store: Store, tmp_path: Path, audience: Path
) -> None:
    first = start_run(store, RunRequest("t", audience, tmp_path / "first.csv"))

    with pytest.raises(RepeatedSend) as repeated:
        start_run(store, RunRequest("t", audience, tmp_path / "second.csv"))

    assert repeated.value.earlier.id == first
    remedy = repeated.value.remedy
    assert remedy is not None and remedy.action is Action.SEND_AGAIN
    message = str(repeated.value)
    assert f"in run {first} (created, started " in message
    assert "resume it rather than start another" in message
    assert "every recipient would get the message twice" in message
    assert "--" not in message  # the engine names no flag
    assert [r.id for r in store.runs.list_runs()] == [first]


def test_a_send_asked_for_again_is_not_refused(
    store: Store, tmp_path: Path, audience: Path
) -> None:
    first = start_run(store, RunRequest("t", audience, tmp_path / "first.csv"))

    again = start_run(store, RunRequest("t", audience, tmp_path / "second.csv", again=True))

    assert again != first
    assert [r.id for r in store.runs.list_runs()] == [again, first]


def test_a_completed_send_may_be_repeated_once_the_repeat_window_has_passed(
    store: Store, tmp_path: Path, audience: Path
) -> None:
    first = start_run(store, RunRequest("t", audience, tmp_path / "first.csv"), now=T0)
    store.runs.update_run(first, state=RunState.COMPLETED)
    two_hours_later = T0 + timedelta(hours=2)

    with pytest.raises(RepeatedSend, match="completed; it started 2026-03-01 09:00 UTC"):
        start_run(store, RunRequest("t", audience, tmp_path / "2.csv"), now=two_hours_later)
    later = start_run(
        store,
        RunRequest("t", audience, tmp_path / "2.csv"),
        timings=Timings(repeat_window=timedelta(hours=1)),
        now=two_hours_later,
    )

    assert later != first


def test_redirected_results_are_checked_and_then_written_to_the_new_path(
    store: Store, tmp_path: Path
) -> None:
    run_id = started_run(store, tmp_path, 3)
    run = store.runs.get_run(run_id)
    someone_elses = tmp_path / "notes.csv"
    someone_elses.write_text("not,results\n1,2\n", encoding="utf-8")

    with pytest.raises(AudienceError, match="is the audience file itself"):
        redirect_results(store, run_id, Path(run.input_path), overwrite=True)
    with pytest.raises(AudienceError, match="exists and is not a smslink results file") as foreign:
        redirect_results(store, run_id, someone_elses)
    assert foreign.value.remedy is not None
    assert foreign.value.remedy.action is Action.OVERWRITE_OUTPUT
    assert store.runs.get_run(run_id).output_path == run.output_path  # refused: unchanged

    (tmp_path / "sub").mkdir()
    moved = redirect_results(store, run_id, tmp_path / "sub" / ".." / "moved.csv")
    assert moved.output_path == str((tmp_path / "moved.csv").resolve())  # stored resolved
    assert moved.snapshot.overwrite is False
    replacing = redirect_results(store, run_id, someone_elses, overwrite=True)
    assert replacing.output_path == str(someone_elses.resolve())
    assert replacing.snapshot.overwrite is True  # the run may replace that file when done
    assert replacing.snapshot.audience == run.snapshot.audience  # the rest is kept
    assert store.runs.get_run(run_id) == replacing
