"""Runs through the front door: start, execute, show and export, with timings passed in."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from smslink.app import RunCounters, RunRequest, Smslink
from smslink.domain.errors import Action, InvalidInput
from smslink.domain.models import RunState
from tests.app.conftest import connection, touchpoint


def _audience(tmp_path: Path, n: int = 3) -> Path:
    path = tmp_path / "a.csv"
    rows = "".join(f"N{i},+1212555{i:04d}\n" for i in range(n))
    path.write_text("name,phone\n" + rows, encoding="utf-8")
    return path


def test_a_run_is_started_executed_shown_and_exported(
    smslink: Smslink, base_url: str, tmp_path: Path
) -> None:
    smslink.connections.add(connection(base_url))
    smslink.touchpoints.add(touchpoint())
    run_id = smslink.runs.start(RunRequest("hello", _audience(tmp_path), tmp_path / "out.csv"))
    assert smslink.runs.show(run_id).run.state is RunState.CREATED

    run = asyncio.run(smslink.runs.execute(run_id, RunCounters()))

    details = smslink.runs.show(run_id)
    assert run.state is RunState.COMPLETED and details.totals.by_status == {"delivered": 3}
    assert [d.run.id for d in smslink.runs.list()] == [run_id]
    summary = smslink.runs.export(run_id, tmp_path / "again.jsonl")
    assert (summary.rows, summary.unfinished) == (3, 0)
    assert run.snapshot.audience is not None and run.snapshot.audience.records == 3


def test_a_repeat_is_refused_with_the_remedy_to_send_again(
    smslink: Smslink, base_url: str, tmp_path: Path
) -> None:
    smslink.connections.add(connection(base_url))
    smslink.touchpoints.add(touchpoint())
    source = _audience(tmp_path)
    smslink.runs.start(RunRequest("hello", source, tmp_path / "1.csv"))

    with pytest.raises(InvalidInput) as refused:
        smslink.runs.start(RunRequest("hello", source, tmp_path / "2.csv"))

    assert refused.value.remedy is not None and refused.value.remedy.action is Action.SEND_AGAIN
    assert smslink.runs.start(RunRequest("hello", source, tmp_path / "2.csv", again=True)) == 2


def test_a_dry_run_stores_nothing(smslink: Smslink, base_url: str, tmp_path: Path) -> None:
    smslink.connections.add(connection(base_url))
    smslink.touchpoints.add(touchpoint())

    totals = smslink.runs.dry_run("hello", _audience(tmp_path), tmp_path / "dry.csv")

    assert totals.messages == 3 and smslink.runs.list() == []
    assert (tmp_path / "dry.csv").read_text(encoding="utf-8").count("ready") == 3
