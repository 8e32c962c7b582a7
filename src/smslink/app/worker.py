"""A worker process (`smslink worker`): the jobs of app/work.py, its row, its shutdown.

Imported only by workers: it brings procrastinate (smslink/jobs) with it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from smslink.app.work import (
    JOURNEY_JOB,
    PART_JOB,
    STALLED_JOB,
    TRACK_JOB,
    WorkerSettings,
    part_lock,
)
from smslink.domain.errors import Busy
from smslink.domain.models import RunState
from smslink.engine import LeaseLost, RunCounters, Timings
from smslink.engine.errors import RunHalted
from smslink.engine.lease import owner_id
from smslink.engine.pacing import ConnectionPacing
from smslink.engine.parts import PartOutcome, send_part, track_sent
from smslink.engine.run import execute_run
from smslink.jobs import JobQueue, RetryLater
from smslink.store import Store, WorkerRow

log = logging.getLogger("smslink.worker")


@dataclass
class _Tally:
    """What this worker did, for its row in `smslink workers`."""

    posted: int = 0  # by the jobs that ended
    runs: dict[int, int] = field(default_factory=dict)  # run id -> jobs on it now
    live: list[RunCounters] = field(default_factory=list)  # the counters of those jobs
    beats: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=15))

    def all_posted(self) -> int:
        """Messages posted since the worker started, the jobs in hand's included."""
        return self.posted + sum(c.posted for c in self.live)

    def rate(self) -> float:
        """Messages per second over the last beats (about half a minute)."""
        if len(self.beats) < 2:
            return 0.0
        (t0, n0), (t1, n1) = self.beats[0], self.beats[-1]
        return (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0


class Worker:
    """One worker process: its jobs, its heartbeat row, its shutdown."""

    def __init__(self, store: Store, timings: Timings, settings: WorkerSettings) -> None:
        self._store = store
        self._settings = settings
        self._timings = _worker_timings(timings, settings)
        self._pacing = ConnectionPacing(ceiling=settings.concurrency)
        self.owner = owner_id()
        self._shutting_down = asyncio.Event()
        self._tally = _Tally()
        self._started = datetime.now(UTC)
        self._queue = JobQueue(store.url)

    async def run(self, stop: asyncio.Event, on_started: Callable[[str], None] | None) -> None:
        queue = self._queue
        queue.task(PART_JOB, self._send_part)
        queue.task(TRACK_JOB, self._track_run)
        queue.task(JOURNEY_JOB, self._journey)
        queue.periodic(
            STALLED_JOB, self._requeue_stalled, every_s=max(1, int(self._settings.heartbeat_s))
        )
        async with queue:
            beating = asyncio.create_task(self._beat())
            draining = asyncio.create_task(self._drain_on(stop))
            try:
                await queue.work(
                    jobs=self._settings.jobs,
                    queues=self._settings.queues,
                    heartbeat_s=self._settings.heartbeat_s,
                    stalled_s=self._settings.stalled_s,
                    stop=self._shutting_down,
                    on_started=(lambda: on_started(self.owner)) if on_started else None,
                )
            finally:
                for task in (beating, draining):
                    task.cancel()
                    with suppress(asyncio.CancelledError):
                        await task
                self._store.workers.forget(self.owner)

    async def _drain_on(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._shutting_down.set()

    # -- jobs -----------------------------------------------------------------------

    async def _send_part(self, run_id: int, part: int) -> None:
        counters = RunCounters()
        with self._working_on(run_id, counters):
            try:
                outcome = await send_part(
                    self._store,
                    run_id,
                    part,
                    counters,
                    timings=self._timings,
                    pacing=self._pacing,
                    owner=self.owner,
                    shutting_down=self._shutting_down,
                )
            except Busy as busy:  # another worker holds the part: try again shortly
                raise RetryLater(str(busy)) from None
            except LeaseLost as lost:  # the part's new holder goes on with it
                log.warning("%s", lost)
                return
        if outcome is PartOutcome.GIVEN_BACK:
            await self._queue.defer(
                PART_JOB, lock=part_lock(run_id, part), run_id=run_id, part=part
            )

    async def _track_run(self, run_id: int) -> None:
        counters = RunCounters()
        with self._working_on(run_id, counters):
            try:
                run = await track_sent(
                    self._store,
                    run_id,
                    counters,
                    timings=self._timings,
                    pacing=self._pacing,
                    owner=self.owner,
                    shutting_down=self._shutting_down,
                )
            except Busy as busy:
                raise RetryLater(str(busy)) from None
            except LeaseLost as lost:
                log.warning("%s", lost)
                return
        if run.state is RunState.SENDING and self._shutting_down.is_set():
            await self._queue.defer(TRACK_JOB, lock=f"track-{run_id}", run_id=run_id)

    async def _journey(self, run_id: int) -> None:
        counters = RunCounters()
        with self._working_on(run_id, counters):
            execution = asyncio.create_task(
                execute_run(
                    self._store,
                    run_id,
                    counters,
                    timings=self._timings,
                    pacing=self._pacing,
                )
            )
            shutting_down = asyncio.create_task(self._shutting_down.wait())
            try:
                await asyncio.wait({execution, shutting_down}, return_when=asyncio.FIRST_COMPLETED)
                if not execution.done():  # the run is interrupted: another worker resumes it
                    execution.cancel()
                    with suppress(asyncio.CancelledError):
                        await execution
                    await self._queue.defer(JOURNEY_JOB, lock=f"journey-{run_id}", run_id=run_id)
                    return
                execution.result()
            except Busy as busy:
                raise RetryLater(str(busy)) from None
            except (LeaseLost, RunHalted) as halted:  # stopped: resuming queues it again
                log.warning("journey run %s: %s", run_id, halted)
            finally:
                shutting_down.cancel()

    async def _requeue_stalled(self, timestamp: int) -> None:
        again = await self._queue.requeue_stalled(stalled_s=self._settings.stalled_s)
        if again:
            log.warning("queued again the jobs of stalled workers: %s", again)

    # -- bookkeeping ----------------------------------------------------------------

    def _working_on(self, run_id: int, counters: RunCounters) -> _Working:
        return _Working(self._tally, run_id, counters)

    async def _beat(self) -> None:
        """Write this worker's row every heartbeat: what it works on, how fast."""
        while True:
            posted = self._tally.all_posted()
            self._tally.beats.append((time.monotonic(), posted))
            try:
                self._store.workers.beat(
                    WorkerRow(
                        owner=self.owner,
                        started_at=self._started,
                        seen_at=datetime.now(UTC),
                        concurrency=self._settings.concurrency,
                        queues=list(self._settings.queues or ()),
                        posted=posted,
                        rate=self._tally.rate(),
                        runs=sorted(self._tally.runs),
                    )
                )
            except Exception:  # the database is away: the next beat tries again
                log.exception("could not write this worker's row")
            await asyncio.sleep(self._settings.heartbeat_s)


class _Working:
    """`with` a job: its run is listed as worked on, and its posts are counted."""

    def __init__(self, tally: _Tally, run_id: int, counters: RunCounters) -> None:
        self._tally, self._run_id, self._counters = tally, run_id, counters

    def __enter__(self) -> None:
        self._tally.runs[self._run_id] = self._tally.runs.get(self._run_id, 0) + 1
        self._tally.live.append(self._counters)

    def __exit__(self, *exc: object) -> None:
        self._tally.live.remove(self._counters)
        self._tally.posted += self._counters.posted
        left = self._tally.runs[self._run_id] - 1
        if left:
            self._tally.runs[self._run_id] = left
        else:
            del self._tally.runs[self._run_id]


def _worker_timings(timings: Timings, settings: WorkerSettings) -> Timings:
    """The engine's timings in a worker: its own lease, and journeys that look for new
    records often (records come from the service, which cannot wake another machine)."""
    return replace(timings, lease_ttl_s=settings.lease_ttl_s, intake_check_s=0.1)
