"""A touchpoint and an audience file to start runs from, shared by the engine tests that
start runs without sending them (start, ingest, results)."""

from __future__ import annotations

from pathlib import Path

from smslink.audience.readers import open_audience
from smslink.domain.models import Connection, Touchpoint
from smslink.engine import RunRequest, start_run
from smslink.engine.counters import RunCounters
from smslink.engine.ingest import ingest_batches
from smslink.engine.prepare import Recipe
from smslink.store import Store

ACCOUNT = "AC" + "ca3a1900000000000000000000000001"
TOKEN = "campaign-token"
SENDER = "+15005550006"
TOUCHPOINT = Touchpoint("t", "c", "Hi <Name>", "phone", {"Name": "name"})


def add_touchpoint(
    store: Store,
    *,
    base_url: str | None = None,
    poll_interval_ms: int | None = None,
    concurrency: int | None = None,
) -> Touchpoint:
    """Connection "c" and touchpoint "t" ("Hi <Name>" to the `phone` column)."""
    connection = Connection("c", ACCOUNT, TOKEN, from_number=SENDER)
    if base_url is not None:
        connection.base_url = base_url
    if poll_interval_ms is not None:
        connection.poll_interval_ms = poll_interval_ms
    if concurrency is not None:
        connection.concurrency = concurrency
    store.catalogue.add_connection(connection)
    store.catalogue.add_touchpoint(TOUCHPOINT)
    return TOUCHPOINT


def phone(i: int) -> str:
    return f"+1212555{i:04d}"


def write_audience(path: Path, records: int, *, delimiter: str = ",", bom: bool = False) -> Path:
    """`records` people N0, N1, ... with phones +12125550000, +12125550001, ..."""
    rows = [f"name{delimiter}phone"] + [f"N{i}{delimiter}{phone(i)}" for i in range(records)]
    path.write_text(("\ufeff" if bom else "") + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def started_run(store: Store, folder: Path, records: int, **request: object) -> int:
    """A run of touchpoint "t" to a fresh audience of `records` people, stored, not sent."""
    add_touchpoint(store)
    audience = write_audience(folder / "audience.csv", records)
    return start_run(store, RunRequest("t", audience, folder / "results.csv", **request))  # type: ignore[arg-type]


def store_audience(store: Store, run_id: int) -> None:
    """Store every record of the run's audience and mark it read, as a run does before
    its last sends."""
    run = store.runs.get_run(run_id)
    recipe = Recipe.from_touchpoint(TOUCHPOINT, "US")
    with open_audience(Path(run.input_path)) as reader:
        for _ in ingest_batches(store, run_id, reader, recipe, RunCounters()):
            pass
    store.runs.update_run(run_id, audience_complete=True)
