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
from datetime import UTC, datetime, timedelta

from smslink.app.queues import JOURNEY_JOB, PART_JOB, TRACK_JOB, WorkerSettings
from smslink.app.work import queue_job
from smslink.domain.errors import Busy
from smslink.domain.models import RunState
from smslink.engine import LeaseLost, RunCounters, Timings
from smslink.engine.errors import RunHalted
from smslink.engine.lease import owner_id
from smslink.engine.pacing import ConnectionPacing, Pacing
from smslink.engine.parts import PartOutcome, send_part, track_sent
from smslink.engine.run import execute_run
from smslink.engine.send import SendingShare
from smslink.engine.shared_pacing import SharedPacing
from smslink.jobs import JobQueue, RetryLater
from smslink.store import Store, WorkerRow

log = logging.getLogger("smslink.worker")

#: How long the row of a worker that died (no goodbye) stays in `workers`: `smslink
#: workers` lists only those seen in the last minute; the rest is for looking back.
DEAD_WORKER_ROWS = timedelta(days=1)


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

    def __init__(
        self,
        store: Store,
        timings: Timings,
        settings: WorkerSettings,
        *,
        pacing_url: str | None = None,
    ) -> None:
        self._store = store
        self._settings = settings
        self._timings = _worker_timings(timings, settings)
        self._pacing = _pacing(pacing_url, settings.concurrency)
        self._sharing = SendingShare(settings.concurrency - 1)
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
        async with queue:
            beating = asyncio.create_task(self._beat())
            watching = asyncio.create_task(self._requeue_stalled())
            sweeping = asyncio.create_task(self._sweep())
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
                for task in (beating, watching, sweeping, draining):
                    task.cancel()
                    with suppress(asyncio.CancelledError):
                        await task
                self._store.workers.forget(self.owner)
                if isinstance(self._pacing, SharedPacing):
                    await self._pacing.aclose()  # gives back its slots in the window

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
                    owner=owner_id(),  # a lease of this job's own, never shared
                    shutting_down=self._shutting_down,
                    sharing=self._sharing,
                )
            except Busy as busy:  # another worker holds the part: try again shortly
                raise RetryLater(str(busy)) from None
            except LeaseLost as lost:  # the part's new holder goes on with it
                log.warning("%s", lost)
                return
        if outcome is PartOutcome.GIVEN_BACK:
            await queue_job(self._queue, PART_JOB, run_id, part)

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
                    owner=owner_id(),  # a lease of this job's own, never shared
                    shutting_down=self._shutting_down,
                )
            except Busy as busy:
                raise RetryLater(str(busy)) from None
            except LeaseLost as lost:
                log.warning("%s", lost)
                return
        if run.state is RunState.SENDING and self._shutting_down.is_set():
            await queue_job(self._queue, TRACK_JOB, run_id)

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
                    by_worker=True,
                )
            )
            shutting_down = asyncio.create_task(self._shutting_down.wait())
            try:
                await asyncio.wait({execution, shutting_down}, return_when=asyncio.FIRST_COMPLETED)
                if not execution.done():  # the run is interrupted: another worker resumes it
                    execution.cancel()
                    with suppress(asyncio.CancelledError):
                        await execution
                    await queue_job(self._queue, JOURNEY_JOB, run_id)
                    return
                execution.result()
            except Busy as busy:
                raise RetryLater(str(busy)) from None
            except (LeaseLost, RunHalted) as halted:  # stopped: resuming queues it again
                log.warning("journey run %s: %s", run_id, halted)
            finally:
                shutting_down.cancel()

    async def _requeue_stalled(self) -> None:
        """Every heartbeat, queue again the jobs of workers that went silent. Not a job
        itself: it must not wait for a free job slot behind the parts of a long run.
        Every worker does it; a job another one queued first is left alone."""
        while True:
            await asyncio.sleep(self._settings.heartbeat_s)
            try:
                again = await self._queue.requeue_stalled(stalled_s=self._settings.stalled_s)
            except Exception:  # the database is away: the next beat tries again
                log.exception("could not look for stalled jobs")
                continue
            if again:
                log.warning("queued again the jobs of stalled workers: %s", again)

    async def _sweep(self) -> None:
        """Every few seconds, queue again any part or tracking of a run the workers are
        sending that nobody holds and no job waits for.

        The safety net under procrastinate: a worker that was paused past its leases and
        wakes up finishes its job, and procrastinate then deletes that job although it
        had been queued again for another worker (the same job row). Whatever the job
        queue does, a queued run keeps a job for each part with records left to send,
        and for its tracking. A part must stay orphaned for two sweeps in a row (not just
        between two of its jobs); a job already waiting makes queuing it again a no-op.
        """
        orphaned: set[tuple[str, int, int | None]] = set()
        while True:
            await asyncio.sleep(self._settings.sweep_s)
            try:
                orphaned = await self._requeue_orphans(orphaned)
            except Exception:  # the database is away: the next sweep tries again
                log.exception("could not look for runs without jobs")

    async def _requeue_orphans(
        self, seen_before: set[tuple[str, int, int | None]]
    ) -> set[tuple[str, int, int | None]]:
        """Queue what was orphaned at the last sweep and still is; what is orphaned now,
        each as (job, run, part)."""
        now: set[tuple[str, int, int | None]] = set()
        store = self._store
        for run in store.runs.queued_sending():
            held = store.runs.holders(run.id, now=datetime.now(UTC))
            parts_held = {p for parts in held.values() for p in parts}
            if None not in parts_held:  # nobody tracks it (or sends the journey)
                now.add((JOURNEY_JOB if run.is_journey else TRACK_JOB, run.id, None))
            if not run.is_journey:
                now |= {
                    (PART_JOB, run.id, part)
                    for part in store.deliveries.parts_to_send(run.id)
                    if part not in parts_held
                }
        for job, run_id, part in sorted(now & seen_before, key=str):
            if await queue_job(self._queue, job, run_id, part):
                log.warning("queued again %s of run %s (part %s): no job had it", job, run_id, part)
        return now

    # -- bookkeeping ----------------------------------------------------------------

    def _working_on(self, run_id: int, counters: RunCounters) -> _Working:
        return _Working(self._tally, run_id, counters)

    async def _beat(self) -> None:
        """Write this worker's row every heartbeat: what it works on, how fast."""
        while True:
            posted = self._tally.all_posted()
            self._tally.beats.append((time.monotonic(), posted))
            try:
                self._store.workers.forget_older_than(datetime.now(UTC) - DEAD_WORKER_ROWS)
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
        # By identity: two jobs' counters that hold the same numbers are equal, and
        # list.remove would take the other job's (then fail on this job's at its end).
        self._tally.live = [c for c in self._tally.live if c is not self._counters]
        self._tally.posted += self._counters.posted
        left = self._tally.runs[self._run_id] - 1
        if left:
            self._tally.runs[self._run_id] = left
        else:
            del self._tally.runs[self._run_id]


def _pacing(url: str | None, concurrency: int) -> Pacing:
    """Shared by every worker through Redis at `url`; without one, this worker's own
    (each worker then learns the account's limit, and keeps a sender's cap, by itself)."""
    if url is None:
        return ConnectionPacing(ceiling=concurrency)
    from smslink.limits.redis import RedisPacingBackend

    return SharedPacing(RedisPacingBackend(url), ceiling=concurrency)


def _worker_timings(timings: Timings, settings: WorkerSettings) -> Timings:
    """The engine's timings in a worker: its own lease, and journeys that look for new
    records often (records come from the service, which cannot wake another machine)."""
    return replace(timings, lease_ttl_s=settings.lease_ttl_s, intake_check_s=0.1)
