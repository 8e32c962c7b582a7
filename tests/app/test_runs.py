"""Runs through the front door: start, execute, show and export, with timings passed in."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from smslink.app import NotFound, RunCounters, RunRequest, Smslink
from smslink.domain.errors import Action, InvalidInput
from smslink.domain.models import RunState, Touchpoint
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


# -- what the web face needs: uploads, pages of records, problems, sending again -------------


@pytest.fixture
def uploads(smslink: Smslink, tmp_path: Path) -> Path:
    folder = tmp_path / "uploads"
    smslink.runs.uploads_folder = folder
    return folder


def _records(tmp_path: Path, phones: list[str], name: str = "b.csv") -> Path:
    path = tmp_path / name
    rows = "".join(f"N{i},{phone}\n" for i, phone in enumerate(phones))
    path.write_text("name,phone\n" + rows, encoding="utf-8")
    return path


def _run(smslink: Smslink, path: Path, output: Path) -> int:
    run_id = smslink.runs.start(RunRequest("hello", path, output))
    asyncio.run(smslink.runs.execute(run_id, RunCounters()))
    return run_id


def test_uploads_get_a_private_folder_each_and_a_safe_name(smslink: Smslink, uploads: Path) -> None:
    first = smslink.runs.new_upload("../My list (1).CSV")
    second = smslink.runs.new_upload("people.jsonl")

    assert first.path.name == "My_list_1.csv" and first.folder.parent == uploads
    assert first.folder != second.folder and first.folder.stat().st_mode & 0o777 == 0o700
    assert first.results_path == first.folder / "My_list_1-results.csv"
    first.path.write_text("name,phone\n", encoding="utf-8")
    assert smslink.runs.upload(first.id) == first
    for wrong in ("../etc", second.id):  # not an id; an upload whose file was never written
        with pytest.raises(NotFound):
            smslink.runs.upload(wrong)
    with pytest.raises(InvalidInput) as refused:
        smslink.runs.new_upload("audience.xlsx")
    assert refused.value.problems[0].field == "file"
    smslink.runs.discard_upload(first)
    assert not first.folder.exists()


def test_a_preview_names_the_columns_a_csv_lacks(
    smslink: Smslink, base_url: str, tmp_path: Path
) -> None:
    smslink.connections.add(connection(base_url))
    smslink.touchpoints.add(touchpoint())
    path = tmp_path / "c.csv"
    path.write_text("name,mobile\nAnn,+12125550001\n", encoding="utf-8")

    with pytest.raises(InvalidInput) as refused:
        smslink.runs.preview("hello", path)

    [problem] = refused.value.problems
    assert problem.field == "file" and "no column 'phone'" in problem.message
    good = smslink.runs.preview("hello", _records(tmp_path, ["+12125550001", "x"]))
    assert (good.totals.messages, good.totals.problem_count) == (1, 1)


def test_records_are_read_a_page_at_a_time_with_filters(
    smslink: Smslink, base_url: str, tmp_path: Path
) -> None:
    smslink.connections.add(connection(base_url))
    smslink.touchpoints.add(touchpoint())
    phones = [f"+1212555{i:04d}" if i % 5 else "bad" for i in range(23)]
    run_id = _run(smslink, _records(tmp_path, phones), tmp_path / "out.csv")

    first = smslink.runs.deliveries(run_id, per_page=10)
    last = smslink.runs.deliveries(run_id, page=3, per_page=10)
    past = smslink.runs.deliveries(run_id, page=9, per_page=10)
    problems = smslink.runs.deliveries(run_id, status="problems")
    found = smslink.runs.deliveries(run_id, text=" n12 ")

    assert (first.matching, first.pages, len(first.deliveries)) == (23, 3, 10)
    assert [d.seq for d in last.deliveries] == [20, 21, 22]
    assert past.deliveries == [] and past.pages == 3
    assert [d.seq for d in problems.deliveries] == [0, 5, 10, 15, 20]
    assert [d.row["name"] for d in found.deliveries] == ["N12"]
    with pytest.raises(InvalidInput) as refused:
        smslink.runs.deliveries(run_id, status="lost")
    assert refused.value.problems[0].field == "status"
    with pytest.raises(NotFound):
        smslink.runs.deliveries(run_id + 1)
    timeline = smslink.runs.progress_over_time(run_id)
    assert sum(n for _, _, n in timeline.points) == 23 and timeline.buckets <= 60


def test_the_problem_records_are_exported_alone(
    smslink: Smslink, base_url: str, tmp_path: Path
) -> None:
    smslink.connections.add(connection(base_url))
    smslink.touchpoints.add(touchpoint())
    run_id = _run(
        smslink,
        _records(tmp_path, ["+12125550001", "x", "+12125550002", "=1+2"]),
        tmp_path / "o.csv",
    )

    summary = smslink.runs.export_problems(run_id, tmp_path / "problems.csv")

    lines = (tmp_path / "problems.csv").read_text(encoding="utf-8").splitlines()
    assert summary.rows == 2 and len(lines) == 3
    assert lines[1].startswith("N1,x,") and lines[2].startswith("N3,'=1+2,")  # formula-safe


def test_sending_again_follows_the_rule_and_starts_a_web_run(
    smslink: Smslink, tmp_path: Path, uploads: Path
) -> None:
    from smslink.app.touchpoints import TouchpointChanges
    from smslink.simulator import SimulatorConfig, run_in_thread

    simulated = SimulatorConfig(
        auth_token="app-token", queued_s=0.02, sending_s=0.02, sent_s=0.02, undelivered_share=0.5
    )
    with run_in_thread(simulated) as base_url:
        smslink.connections.add(connection(base_url))
        smslink.touchpoints.add(Touchpoint("hello", "sim", "Hi <Name>!", "phone", {"Name": "name"}))
        phones = [f"+1212555{i:04d}" for i in range(40)]
        phones += ["+15005550009", "+15005550004", "+15005550003", "+12125559999"]
        path = _records(tmp_path, phones)
        text = path.read_text(encoding="utf-8").replace("N43,", ",")  # an empty <Name>
        path.write_text(text + 'x,"1,2",extra\n', encoding="utf-8")  # and a malformed one
        run_id = _run(smslink, path, tmp_path / "out.csv")
        before = smslink.runs.plan_again(run_id)
        smslink.touchpoints.update("hello", TouchpointChanges(message="Hello again!", mapping={}))

        plan = smslink.runs.plan_again(run_id)
        new_id = smslink.runs.start_again(run_id, origin="web")
        with pytest.raises(InvalidInput) as repeat:
            smslink.runs.start_again(run_id, origin="web")
        asyncio.run(smslink.runs.execute(new_id, RunCounters()))

    reasons: dict[str, int] = {}
    for group, count in plan.groups.items():
        reasons[group.reason.value] = reasons.get(group.reason.value, 0) + count
    undelivered = smslink.runs.show(run_id).totals.by_status["undelivered"]
    retried = reasons["temporary"]
    assert reasons["recipient"] == 1 and reasons["opted_out"] == 1  # 21614, 21610
    assert reasons["region"] == 1 and reasons["touchpoint_fixed"] == 1  # 21408; <Name> gone
    assert reasons["not_fixable"] == 1  # the malformed record
    assert retried + reasons.get("lasting", 0) == undelivered and retried > 0
    assert plan.chosen == retried + 2
    assert {g.reason.value for g in before.groups} >= {"still_fails"}  # <Name> still empty
    new = smslink.runs.show(new_id)
    assert new.run.origin == "web" and new.totals.total == plan.chosen
    assert Path(new.run.input_path).parent.parent == uploads
    assert repeat.value.remedy is not None and repeat.value.remedy.action is Action.SEND_AGAIN
    assert smslink.runs.start_again(run_id, again=True) == new_id + 1


def test_only_a_completed_run_is_sent_again(
    smslink: Smslink, base_url: str, tmp_path: Path, uploads: Path
) -> None:
    smslink.connections.add(connection(base_url))
    smslink.touchpoints.add(touchpoint())
    run_id = smslink.runs.start(RunRequest("hello", _audience(tmp_path), tmp_path / "o.csv"))

    with pytest.raises(InvalidInput, match="only a completed run"):
        smslink.runs.plan_again(run_id)
    asyncio.run(smslink.runs.execute(run_id, RunCounters()))
    with pytest.raises(InvalidInput, match="no record worth sending again"):
        smslink.runs.start_again(run_id)
    assert not any(uploads.iterdir())  # the refused audience is not left behind
