"""A run as the run pages and the runs API follow it: its numbers now (live from this
service's executor when it sends the run, else from the store), the rate and time left, the
Server-Sent Events stream, the timeline for the chart, the results download, and resuming
or sending again in this service."""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import time
from collections import deque
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import FileResponse, StreamingResponse
from starlette.background import BackgroundTask

from smslink.app import Smslink
from smslink.domain.errors import InvalidInput
from smslink.domain.models import Run, RunState
from smslink.web.i18n import _, translated
from smslink.web.run_words import STATUS_ORDER
from smslink.web.runner import ORIGIN, RunExecutor

#: How often the event stream reports while a run is active (at least once a second).
EVENT_EVERY_S = 0.5
#: An event stream ends after this long and the browser reconnects at once: a service
#: that is stopping is never held up by a page left open.
STREAM_LIFETIME_S = 15.0
#: Seconds of samples behind the rate and the time left.
RATE_WINDOW_S = 10.0


def progress_of(
    app: Smslink, runner: RunExecutor, run: Run, totals: Any | None = None
) -> dict[str, Any]:
    """A run's numbers now: from the live counters when this service is sending it, else
    from the store. `records` is the audience's size (known from the check before the
    start), `read` how many are stored, `sent` how many Twilio accepted, `final` how many
    have their final result, by status in `by_status`."""
    counters = runner.counters(run.id)
    records = run.snapshot.audience.records if run.snapshot.audience else run.total
    if counters is not None:
        read, sent, final = counters.ingested, counters.posted, counters.done
        by_status = {k: int(v) for k, v in counters.by_status.items() if v}
    else:
        totals = totals if totals is not None else app.runs.show(run.id).totals
        by_status = dict(totals.by_status)
        read, final = totals.total, totals.done
        sent = totals.tracking + totals.done - by_status.get("error", 0)
    records = max(records, read)
    problems = sum(by_status.get(s, 0) for s in ("sent", "undelivered", "failed", "error"))
    return {
        "run": run.id,
        "state": str(run.state),
        "here": counters is not None,
        "active": counters is not None or run.state is RunState.SENDING,
        "records": records,
        "read": read,
        "sent": sent,
        "final": final,
        "percent": round(100 * final / records, 1) if records else 100.0,
        "by_status": by_status,
        "problems": problems,
        "retryable": sum(by_status.get(s, 0) for s in ("undelivered", "failed", "error")),
        "error": translated(run.error) if run.error else None,
        "at": time.time(),
        "rate": None,
        "eta_s": None,
    }


class RateMeter:
    """Messages sent per second and the time left, from the samples of the last
    `RATE_WINDOW_S` seconds."""

    def __init__(self) -> None:
        self._samples: deque[tuple[float, int, int]] = deque()

    def add(self, progress: dict[str, Any]) -> None:
        now = time.monotonic()
        self._samples.append((now, progress["sent"], progress["final"]))
        while self._samples and now - self._samples[0][0] > RATE_WINDOW_S:
            self._samples.popleft()
        first, last = self._samples[0], self._samples[-1]
        elapsed = last[0] - first[0]
        if elapsed < 1.5 or not progress["active"]:
            return
        sent_rate = (last[1] - first[1]) / elapsed
        final_rate = (last[2] - first[2]) / elapsed
        progress["rate"] = round(sent_rate, 1)
        left = progress["records"] - progress["final"]
        pace = final_rate if final_rate > 0 else sent_rate
        progress["eta_s"] = round(left / pace) if pace > 0 else None


async def event_stream(
    request: Request, app: Smslink, runner: RunExecutor, run_id: int
) -> StreamingResponse:
    """The run's progress as Server-Sent Events: an `progress` event every
    `EVENT_EVERY_S` while the run is active, then one `end` event with the final numbers.
    Each stream lasts at most `STREAM_LIFETIME_S`; the browser reconnects by itself."""
    app.runs.get(run_id)  # NotFound before the stream starts

    async def stream() -> AsyncIterator[str]:
        meter = RateMeter()
        started = time.monotonic()
        yield "retry: 500\n\n"
        while True:
            progress = await asyncio.to_thread(_progress_now, app, runner, run_id)
            meter.add(progress)
            if not progress["active"]:
                yield _event("end", progress)
                return
            yield _event("progress", progress)
            if time.monotonic() - started > STREAM_LIFETIME_S or await request.is_disconnected():
                return
            await asyncio.sleep(EVENT_EVERY_S)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def _progress_now(app: Smslink, runner: RunExecutor, run_id: int) -> dict[str, Any]:
    return progress_of(app, runner, app.runs.get(run_id))


def _event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def timeline_of(app: Smslink, run_id: int) -> dict[str, Any]:
    """The run's final results over time, cumulative by status at the end of each step."""
    timeline = app.runs.progress_over_time(run_id)
    steps: list[dict[str, int]] = [{} for _ in range(max(1, timeline.buckets))]
    for bucket, status, count in timeline.points:
        if bucket >= len(steps):
            steps.extend({} for _ in range(bucket - len(steps) + 1))
        steps[bucket][status] = steps[bucket].get(status, 0) + count
    now = time.time()
    elapsed = max(0, int(now - timeline.start.timestamp()))
    running: dict[str, int] = {}
    points = []
    for index, step in enumerate(steps):
        for status, count in step.items():
            running[status] = running.get(status, 0) + count
        # The last step of a run in progress ends now, not at its full width.
        points.append({"t": min((index + 1) * timeline.width_s, elapsed), **running})
    return {
        "start": timeline.start.timestamp(),
        "now": now,
        "width_s": timeline.width_s,
        "statuses": list(STATUS_ORDER),
        "points": points,
    }


async def download(app: Smslink, run: Run, *, problems: bool) -> FileResponse:
    """The run's results as they stand (all, or only the problem records) as a CSV file
    written by the results writer (the audience's delimiter, spreadsheet-safe cells)."""
    folder = Path(tempfile.mkdtemp(prefix="smslink-export-"))
    which = "problems" if problems else "results"
    path = folder / f"run-{run.id}-{which}.csv"
    try:
        if problems:
            await asyncio.to_thread(app.runs.export_problems, run.id, path)
        else:
            await asyncio.to_thread(app.runs.export, run.id, path)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return FileResponse(
        path,
        media_type="text/csv; charset=utf-8",
        filename=path.name,
        background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True),
    )


def resume(app: Smslink, runner: RunExecutor, run_id: int) -> Run:
    """Start a stopped or interrupted run again in this service (a no-op when this service
    is sending it); InvalidInput for a completed run."""
    run = app.runs.get(run_id)
    if run.state is RunState.COMPLETED:
        raise InvalidInput(_("Run %(id)s is completed: there is nothing left to send.", id=run_id))
    runner.start(run_id)
    return run


async def start_again(app: Smslink, runner: RunExecutor, run_id: int, *, again: bool) -> int:
    """Store the new run of `Runs.start_again` (its audience written in a worker thread)
    and start it in the service, on the service's event loop; its id."""
    new_id = await asyncio.to_thread(app.runs.start_again, run_id, again=again, origin=ORIGIN)
    runner.start(new_id)
    return new_id
